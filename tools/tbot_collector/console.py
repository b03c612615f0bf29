"""The collector's log: whole lines from many threads, nothing a terminal would act on."""

from __future__ import annotations

import sys
import threading
from typing import TextIO


def escape(text: str) -> str:
    """``text`` with each non-printable character written as an escape (``\\x1b``, ``\\u202e``).

    Paths, header values and event fields come from whoever sends a request:
    an escape sequence, a carriage return or a bidi override in them must not
    reach the terminal (or a CI log) of the person reading this log.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


class Lines:
    """Writes one line at a time to stdout or stderr; a broken stream never fails a request."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self._out = out
        self._err = err
        self._lock = threading.Lock()

    def out(self, line: str) -> None:
        self._write(self._out or sys.stdout, escape(line))

    def err(self, line: str) -> None:
        # One line per message: newlines (an exception's, a client's) become spaces.
        self._write(self._err or sys.stderr, escape(" ".join(line.split())))

    def _write(self, stream: TextIO, line: str) -> None:
        with self._lock:
            try:
                try:
                    stream.write(line + "\n")
                except UnicodeEncodeError:
                    enc = stream.encoding or "ascii"
                    stream.write(line.encode(enc, "replace").decode(enc) + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass
