"""tbot's raw output as log lines, in bounded memory.

Bytes go in as the pipe delivers them; complete lines come out as soon as they
end. The runner ends a line at ``\\n``, ``\\r\\n`` or a lone ``\\r``, and so does
this. Invalid UTF-8 shows as U+FFFD. A line longer than :data:`PIECE_CHARS` is
shown in pieces, each continuation starting with :data:`CONTINUED`: memory stays
bounded whatever tbot prints, and no piece cut from the middle of a line can
start with ``::`` and read as a workflow command.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

PIECE_CHARS = 64 * 1024
CONTINUED = "… "
_LINE_END = re.compile(r"\r\n|\r|\n")

# emit(text, line_start): one log line; line_start is False for a continuation.
Emit = Callable[[str, bool], None]


class LineRelay:
    def __init__(self, emit: Emit, *, piece_chars: int = PIECE_CHARS) -> None:
        self._emit = emit
        self._piece_chars = piece_chars
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""  # the current line's text not shown yet
        self._continued = False  # part of the current line has been shown
        self._cr_pending = False  # the last text ended in \r: a \n next belongs to it

    def feed(self, data: bytes) -> None:
        self._take(self._decoder.decode(data))

    def break_line(self) -> None:
        """Show what there is of the current line now, e.g. before a note of our own."""
        if self._partial:
            self._show(self._partial)
            self._partial = ""

    def close(self) -> None:
        """The output is over: show the last line even without its newline."""
        self._take(self._decoder.decode(b"", final=True))
        if self._partial:
            self._show(self._partial)
        self._partial = ""
        self._continued = False

    def _take(self, text: str) -> None:
        if not text:
            return
        if self._cr_pending and text.startswith("\n"):
            text = text[1:]
        self._cr_pending = text.endswith("\r")
        *complete, rest = _LINE_END.split(text)
        for line in complete:
            self._partial += line
            self._cut()
            # A line that ended right after a piece was shown adds no empty piece.
            if self._partial or not self._continued:
                self._show(self._partial)
            self._partial = ""
            self._continued = False
        self._partial += rest
        self._cut()

    def _cut(self) -> None:
        while len(self._partial) > self._piece_chars:
            self._show(self._partial[: self._piece_chars])
            self._partial = self._partial[self._piece_chars :]

    def _show(self, text: str) -> None:
        if self._continued:
            self._emit(CONTINUED + text, False)
        else:
            self._emit(text, True)
        self._continued = True
