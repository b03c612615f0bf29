"""The tbot.start event: exactly the fields tbot would send, and nothing else.

It is built as plain data (what the log prints) and turned into protobuf only
by parsing that printed text (wire.py): these tests hold both halves to the
schema, and to each other.
"""

from __future__ import annotations

import datetime
import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import json_format

from teleport_auth import HELPER_NAME, HELPER_VERSION, __version__
from teleport_auth._proto.prehog.v1alpha import tbot_pb2
from teleport_auth.telemetry.event import build_event, event_json, rfc3339
from teleport_auth.telemetry.wire import encode, to_message

ONE_SHOT = "RUN_MODE_ONE_SHOT"
DAEMON = "RUN_MODE_DAEMON"
NOW = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)
HELPER_ENVIRONMENT = {"helper": HELPER_NAME, "helper_version": HELPER_VERSION}


def _config(
    *output_types: str,
    services: tuple[str, ...] = (),
    oneshot: Any = True,
    join_method: str = "github",
) -> Any:
    """A config shaped like the ones the family writes (docs/compatibility.md).

    Typed loosely: the tests build shapes the family never writes, too."""
    return {
        "version": "v2",
        "proxy_server": "tele.example.com:443",
        "oneshot": oneshot,
        "onboarding": {"join_method": join_method, "token": "bot-token", "ca_pins": []},
        "storage": {"type": "memory"},
        "outputs": [
            {"type": kind, "destination": {"type": "directory", "path": "/tmp/out"}, "roles": []}
            for kind in output_types
        ],
        "services": [{"type": kind, "listen": "tcp://127.0.0.1:5432"} for kind in services],
    }


def _expected(
    *,
    run_mode: str = ONE_SHOT,
    helper: str = HELPER_NAME,
    helper_version: str = HELPER_VERSION,
    join_type: str = "github",
    other: int = 0,
    database: int = 0,
    kubernetes: int = 0,
    application: int = 0,
) -> dict[str, Any]:
    return {
        "run_mode": run_mode,
        "version": "16.4.2",
        "join_type": join_type,
        "helper": helper,
        "helper_version": helper_version,
        "destinations_other": other,
        "destinations_database": database,
        "destinations_kubernetes": kubernetes,
        "destinations_application": application,
    }


@pytest.mark.parametrize(
    ("config", "env", "expected"),
    [
        pytest.param(
            _config("identity"), HELPER_ENVIRONMENT, _expected(other=1), id="identity-only"
        ),
        pytest.param(
            _config("identity", "application", "database", "database", "kubernetes", "ssh_host"),
            HELPER_ENVIRONMENT,
            _expected(other=2, application=1, database=2, kubernetes=1),
            id="mixed-outputs",
        ),
        pytest.param(
            _config("kubernetes/v2", "spiffe-svid", "workload-identity-x509"),
            HELPER_ENVIRONMENT,
            _expected(other=3),
            id="newer-output-types-are-other",
        ),
        # The family's daemon members: tbot counts `outputs:` entries only, so
        # a config with services alone reports 0 in every counter.
        pytest.param(
            _config(services=("database-tunnel",), oneshot=False),
            HELPER_ENVIRONMENT,
            _expected(run_mode=DAEMON),
            id="database-tunnel",
        ),
        pytest.param(
            _config(services=("application-tunnel",), oneshot=False),
            HELPER_ENVIRONMENT,
            _expected(run_mode=DAEMON),
            id="application-tunnel",
        ),
        pytest.param(
            _config(services=("application-proxy",), oneshot=False),
            HELPER_ENVIRONMENT,
            _expected(run_mode=DAEMON),
            id="application-proxy",
        ),
        pytest.param(
            _config(
                "identity",
                "database",
                services=("database-tunnel", "application-tunnel", "application-proxy"),
            ),
            HELPER_ENVIRONMENT,
            _expected(other=1, database=1),
            id="services-beside-outputs-not-counted",
        ),
        pytest.param(
            _config("identity"),
            {},
            _expected(other=1, helper="", helper_version=""),
            id="no-helper",
        ),
        pytest.param(
            _config("identity"),
            {"helper_version": "9.9.9"},
            _expected(other=1, helper="", helper_version=""),
            id="helper-version-without-helper",
        ),
        pytest.param(
            _config("identity", oneshot=False),
            HELPER_ENVIRONMENT,
            _expected(run_mode=DAEMON, other=1),
            id="daemon",
        ),
        pytest.param(
            _config("identity", oneshot="true"),
            HELPER_ENVIRONMENT,
            _expected(run_mode=DAEMON, other=1),
            id="oneshot-must-be-boolean-true",
        ),
        pytest.param(
            _config("identity", join_method="token"),
            HELPER_ENVIRONMENT,
            _expected(other=1, join_type="token"),
            id="join-method",
        ),
    ],
)
def test_event_fields(config: Any, env: dict[str, str], expected: dict[str, Any]) -> None:
    event = build_event(tbot_version="16.4.2", config=config, **env, distinct_id="id", now=NOW)
    assert event["start"] == expected
    # The same values reach the message that is sent.
    start = to_message(event_json(event)).start
    assert tbot_pb2.TbotStartEvent.RunMode.Name(start.run_mode) == expected["run_mode"]
    assert start.destinations_other == expected["destinations_other"]
    assert start.destinations_database == expected["destinations_database"]
    assert start.destinations_kubernetes == expected["destinations_kubernetes"]
    assert start.destinations_application == expected["destinations_application"]


@pytest.mark.parametrize("raw", ["16.4.2", "v16.4.2", " v16.4.2\n"])
def test_version_has_no_leading_v(raw: str) -> None:
    event = build_event(tbot_version=raw, config=_config("identity"), now=NOW)
    assert event["start"]["version"] == "16.4.2"


def test_distinct_id_is_a_fresh_uuid_per_event() -> None:
    first = build_event(tbot_version="16.4.2", config=_config("identity"))
    second = build_event(tbot_version="16.4.2", config=_config("identity"))

    assert uuid.UUID(first["distinct_id"]).version == 4
    assert first["distinct_id"] != second["distinct_id"]


def test_timestamp_defaults_to_now_in_utc() -> None:
    before = datetime.datetime.now(datetime.timezone.utc)
    event = build_event(tbot_version="16.4.2", config=_config("identity"))
    after = datetime.datetime.now(datetime.timezone.utc)

    stamped = to_message(event_json(event)).timestamp.ToDatetime(tzinfo=datetime.timezone.utc)
    assert before - datetime.timedelta(seconds=1) <= stamped <= after


@pytest.mark.parametrize(
    "when",
    [
        pytest.param(NOW, id="microseconds"),
        pytest.param(NOW.replace(microsecond=0), id="whole-second"),
        pytest.param(NOW.replace(microsecond=250000), id="milliseconds"),
        pytest.param(NOW.replace(microsecond=1), id="one-microsecond"),
        pytest.param(
            datetime.datetime(
                2024, 5, 6, 9, 8, 9, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            id="other-zone",
        ),
        pytest.param(datetime.datetime(2024, 5, 6, 7, 8, 9, 5), id="naive-is-utc"),
    ],
)
def test_timestamp_is_written_as_protobuf_writes_it(when: datetime.datetime) -> None:
    stamp = tbot_pb2.SubmitTbotEventRequest().timestamp
    stamp.FromDatetime(when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc))
    assert rfc3339(when) == stamp.ToJsonString()


def test_distinct_id_and_timestamp_as_given() -> None:
    event = build_event(
        tbot_version="16.4.2", config=_config("identity"), distinct_id="abc", now=NOW
    )
    message = to_message(event_json(event))

    assert message.distinct_id == "abc"
    assert message.timestamp.ToDatetime(tzinfo=datetime.timezone.utc) == NOW


def test_printed_event_shows_every_field_in_schema_order() -> None:
    event = build_event(
        tbot_version="16.4.2", config=_config("identity"), distinct_id="abc", now=NOW
    )
    printed = json.loads(event_json(event))

    assert printed == {
        "distinct_id": "abc",
        "timestamp": "2024-05-06T07:08:09.123456Z",
        "start": {
            "run_mode": "RUN_MODE_ONE_SHOT",
            "version": "16.4.2",
            "join_type": "github",
            "helper": "",
            "helper_version": "",
            "destinations_other": 1,
            "destinations_database": 0,
            "destinations_kubernetes": 0,
            "destinations_application": 0,
        },
    }
    # In .proto field order, so the log reads like the schema.
    assert list(printed) == ["distinct_id", "timestamp", "start"]
    assert list(printed["start"]) == [f.name for f in tbot_pb2.TbotStartEvent.DESCRIPTOR.fields]


@pytest.mark.parametrize(
    ("config", "env"),
    [
        pytest.param(_config("identity"), HELPER_ENVIRONMENT, id="auth"),
        pytest.param(_config("identity"), {}, id="no-helper"),
        pytest.param(_config(services=("database-tunnel",), oneshot=False), {}, id="daemon"),
        pytest.param(_config("kubernetes", "application", "database"), {}, id="own-counters"),
    ],
)
def test_what_is_printed_is_exactly_what_is_sent(config: Any, env: dict[str, str]) -> None:
    printed = event_json(build_event(tbot_version="v16.4.2", config=config, **env, now=NOW))
    message = tbot_pb2.SubmitTbotEventRequest.FromString(encode(printed))

    # The message, shown with every field (zeros too) by protobuf's own JSON
    # mapping, is the printed document: nothing added, dropped or changed.
    assert json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    ) == json.loads(printed)
    assert message.WhichOneof("event") == "start"


def test_a_field_outside_the_schema_is_never_sent() -> None:
    event: dict[str, Any] = build_event(tbot_version="16.4.2", config=_config("identity"))
    event["start"]["repository"] = "canary-org/canary-repo"
    with pytest.raises(json_format.ParseError):
        encode(event_json(event))


def test_event_carries_nothing_but_the_schema() -> None:
    """Every key of the config and env other than the ones read is ignored."""
    config = _config("identity", services=("database-tunnel",))
    config["onboarding"]["token"] = "CANARY-TOKEN-123"
    config["proxy_server"] = "canary-proxy.example:443"
    config["certificate_ttl"] = "CANARY-TTL"
    config["services"][0]["database"] = "canary-db"
    env = HELPER_ENVIRONMENT

    printed = event_json(build_event(tbot_version="16.4.2", config=config, **env, now=NOW))
    wire = encode(printed)

    for canary in ("CANARY", "canary", "bot-token", "/tmp/out", "127.0.0.1"):
        assert canary not in printed
        assert canary.encode() not in wire
    message = tbot_pb2.SubmitTbotEventRequest.FromString(wire)
    assert [f.name for f, _ in message.ListFields()] == ["distinct_id", "timestamp", "start"]


# --- the edges ------------------------------------------------------------------------


def test_the_helper_version_is_empty_without_a_helper_name() -> None:
    event = build_event(tbot_version="16.4.2", config=_config("identity"), helper="gha:x")
    assert (event["start"]["helper"], event["start"]["helper_version"]) == ("gha:x", "")


def test_the_event_is_printed_indented_by_two() -> None:
    assert event_json({"a": {"b": 1}}) == '{\n  "a": {\n    "b": 1\n  }\n}'


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone 5 hours behind UTC (TZ and time.tzset)."""
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_from_utc")
def test_timestamps_are_utc_whatever_the_local_time_zone() -> None:
    naive = datetime.datetime(2024, 1, 1, 12, 0, 0)
    assert rfc3339(naive) == "2024-01-01T12:00:00Z"
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    assert rfc3339(datetime.datetime(2024, 1, 1, 12, 0, 0, tzinfo=plus_two)) == (
        "2024-01-01T10:00:00Z"
    )
    sent = build_event(tbot_version="16.4.2", config=_config("identity"))["timestamp"]
    when = datetime.datetime.strptime(
        sent, "%Y-%m-%dT%H:%M:%S.%fZ" if "." in sent else "%Y-%m-%dT%H:%M:%SZ"
    )
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert abs((now - when).total_seconds()) < 60


# Every helper_version an original action has reported: auth 1.1.0-2.1.2,
# auth-k8s and auth-application 1.1.0-2.0.6, the tunnels and the proxy 1.0.0-1.0.1.
def _versions(first: tuple[int, int, int], last: tuple[int, int, int]) -> set[str]:
    return {
        f"{major}.{minor}.{patch}"
        for major in range(first[0], last[0] + 1)
        for minor in range(10)
        for patch in range(10)
        if first <= (major, minor, patch) <= last
    }


ORIGINALS_REPORTED = _versions((1, 1, 0), (2, 1, 2)) | _versions((1, 0, 0), (1, 0, 1))
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z.-]+)?\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)$"
)


def test_helper_version_names_this_implementation() -> None:
    # Semantic-version build metadata on our version: never a version any original
    # reported, and the same precedence as ours (build metadata is ignored when
    # versions are compared).
    match = SEMVER.match(HELPER_VERSION)
    assert match is not None, HELPER_VERSION
    assert HELPER_VERSION.split("+")[0] == __version__
    assert match.group(4) == "python"
    assert HELPER_VERSION not in ORIGINALS_REPORTED
    event = build_event(
        tbot_version="16.4.2",
        config=_config("identity"),
        helper=HELPER_NAME,
        helper_version=HELPER_VERSION,
        now=NOW,
    )
    assert event["start"]["helper_version"] == "1.0.0+python"
