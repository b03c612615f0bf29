"""tbot's raw output into log lines: line ends, UTF-8, and long lines in bounded pieces."""

from __future__ import annotations

import pytest

from teleport_auth.relay import CONTINUED, LineRelay


class Log:
    """What the relay emitted, as (text, line_start) pairs."""

    def __init__(self, piece_chars: int = 8) -> None:
        self.lines: list[tuple[str, bool]] = []
        self.relay = LineRelay(
            lambda text, start: self.lines.append((text, start)), piece_chars=piece_chars
        )

    def feed(self, *chunks: bytes) -> Log:
        for chunk in chunks:
            self.relay.feed(chunk)
        return self

    @property
    def texts(self) -> list[str]:
        return [text for text, _ in self.lines]


def test_lines_come_out_as_soon_as_they_end() -> None:
    log = Log(piece_chars=100).feed(b"first\nsec")
    assert log.lines == [("first", True)]
    log.feed(b"ond\nthi")
    assert log.texts == ["first", "second"]
    log.relay.close()
    # The last line shows even without its newline.
    assert log.lines == [("first", True), ("second", True), ("thi", True)]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"a\r\nb\rc\nd\n"],
        # A \r\n split between two reads is still one line end.
        [b"a\r", b"\nb\r", b"c\n", b"d\n"],
        [b"a", b"\r", b"\n", b"b", b"\r", b"c", b"\n", b"d", b"\n"],
    ],
    ids=["one-read", "crlf-split", "byte-by-byte"],
)
def test_line_ends_as_the_runner_sees_them(chunks: list[bytes]) -> None:
    log = Log(piece_chars=100).feed(*chunks)
    log.relay.close()
    assert log.texts == ["a", "b", "c", "d"]


def test_empty_lines_are_kept() -> None:
    log = Log().feed(b"\n\nx\n\n")
    log.relay.close()
    assert log.texts == ["", "", "x", ""]


def test_utf8_split_between_reads_and_invalid_bytes() -> None:
    encoded = "é€😀\n".encode()
    log = Log(piece_chars=100).feed(*(encoded[i : i + 1] for i in range(len(encoded))))
    log.feed(b"bad \xff\xfe end\n", b"cut \xe2\x82")
    log.relay.close()
    assert log.texts == ["é€😀", "bad \ufffd\ufffd end", "cut \ufffd"]


def test_a_long_line_comes_in_bounded_pieces_that_join_back() -> None:
    line = "abcdefghij" * 5
    log = Log(piece_chars=8).feed(line.encode()[:23], line.encode()[23:], b"\nnext\n")
    pieces = log.lines[:-1]
    assert log.lines[-1] == ("next", True)
    # The first piece starts the line; every other one says it continues.
    assert pieces[0] == ("abcdefgh", True)
    assert all(not start and text.startswith(CONTINUED) for text, start in pieces[1:])
    assert all(len(text) <= 8 + len(CONTINUED) for text, _ in pieces)
    assert "".join(text.removeprefix(CONTINUED) for text, _ in pieces) == line


def test_no_piece_cut_from_a_line_starts_with_a_workflow_command() -> None:
    # Every cut point lands on "::"; pieces still cannot read as commands.
    log = Log(piece_chars=4).feed(b"abcd::error::x" * 3 + b"::::::::::::\n")
    log.relay.close()
    continuations = [text for text, start in log.lines if not start]
    assert continuations
    assert not [text for text in continuations if text.startswith("::")]


def test_memory_stays_bounded_for_an_endless_line() -> None:
    log = Log(piece_chars=1024)
    for _ in range(2000):
        log.feed(b"x" * 700)
        # What is held back never exceeds one piece.
        assert len(log.relay._partial) <= 1024
    assert (
        sum(len(text.removeprefix(CONTINUED)) for text in log.texts) + len(log.relay._partial)
        == 2000 * 700
    )


def test_a_line_ending_right_after_a_piece_adds_no_empty_piece() -> None:
    log = Log(piece_chars=4).feed(b"abcdefgh", b"\nz\n")
    assert log.lines == [("abcd", True), (CONTINUED + "efgh", False), ("z", True)]


def test_break_line_shows_the_partial_line_and_keeps_it_a_continuation() -> None:
    log = Log(piece_chars=100).feed(b"::half")
    log.relay.break_line()
    log.feed(b"::rest\n")
    assert log.lines == [("::half", True), (CONTINUED + "::rest", False)]
