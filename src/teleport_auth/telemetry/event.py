"""The one ``tbot.start`` event an opted-in run submits (prehog.v1alpha, RFD 0106), as plain data.

The event carries exactly the fields tbot itself would send for the config we
wrote: run mode, tbot version, join method, helper name and version, and
destination counts per kind. Nothing is read from the action inputs,
``GITHUB_*``, the host or the user: the helper name and version are given by
the caller (the member that runs), the rest comes from the config.

It is built here as the protobuf JSON mapping of ``SubmitTbotEventRequest``
(proto field names, every field shown, zeros included) using the standard
library only, so the step prints it before tbot starts without loading
protobuf. The sender's thread parses exactly the printed text into the
message it sends (wire.py): what the log shows is what goes out.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teleport_auth.tbot_schema import BotConfig

RUN_MODE_ONE_SHOT = "RUN_MODE_ONE_SHOT"
RUN_MODE_DAEMON = "RUN_MODE_DAEMON"

# TbotStartEvent's counters, in .proto field order.
COUNT_FIELDS = (
    "destinations_other",
    "destinations_database",
    "destinations_kubernetes",
    "destinations_application",
)
# The entry types with a counter of their own; every other type counts as "other".
_OWN_COUNTER = {
    "application": "destinations_application",
    "database": "destinations_database",
    "kubernetes": "destinations_kubernetes",
}


def count_destinations(config: BotConfig) -> dict[str, int]:
    """The four counters, as tbot counts them.

    tbot (``tool/tbot/anonymous_telemetry.go``) iterates the config's
    ``outputs`` only: each entry is one destination, application, database and
    kubernetes outputs in their own counter, every other type (identity,
    ``kubernetes/v2``, ``ssh_host``, SPIFFE ...) as "other". Entries under
    ``services:`` (database and application tunnels, the application proxy) are
    not counted at all, so a tunnel member's event has 0 in every counter.
    """
    counts = dict.fromkeys(COUNT_FIELDS, 0)
    for output in config["outputs"]:
        counts[_OWN_COUNTER.get(output["type"], "destinations_other")] += 1
    return counts


def rfc3339(when: datetime.datetime) -> str:
    """``when`` as protobuf's JSON mapping writes a Timestamp: UTC, 0, 3 or 6 fraction digits."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    when = when.astimezone(datetime.timezone.utc)
    micros = when.microsecond
    if micros == 0:
        fraction = ""
    elif micros % 1000 == 0:
        fraction = f".{micros // 1000:03d}"
    else:
        fraction = f".{micros:06d}"
    return f"{when:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def build_event(
    *,
    tbot_version: str,
    config: BotConfig,
    helper: str = "",
    helper_version: str = "",
    distinct_id: str | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """The request tbot would send at start for ``config``, in .proto field order.

    ``now`` should be timezone-aware; a naive value is taken as UTC.
    """
    version = tbot_version.strip()
    if version.startswith("v"):
        version = version[1:]
    # tbot reports the helper version only together with a helper name.
    helper_version = helper_version if helper else ""
    start: dict[str, Any] = {
        "run_mode": RUN_MODE_ONE_SHOT if config["oneshot"] is True else RUN_MODE_DAEMON,
        "version": version,
        "join_type": config["onboarding"]["join_method"],
        "helper": helper,
        "helper_version": helper_version,
        **count_destinations(config),
    }
    when = now if now is not None else datetime.datetime.now(datetime.timezone.utc)
    return {
        "distinct_id": distinct_id if distinct_id is not None else str(uuid.uuid4()),
        "timestamp": rfc3339(when),
        "start": start,
    }


def event_json(event: Mapping[str, Any]) -> str:
    """The text the log shows and the sender parses: one JSON document, field order kept."""
    return json.dumps(event, indent=2)
