"""How the stand-in fails and logs: tbot's ``ERROR:`` line and its text log format."""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime, timezone
from typing import NoReturn


class ConfigError(Exception):
    """A failure tbot reports as one ``ERROR: <message>`` line before exiting 1."""


def fail(message: str) -> NoReturn:
    raise ConfigError(message)


def print_error(message: str) -> None:
    print(f"ERROR: {message}", file=sys.stderr, flush=True)


def os_error(exc: OSError) -> str:
    """An OSError as Go words it: the lower-case strerror."""
    return (exc.strerror or str(exc)).lower()


_log_lock = threading.Lock()


def _field(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() for c in text) else text


class Logger:
    def __init__(self, debug_enabled: bool = False) -> None:
        self.debug_enabled = debug_enabled

    def _emit(self, level: str, component: str, message: str, where: str, **fields: object) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        extra = "".join(f" {key}:{_field(value)}" for key, value in fields.items())
        line = f"{stamp} {level} {f'[{component}]':<11} {message}{extra} {where}\n"
        # Telemetry and the daemon's threads log too: keep lines whole.
        with _log_lock:
            sys.stderr.write(line)
            sys.stderr.flush()

    def debug(self, component: str, message: str, where: str, **fields: object) -> None:
        if self.debug_enabled:
            self._emit("DEBU", component, message, where, **fields)

    def info(self, component: str, message: str, where: str, **fields: object) -> None:
        self._emit("INFO", component, message, where, **fields)

    def warn(self, component: str, message: str, where: str, **fields: object) -> None:
        self._emit("WARN", component, message, where, **fields)

    def error(self, component: str, message: str, where: str, **fields: object) -> None:
        self._emit("ERRO", component, message, where, **fields)
