"""The runner's file commands for outputs and variables, written all or nothing.

``GITHUB_OUTPUT`` (and ``GITHUB_ENV`` unless variables are disabled) are opened
for appending before tbot starts, so a missing or unwritable file fails the
step before any certificate is issued. Publishing writes each file in one go
and, should the second write fail, cuts the first back to where it was: a
failed step sets no outputs and exports nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import NamedTuple

from teleport_auth.gha import ActionFailure, describe_os_error
from teleport_auth.uuids import uuid4


def key_value_message(key: str, value: str) -> str:
    """One ``name<<delimiter`` entry of a file command, with a fresh random delimiter.

    The multi-line form GitHub documents (the one actions-toolkit writes), so a
    value may hold any text; a key or value that contained the delimiter would
    be refused, which a fresh UUID makes impossible in practice.
    """
    delimiter = f"ghadelimiter_{uuid4()}"
    if delimiter in key or delimiter in value:
        raise ActionFailure(f"Output or variable {key!r} holds its own delimiter.")
    return f"{key}<<{delimiter}\n{value}\n{delimiter}"


class _File(NamedTuple):
    variable: str
    path: str
    fd: int

    def failure(self, exc: OSError, doing: str) -> ActionFailure:
        return ActionFailure(
            f"Could not {doing} {self.variable} ({self.path}): {describe_os_error(exc)}."
        )


class RunnerFiles:
    def __init__(self, files: list[_File]) -> None:
        self._files = files

    @classmethod
    def open(cls, env: Mapping[str, str], *, with_env: bool) -> RunnerFiles:
        names = ["GITHUB_OUTPUT"] + (["GITHUB_ENV"] if with_env else [])
        opened: list[_File] = []
        try:
            for name in names:
                path = env.get(name, "")
                if not path:
                    raise ActionFailure(
                        f"{name} is not set: this step must run in a GitHub Actions job "
                        "(or under act)."
                    )
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
                except OSError as exc:
                    raise _File(name, path, -1).failure(exc, "open") from None
                opened.append(_File(name, path, fd))
        except BaseException:
            cls(opened).close()
            raise
        return cls(opened)

    def publish(self, outputs: Mapping[str, str], exports: Mapping[str, str]) -> None:
        """Write outputs and variables; on any failure undo what was written and raise."""
        contents = {"GITHUB_OUTPUT": outputs, "GITHUB_ENV": exports}
        written: list[tuple[_File, int]] = []
        for file in self._files:
            data = "".join(
                key_value_message(key, value) + "\n"
                for key, value in contents[file.variable].items()
            ).encode("utf-8")
            if not data:
                continue
            try:
                start = os.lseek(file.fd, 0, os.SEEK_END)
            except OSError:
                start = -1  # a pipe or device: nothing to cut back
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(file.fd, view) :]
                written.append((file, start))
            except OSError as exc:
                written.append((file, start))
                self._undo(written)
                raise file.failure(exc, "write to") from None

    @staticmethod
    def _undo(written: list[tuple[_File, int]]) -> None:
        for file, start in written:
            # Best effort: the step fails either way.
            if start >= 0:
                with contextlib.suppress(OSError):
                    os.ftruncate(file.fd, start)

    def close(self) -> None:
        for file in self._files:
            with contextlib.suppress(OSError):
                os.close(file.fd)
        self._files = []
