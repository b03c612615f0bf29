"""The PostHog capture event Teleport's reporting service (prehog) makes of a tbot.start."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from teleport_auth._proto.prehog.v1alpha.tbot_pb2 import SubmitTbotEventRequest, TbotStartEvent

EVENT_NAME = "tbot.start"

RUN_MODES = {
    TbotStartEvent.RUN_MODE_UNSPECIFIED: "unspecified",
    TbotStartEvent.RUN_MODE_ONE_SHOT: "one-shot",
    TbotStartEvent.RUN_MODE_DAEMON: "daemon",
}


def event_time(req: SubmitTbotEventRequest, received_at: datetime) -> datetime:
    """The event's own timestamp (UTC), or the time it was received when unset."""
    if req.HasField("timestamp"):
        req.timestamp.ToJsonString()  # raises ValueError when out of range
        return req.timestamp.ToDatetime(tzinfo=timezone.utc)
    return received_at.astimezone(timezone.utc)


def to_posthog(req: SubmitTbotEventRequest, received_at: datetime) -> dict[str, Any]:
    """The PostHog capture event prehog makes of a SubmitTbotEventRequest.

    Raises ValueError for a timestamp outside the RFC 3339 range.
    """
    if req.HasField("timestamp"):
        timestamp = req.timestamp.ToJsonString()  # UTC, "Z", 0/3/6/9 fraction digits
    else:
        ts = Timestamp()
        ts.FromDatetime(received_at.astimezone(timezone.utc))
        timestamp = ts.ToJsonString()
    start = req.start
    props: dict[str, Any] = {
        "tbot.run_mode": RUN_MODES.get(start.run_mode, "unknown"),
        "tbot.version": start.version,
        "tbot.join_type": start.join_type,
    }
    # prehog only sets the helper properties when a helper is named.
    if start.helper:
        props["tbot.helper"] = start.helper
    if start.helper_version:
        props["tbot.helper_version"] = start.helper_version
    props.update(
        {
            "tbot.destinations_other": int(start.destinations_other),
            "tbot.destinations_database": int(start.destinations_database),
            "tbot.destinations_kubernetes": int(start.destinations_kubernetes),
            "tbot.destinations_application": int(start.destinations_application),
        }
    )
    return {
        "event": EVENT_NAME,
        "distinct_id": req.distinct_id,
        "timestamp": timestamp,
        "properties": props,
    }


def show(value: Any) -> str:
    """A value as one token of a log line: quoted when it has spaces or odd characters."""
    text = str(value)
    if text and text.isprintable() and " " not in text:
        return text
    return json.dumps(text)


def describe(record: dict[str, Any]) -> str:
    """One readable line for a stored event."""
    p = record["properties"]
    helper = p.get("tbot.helper", "")
    if helper and p.get("tbot.helper_version"):
        helper = f"{helper}@{p['tbot.helper_version']}"
    return (
        f"{record['event']} distinct_id={show(record['distinct_id'])}"
        f" version={show(p['tbot.version'])} run_mode={show(p['tbot.run_mode'])}"
        f" join={show(p['tbot.join_type'])} helper={show(helper) if helper else '-'}"
        f" destinations=other:{p['tbot.destinations_other']}"
        f",db:{p['tbot.destinations_database']}"
        f",kube:{p['tbot.destinations_kubernetes']}"
        f",app:{p['tbot.destinations_application']}"
    )
