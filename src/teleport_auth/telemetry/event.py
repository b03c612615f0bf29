"""The one ``tbot.start`` event an opted-in run submits (prehog.v1alpha, RFD 0106).

The event carries exactly the fields tbot itself would send for the config we
wrote: run mode, tbot version, join method, helper name and version, and
output counts per kind. Nothing is read from the action inputs, ``GITHUB_*``,
the host or the user: only the two helper variables are taken from ``env``.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor

from teleport_auth._proto.prehog.v1alpha import tbot_pb2
from teleport_auth.telemetry import HELPER_ENV, HELPER_VERSION_ENV


def _count_destinations(start: tbot_pb2.TbotStartEvent, outputs: Any) -> None:
    # As tbot counts: application, database and kubernetes outputs have their
    # own counter; every other type, identity included, counts as "other".
    if not isinstance(outputs, list):
        return
    for output in outputs:
        kind = output.get("type") if isinstance(output, Mapping) else None
        if kind == "application":
            start.destinations_application += 1
        elif kind == "database":
            start.destinations_database += 1
        elif kind == "kubernetes":
            start.destinations_kubernetes += 1
        else:
            start.destinations_other += 1


def _join_method(config: Mapping[str, Any]) -> str:
    onboarding = config.get("onboarding")
    method = onboarding.get("join_method") if isinstance(onboarding, Mapping) else None
    # Only a plain string is reported; anything else would be our bug, not data to send.
    return method if isinstance(method, str) else ""


def build_event(
    *,
    tbot_version: str,
    config: Mapping[str, Any],
    env: Mapping[str, str],
    distinct_id: str | None = None,
    now: datetime.datetime | None = None,
) -> tbot_pb2.SubmitTbotEventRequest:
    """Build the request tbot would send at start for ``config``.

    ``now`` must be timezone-aware; a naive value is taken as UTC.
    """
    version = tbot_version.strip()
    if version.startswith("v"):
        version = version[1:]

    start = tbot_pb2.TbotStartEvent(
        run_mode=(
            tbot_pb2.TbotStartEvent.RUN_MODE_ONE_SHOT
            if config.get("oneshot") is True
            else tbot_pb2.TbotStartEvent.RUN_MODE_DAEMON
        ),
        version=version,
        join_type=_join_method(config),
    )
    _count_destinations(start, config.get("outputs"))
    helper = env.get(HELPER_ENV, "")
    if helper:
        # tbot reports the helper version only together with a helper name.
        start.helper = helper
        start.helper_version = env.get(HELPER_VERSION_ENV, "")

    when = now if now is not None else datetime.datetime.now(datetime.timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    request = tbot_pb2.SubmitTbotEventRequest(
        distinct_id=distinct_id if distinct_id is not None else str(uuid.uuid4()),
        start=start,
    )
    request.timestamp.FromDatetime(when)
    return request


def event_as_dict(request: tbot_pb2.SubmitTbotEventRequest) -> dict[str, Any]:
    """Every field of ``request``, zero values included, under its proto name.

    This is what the log shows, so it must show everything that is sent:
    zero counts and empty helper fields are printed, not hidden.
    """
    as_dict = json_format.MessageToDict(
        request,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=True,
    )
    return _in_field_order(request.DESCRIPTOR, as_dict)


def _in_field_order(descriptor: Descriptor, as_dict: dict[str, Any]) -> dict[str, Any]:
    # MessageToDict lists set fields before defaulted ones; field-number order
    # reads like the .proto, which is what an auditor compares against.
    ordered: dict[str, Any] = {}
    for field in descriptor.fields:
        if field.name not in as_dict:
            continue
        value = as_dict[field.name]
        if field.message_type is not None and isinstance(value, dict):
            value = _in_field_order(field.message_type, value)
        ordered[field.name] = value
    # Nothing is dropped, even a key this ordering does not know.
    ordered.update((key, value) for key, value in as_dict.items() if key not in ordered)
    return ordered
