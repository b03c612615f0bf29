"""The JSONL file: one line per event, on disk (fsync) before the client is answered."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

# Not the current directory (a clone of a repository, often): a git-ignored
# folder of this checkout, made when first used.
DEFAULT_OUTPUT = str(Path(__file__).resolve().parents[2] / ".collector" / "tbot-events.jsonl")


class StoreClosed(Exception):
    """The collector is stopping: nothing more is stored."""


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        if str(path) == DEFAULT_OUTPUT:
            path.parent.mkdir(mode=0o700, exist_ok=True)
        existed = path.exists()
        # O_APPEND and one write() per line: concurrent appends and a kill
        # between events never leave a torn line behind.
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if not existed:
            self._sync_dir()

    def _sync_dir(self) -> None:
        # The new file's directory entry must survive a crash as well.
        with contextlib.suppress(OSError):
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def append(self, record: dict[str, Any]) -> None:
        """Write one line and fsync it; only then may the event be acknowledged."""
        data = (json.dumps(record) + "\n").encode()
        with self._lock:
            if self._fd is None:
                raise StoreClosed
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
