"""Shared by the collector's tests: requests to send, a raw HTTP client, a running collector."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from tbot_collector import METHOD_PATH, Collector
from teleport_auth._proto.prehog.v1alpha.tbot_pb2 import SubmitTbotEventRequest, TbotStartEvent

PROTO = "application/proto"
JSON = "application/json"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$")
TBOT_PROPS = {
    "tbot.run_mode",
    "tbot.version",
    "tbot.join_type",
    "tbot.helper",
    "tbot.helper_version",
    "tbot.destinations_other",
    "tbot.destinations_database",
    "tbot.destinations_kubernetes",
    "tbot.destinations_application",
}
EVENT_TIME = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)


def make_request(
    distinct_id: str = "0b5c1c4e-8f7a-4c52-9d7e-3c1f2a9b8e11", **start: Any
) -> SubmitTbotEventRequest:
    fields: dict[str, Any] = {
        "run_mode": TbotStartEvent.RUN_MODE_ONE_SHOT,
        "version": "16.4.2",
        "join_type": "github",
        "helper": "gha:teleport-actions/auth",
        "helper_version": "1.0.0",
        "destinations_other": 1,
    }
    fields.update(start)
    req = SubmitTbotEventRequest(distinct_id=distinct_id, start=TbotStartEvent(**fields))
    req.timestamp.FromDatetime(EVENT_TIME)
    return req


def as_json(req: SubmitTbotEventRequest) -> bytes:
    return json_format.MessageToJson(req).encode()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type") == JSON
        return json.loads(self.body)


def post(
    port: int,
    body: bytes | Iterator[bytes] | None,
    content_type: str | None = PROTO,
    *,
    method: str = "POST",
    path: str = METHOD_PATH,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> Reply:
    h = {"Connect-Protocol-Version": "1"}
    if content_type is not None:
        h["Content-Type"] = content_type
    h.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=h, encode_chunked=chunked)
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def raw(port: int, data: bytes) -> Reply:
    """Send raw bytes, read the answer (the server closes after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())


def jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@dataclass
class Running:
    collector: Collector
    output: Path
    stdout: io.StringIO
    stderr: io.StringIO

    @property
    def port(self) -> int:
        return self.collector.port


@contextlib.contextmanager
def run_collector(tmp_path: Path, **kwargs: Any) -> Iterator[Running]:
    """A collector in this process, its lines captured; stopped on exit."""
    out, err = io.StringIO(), io.StringIO()
    output = tmp_path / "events.jsonl"
    with Collector(output, stdout=out, stderr=err, **kwargs) as c:
        yield Running(c, output, out, err)
