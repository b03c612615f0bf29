"""teleport-actions/auth in Python: authenticate a GitHub Actions job with Teleport Machine ID."""

# The one place the action's version is defined: the helper version reported to
# tbot and in telemetry, the User-Agent, and the job summary all read it.
__version__ = "1.0.0"

ACTION_NAME = "teleport-actions/auth"
# The helper name tbot and the reporting service know this action by (RFD 0106).
HELPER_NAME = f"gha:{ACTION_NAME}"
