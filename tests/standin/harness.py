"""Running the tbot stand-in from its tests: a clean environment, configs, a collector.

Not part of the stand-in itself (tbot.py never imports it).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from teleport_auth._proto.prehog.v1alpha import tbot_pb2

TOKEN = "s3cr3t-join-token"
PROXY = "tele.example.com:443"
# Variables of the developer's shell that would change what the stand-in does.
_FOREIGN_ENV_PREFIXES = ("TELEPORT_", "STANDIN_TBOT_", "_TBOT_", "ACTIONS_ID_TOKEN_")

Config = dict[str, Any]


def directory(path: Path) -> dict[str, str]:
    return {"type": "directory", "symlinks": "try-secure", "path": str(path)}


def action_config(out_dir: Path) -> Config:
    """The config the auth action writes (docs/compatibility.md)."""
    return {
        "version": "v2",
        "proxy_server": PROXY,
        "oneshot": True,
        "onboarding": {"join_method": "github", "token": TOKEN, "ca_pins": []},
        "storage": {"type": "memory"},
        "outputs": [{"type": "identity", "destination": directory(out_dir), "roles": []}],
        "services": [],
    }


def base_config(*, oneshot: bool = True) -> Config:
    """The config every action of the family starts from (docs/compatibility.md)."""
    config = action_config(Path("unused"))
    config.update(oneshot=oneshot, outputs=[], services=[])
    return config


def output_config(out_dir: Path, kind: str, **keys: object) -> Config:
    """A one-shot config with one output of ``kind`` into ``out_dir``, as auth-k8s
    (kubernetes, ``kubernetes_cluster``) or auth-application (application, ``app_name``)
    write it."""
    config = base_config()
    config["outputs"] = [{"type": kind, "destination": directory(out_dir), "roles": [], **keys}]
    return config


# The services entry each daemon action writes, by service type (docs/compatibility.md).
TUNNEL_ENTRIES: dict[str, Config] = {
    "database-tunnel": {"roles": [], "service": "pg", "database": "app", "username": "bot"},
    "application-tunnel": {"roles": [], "app_name": "grafana"},
    "application-proxy": {},
}


def tunnel_config(kind: str, listen: str) -> Config:
    """A daemon config with one tunnel service listening on ``listen``."""
    config = base_config(oneshot=False)
    config["services"] = [{"type": kind, "listen": listen, **TUNNEL_ENTRIES[kind]}]
    return config


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ERROR: ")]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def clean_env() -> dict[str, str]:
    """This process's environment without anything that steers tbot, plus what a job
    with ``permissions: id-token: write`` has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_ENV_PREFIXES)}
    env["ACTIONS_ID_TOKEN_REQUEST_URL"] = "https://token.actions.example/?audience="
    env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "runtime-token"
    return env


@dataclass
class Standin:
    """The installed stand-in, a clean environment and a place for its config and outputs."""

    exe: Path
    env: dict[str, str]
    tmp: Path

    @property
    def out_dir(self) -> Path:
        return self.tmp / "out"

    @property
    def config_path(self) -> Path:
        return self.tmp / "bot-config.yaml"

    @property
    def record_path(self) -> Path:
        return self.tmp / "record.jsonl"

    def config(self) -> Config:
        return action_config(self.out_dir)

    def write_config(self, config: Config | str | None = None) -> Path:
        """Write ``config`` (default: the auth action's) where ``start`` reads it."""
        if config is None:
            config = self.config()
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        self.config_path.write_text(text, encoding="utf-8")
        return self.config_path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.exe), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def start(
        self, config: Config | str | None = None, *flags: str
    ) -> subprocess.CompletedProcess[str]:
        """Write ``config`` and run ``tbot start -c``."""
        return self.run("start", "-c", str(self.write_config(config)), *flags)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.record_path.read_text().splitlines()]


# --- a reporting endpoint -----------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Collector:
    url: str
    requests: list[Received] = field(default_factory=list)

    def starts(self) -> list[tbot_pb2.TbotStartEvent]:
        return [tbot_pb2.SubmitTbotEventRequest.FromString(r.body).start for r in self.requests]


@contextmanager
def collector() -> Iterator[Collector]:
    """A reporting endpoint on 127.0.0.1 that stores what it gets."""
    received: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(Received(self.path, dict(self.headers.items()), body))
            reply = tbot_pb2.SubmitTbotEventResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/proto")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval: shutdown() waits for it.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        yield Collector(url=f"http://127.0.0.1:{port}", requests=received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def enable_telemetry(env: dict[str, str], collector: Collector, value: str = "1") -> None:
    env["TELEPORT_ANONYMOUS_TELEMETRY"] = value
    env["TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS"] = collector.url
    env["_TBOT_TELEMETRY_HELPER"] = "gha:teleport-actions/auth"
    env["_TBOT_TELEMETRY_HELPER_VERSION"] = "2.0.0"
