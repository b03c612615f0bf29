"""What the collector stores and prints: the PostHog shape prehog makes, the JSONL file, the log."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from collector_helpers import (
    JSON,
    RFC3339_UTC,
    TBOT_PROPS,
    as_json,
    make_request,
    post,
    run_collector,
)
from tbot_collector import METHOD_PATH
from tbot_collector.console import Lines, escape
from tbot_collector.events import describe, to_posthog
from teleport_auth._proto.prehog.v1alpha.tbot_pb2 import TbotStartEvent
from teleport_auth.telemetry import METHOD_PATH as SENDER_METHOD_PATH

RECEIVED = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
FULL = {
    "tbot.run_mode": "one-shot",
    "tbot.version": "16.4.2",
    "tbot.join_type": "github",
    "tbot.helper": "gha:teleport-actions/auth",
    "tbot.helper_version": "1.0.0",
    "tbot.destinations_other": 1,
    "tbot.destinations_database": 2,
    "tbot.destinations_kubernetes": 3,
    "tbot.destinations_application": 4,
}
COUNTS = {
    "destinations_other": 1,
    "destinations_database": 2,
    "destinations_kubernetes": 3,
    "destinations_application": 4,
}


def _without(*keys: str, **changes: Any) -> dict[str, Any]:
    props = {k: v for k, v in FULL.items() if k not in keys}
    props.update({f"tbot.{k}": v for k, v in changes.items()})
    return props


MAPPING: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("one-shot with helper", {}, FULL),
    ("daemon", {"run_mode": TbotStartEvent.RUN_MODE_DAEMON}, _without(run_mode="daemon")),
    (
        "unspecified",
        {"run_mode": TbotStartEvent.RUN_MODE_UNSPECIFIED},
        _without(run_mode="unspecified"),
    ),
    ("unknown run mode number", {"run_mode": 7}, _without(run_mode="unknown")),
    (
        "no helper",
        {"helper": "", "helper_version": ""},
        _without("tbot.helper", "tbot.helper_version"),
    ),
    ("helper without version", {"helper_version": ""}, _without("tbot.helper_version")),
    (
        "other join, zero counts",
        {"join_type": "token", **dict.fromkeys(COUNTS, 0)},
        _without(
            join_type="token",
            destinations_other=0,
            destinations_database=0,
            destinations_kubernetes=0,
            destinations_application=0,
        ),
    ),
]


@pytest.mark.parametrize(("start", "props"), [m[1:] for m in MAPPING], ids=[m[0] for m in MAPPING])
def test_posthog_mapping(start: dict[str, Any], props: dict[str, Any]) -> None:
    req = make_request("d-1", **{**COUNTS, **start})
    record = to_posthog(req, RECEIVED)
    assert record == {
        "event": "tbot.start",
        "distinct_id": "d-1",
        "timestamp": "2024-05-01T12:00:00.250Z",
        "properties": props,
    }
    assert list(record) == ["event", "distinct_id", "timestamp", "properties"]
    for key in ("tbot.destinations_other", "tbot.destinations_application"):
        assert type(record["properties"][key]) is int


@pytest.mark.parametrize(
    ("seconds", "nanos", "expected"),
    [
        (None, 0, "2025-01-02T03:04:05.678Z"),  # unset: time of receipt
        (1714564800, 0, "2024-05-01T12:00:00Z"),
        (1714564800, 123456789, "2024-05-01T12:00:00.123456789Z"),
    ],
)
def test_posthog_timestamp(seconds: int | None, nanos: int, expected: str) -> None:
    req = make_request()
    req.ClearField("timestamp")
    if seconds is not None:
        req.timestamp.seconds, req.timestamp.nanos = seconds, nanos
    # a receipt time in another zone is still written in UTC
    received = RECEIVED.astimezone(timezone(timedelta(hours=2)))
    assert to_posthog(req, received)["timestamp"] == expected
    assert RFC3339_UTC.match(expected)


def test_describe_quotes_odd_values() -> None:
    record = to_posthog(make_request("a b", version="1\n2", helper="", helper_version=""), RECEIVED)
    assert describe(record) == (
        'tbot.start distinct_id="a b" version="1\\n2" run_mode=one-shot join=github helper=- '
        "destinations=other:1,db:0,kube:0,app:0"
    )


def test_jsonl_shape(tmp_path: Path) -> None:
    with run_collector(tmp_path) as running:
        post(running.port, make_request("a").SerializeToString())
        post(running.port, as_json(make_request("b", helper="")), JSON)
        text = running.output.read_text()  # on disk before the answer
    assert text.count("\n") == 2
    assert text.endswith("\n")
    for line, distinct_id in zip(text.splitlines(), ["a", "b"], strict=True):
        record = json.loads(line)
        assert list(record) == ["event", "distinct_id", "timestamp", "properties"]
        assert record["event"] == "tbot.start"
        assert record["distinct_id"] == distinct_id
        assert RFC3339_UTC.match(record["timestamp"])
        assert set(record["properties"]) <= TBOT_PROPS


def test_route_is_the_one_the_action_sends_to() -> None:
    route = "/prehog.v1alpha.TbotReportingService/SubmitTbotEvent"
    assert METHOD_PATH == SENDER_METHOD_PATH == route


# ---------------------------------------------------------------------------
# The log


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain → é ✓", "plain → é ✓"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("a\rb\tc\x7f", "a\\x0db\\x09c\\x7f"),
        ("\x9b31m", "\\x9b31m"),  # C1 CSI: a full escape sequence on some terminals
        ("left\u202eright\u2028", "left\\u202eright\\u2028"),
        ("tag\U000e0041", "tag\\U000e0041"),
    ],
    ids=["printable", "OSC and BEL", "CR tab DEL", "C1", "bidi and separator", "tag char"],
)
def test_escape(text: str, shown: str) -> None:
    assert escape(text) == shown


def test_every_line_is_escaped() -> None:
    out, err = io.StringIO(), io.StringIO()
    lines = Lines(out, err)
    lines.out("x\x1b[2Jy")
    lines.err("one\ntwo\x1b[0m")
    assert out.getvalue() == "x\\x1b[2Jy\n"
    assert err.getvalue() == "one two\\x1b[0m\n"
