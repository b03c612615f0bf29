"""The tbot.start event: exactly the fields tbot would send, and nothing else."""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

import pytest

from teleport_auth import HELPER_NAME, __version__
from teleport_auth._proto.prehog.v1alpha import tbot_pb2
from teleport_auth.telemetry import HELPER_ENV, HELPER_VERSION_ENV
from teleport_auth.telemetry.event import build_event, event_as_dict

ONE_SHOT = tbot_pb2.TbotStartEvent.RUN_MODE_ONE_SHOT
DAEMON = tbot_pb2.TbotStartEvent.RUN_MODE_DAEMON
NOW = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)
HELPER_ENVIRONMENT = {HELPER_ENV: HELPER_NAME, HELPER_VERSION_ENV: __version__}


def _config(*output_types: str, oneshot: Any = True, join_method: str = "github") -> dict[str, Any]:
    """A config shaped like the one the action writes (FACTS §1)."""
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
        "services": [],
    }


def _start_fields(event: tbot_pb2.TbotStartEvent) -> dict[str, Any]:
    return {
        "run_mode": event.run_mode,
        "version": event.version,
        "join_type": event.join_type,
        "helper": event.helper,
        "helper_version": event.helper_version,
        "other": event.destinations_other,
        "application": event.destinations_application,
        "database": event.destinations_database,
        "kubernetes": event.destinations_kubernetes,
    }


def _expected(
    *,
    run_mode: int = ONE_SHOT,
    helper: str = HELPER_NAME,
    helper_version: str = __version__,
    join_type: str = "github",
    other: int = 0,
    application: int = 0,
    database: int = 0,
    kubernetes: int = 0,
) -> dict[str, Any]:
    return {
        "run_mode": run_mode,
        "version": "16.4.2",
        "join_type": join_type,
        "helper": helper,
        "helper_version": helper_version,
        "other": other,
        "application": application,
        "database": database,
        "kubernetes": kubernetes,
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
            _config("identity"),
            {},
            _expected(other=1, helper="", helper_version=""),
            id="no-helper",
        ),
        pytest.param(
            _config("identity"),
            {HELPER_VERSION_ENV: "9.9.9"},
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
            {k: v for k, v in _config().items() if k != "oneshot"},
            HELPER_ENVIRONMENT,
            _expected(run_mode=DAEMON),
            id="no-oneshot-key-no-outputs",
        ),
        pytest.param(
            _config("identity", join_method="token"),
            HELPER_ENVIRONMENT,
            _expected(other=1, join_type="token"),
            id="join-method",
        ),
    ],
)
def test_event_fields(
    config: dict[str, Any], env: dict[str, str], expected: dict[str, Any]
) -> None:
    request = build_event(tbot_version="16.4.2", config=config, env=env, distinct_id="id", now=NOW)

    assert request.WhichOneof("event") == "start"
    assert _start_fields(request.start) == expected


@pytest.mark.parametrize("raw", ["16.4.2", "v16.4.2", " v16.4.2\n"])
def test_version_has_no_leading_v(raw: str) -> None:
    request = build_event(tbot_version=raw, config=_config("identity"), env={}, now=NOW)
    assert request.start.version == "16.4.2"


def test_distinct_id_is_a_fresh_uuid_per_event() -> None:
    first = build_event(tbot_version="16.4.2", config=_config("identity"), env={})
    second = build_event(tbot_version="16.4.2", config=_config("identity"), env={})

    assert uuid.UUID(first.distinct_id).version == 4
    assert first.distinct_id != second.distinct_id


def test_timestamp_defaults_to_now_in_utc() -> None:
    before = datetime.datetime.now(datetime.timezone.utc)
    request = build_event(tbot_version="16.4.2", config=_config("identity"), env={})
    after = datetime.datetime.now(datetime.timezone.utc)

    stamped = request.timestamp.ToDatetime(tzinfo=datetime.timezone.utc)
    assert before - datetime.timedelta(seconds=1) <= stamped <= after


def test_timestamp_and_distinct_id_as_given() -> None:
    request = build_event(
        tbot_version="16.4.2", config=_config("identity"), env={}, distinct_id="abc", now=NOW
    )

    assert request.distinct_id == "abc"
    assert request.timestamp.ToDatetime(tzinfo=datetime.timezone.utc) == NOW


def test_serialized_bytes_round_trip() -> None:
    request = build_event(
        tbot_version="16.4.2",
        config=_config("identity", "kubernetes"),
        env=HELPER_ENVIRONMENT,
        distinct_id="4a3e0d5e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        now=NOW,
    )

    decoded = tbot_pb2.SubmitTbotEventRequest.FromString(request.SerializeToString())

    assert decoded == request
    assert decoded.start.destinations_kubernetes == 1
    assert decoded.timestamp.ToDatetime(tzinfo=datetime.timezone.utc) == NOW


def test_event_as_dict_shows_every_field_including_zeros() -> None:
    request = build_event(
        tbot_version="16.4.2", config=_config("identity"), env={}, distinct_id="abc", now=NOW
    )

    as_dict = event_as_dict(request)

    assert as_dict == {
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
    assert list(as_dict["start"]) == [f.name for f in tbot_pb2.TbotStartEvent.DESCRIPTOR.fields]
    json.dumps(as_dict)  # printable as JSON as is


def test_event_carries_nothing_but_the_schema() -> None:
    """Every key of the config and env other than the ones read is ignored."""
    config = _config("identity")
    config["onboarding"]["token"] = "CANARY-TOKEN-123"
    config["proxy_server"] = "canary-proxy.example:443"
    config["certificate_ttl"] = "CANARY-TTL"
    env = {**HELPER_ENVIRONMENT, "GITHUB_REPOSITORY": "canary-org/canary-repo"}

    request = build_event(tbot_version="16.4.2", config=config, env=env, now=NOW)
    wire = request.SerializeToString()

    for canary in (b"CANARY", b"canary", b"bot-token", b"/tmp/out"):
        assert canary not in wire
    assert [f.name for f, _ in request.ListFields()] == ["distinct_id", "timestamp", "start"]
