"""teleport-actions/auth in Python: authenticate a GitHub Actions job with Teleport Machine ID."""

# The one place the action's version is defined: the helper version reported to
# tbot and in telemetry, the User-Agent, and the job summary all read it.
__version__ = "1.0.0"
# What the helper version field reports (tbot's env and our event): our version
# with semantic-version build metadata. The helper names are the originals', so
# this is the one field that tells Teleport which implementation sent an event;
# a plain 1.0.0 would equal what the original tunnels reported. Build metadata
# does not change precedence, so it sorts as __version__ does.
HELPER_VERSION = f"{__version__}+python"

ACTION_NAME = "teleport-actions/auth"
# The helper name tbot and the reporting service know this action by (RFD 0106).
HELPER_NAME = f"gha:{ACTION_NAME}"
