"""GitHub Actions workflow commands and file commands.

A thin layer over actions-toolkit's ``command`` module.
We deliberately avoid ``actions_toolkit.core``: it imports ``requests`` (for
OIDC) at import time, which would put the HTTP stack on the start-up path of
every run, telemetry or not.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from actions_toolkit.command import issue_command


class ActionFailure(Exception):
    """A failure the user must act on: reported as one ``::error::``, never a traceback."""

    def __init__(
        self,
        message: str,
        *,
        exit_code: int = 1,
        hint: str = "",
        outputs: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        # Longer explanation for the job summary (Markdown); optional.
        self.hint = hint
        # Outputs the failed step still sets (never a credential); the run's private
        # directory, which holds what they name, is then kept.
        self.outputs = dict(outputs or {})


def describe_os_error(exc: OSError) -> str:
    """``No space left on device`` rather than ``[Errno 28] ...``."""
    return exc.strerror or type(exc).__name__


def _command(name: str, message: str, properties: Mapping[str, str] | None = None) -> None:
    issue_command(name, dict(properties or {}), message)
    sys.stdout.flush()


def command_token() -> str:
    """A fresh unguessable token for ``::stop-commands::`` (os.urandom: no extra imports)."""
    return os.urandom(16).hex()


@contextmanager
def commands_stopped() -> Iterator[None]:
    """Relay text that must not act on the job: workflow commands stopped, always resumed.

    The caller ends its last line before leaving, so the resume line is a line of its own.
    """
    resume = command_token()
    info(f"::stop-commands::{resume}")
    try:
        yield
    finally:
        info(f"::{resume}::")


def info(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def debug(message: str) -> None:
    _command("debug", message)


def notice(message: str) -> None:
    _command("notice", message)


def warning(message: str, title: str = "") -> None:
    _command("warning", message, {"title": title} if title else None)


def error(message: str, title: str = "") -> None:
    _command("error", message, {"title": title} if title else None)


def add_mask(value: str) -> None:
    """Register a secret with the runner so it is replaced by *** in all later output."""
    # The runner masks line by line: register each line of a multi-line value.
    for line in value.splitlines() or [value]:
        if line.strip():
            _command("add-mask", line)


def is_debug(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get("RUNNER_DEBUG") == "1"


@contextmanager
def group(title: str) -> Iterator[None]:
    _command("group", title)
    try:
        yield
    finally:
        _command("endgroup", "")


def append_summary(markdown: str) -> None:
    """Add Markdown to the job summary; silently skipped where there is none."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(markdown.rstrip("\n") + "\n\n")
    except OSError as exc:
        # The summary is a courtesy; it must never fail the authentication.
        debug(f"could not write the job summary: {exc}")


def md_literal(text: str, *, in_table: bool = False) -> str:
    """``text`` as a Markdown code span: shown as typed, never rendered.

    For anything from tbot or from an input on its way into the job summary.
    Inside a code span nothing is syntax: no HTML, link, autolink, image or
    emphasis. The fence is longer than any run of backticks in the text; the
    text is put on one line (a newline could end a table row or start a
    heading) with control characters replaced. In a table cell ``|`` is
    escaped, which GitHub's tables undo inside code spans.
    """
    flat = "".join(c if c.isprintable() else "\ufffd" for c in " ".join(text.split()))
    if in_table:
        flat = flat.replace("|", "\\|")
    longest = run = 0
    for char in flat:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    # A space on each side keeps a leading or trailing backtick out of the fence.
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat.strip() else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def die(failure: ActionFailure) -> int:
    """The one failure path: one ``::error::``, a summary section, the exit code."""
    error(failure.message)
    # The message may quote tbot: it is text, not Markdown. The hint is ours.
    summary = f"### Teleport auth failed\n\n{md_literal(failure.message)}"
    if failure.hint:
        summary += f"\n\n{failure.hint}"
    append_summary(summary)
    return failure.exit_code
