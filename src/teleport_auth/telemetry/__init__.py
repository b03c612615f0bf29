"""Anonymous telemetry (RFD 0106): consent and the names everything else shares.

This package's ``__init__`` stays import-light on purpose: an opted-out run
imports it for the consent line and must not pull in protobuf or requests.
The sending code lives in submodules that only an opted-in run imports.
"""

from __future__ import annotations

DOCS_URL = "https://goteleport.com/docs/reference/machine-id/telemetry/"

# tbot's own variables (tool/tbot): the opt-in, the endpoint override and the helper fields.
OPT_IN_ENV = "TELEPORT_ANONYMOUS_TELEMETRY"
ADDRESS_ENV = "TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS"
HELPER_ENV = "_TBOT_TELEMETRY_HELPER"
HELPER_VERSION_ENV = "_TBOT_TELEMETRY_HELPER_VERSION"

DEFAULT_ENDPOINT = "https://reporting-tbot.teleportinfra.sh"
SERVICE = "prehog.v1alpha.TbotReportingService"
METHOD = "SubmitTbotEvent"
METHOD_PATH = f"/{SERVICE}/{METHOD}"


def consent_line(enabled: bool) -> str:
    """The line tbot itself logs at start, in tbot's wording."""
    state = "enabled" if enabled else "not enabled"
    return (
        f"Anonymous telemetry is {state}. "
        f"Find out more about Machine ID's anonymous telemetry at {DOCS_URL}"
    )
