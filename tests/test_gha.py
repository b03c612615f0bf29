"""Workflow commands: the step writes exactly what actions/toolkit's issueCommand writes."""

from __future__ import annotations

import io
import os

import pytest
from actions_toolkit.command import issue_command

from teleport_auth import gha

pytestmark = pytest.mark.step

TEXTS = [
    "plain",
    "",
    "100% sure",
    "two\nlines",
    "carriage\rreturn and crlf\r\n",
    "colon: and, comma",
    "%0A already escaped-looking %25",
    "::error::nested",
    "ünïcode ☃",
]


@pytest.mark.parametrize("message", TEXTS)
@pytest.mark.parametrize(
    "properties",
    [{}, {"title": "Anonymous telemetry"}, {"title": "a: b, c%\nd", "file": "x,y"}],
    ids=["none", "title", "escaped"],
)
def test_the_same_line_as_actions_toolkit(
    message: str, properties: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    issue_command("warning", dict(properties), message)
    assert gha.command_line("warning", message, properties) + os.linesep == out.getvalue()


def test_a_message_cannot_start_a_second_command() -> None:
    line = gha.command_line("error", "first\n::add-mask::injected")
    assert "\n" not in line
    assert line == "::error::first%0A::add-mask::injected"
