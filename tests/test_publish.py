"""All or nothing at the end, named errors for the runner's files, and a summary that is text."""

from __future__ import annotations

import errno
import re
import stat
from pathlib import Path

import pytest

from conftest import Job, parse_file_commands
from step_helpers import errors, run_step
from teleport_auth import runner_files
from teleport_auth.gha import ActionFailure, describe_os_error, md_literal
from teleport_auth.runner_files import RunnerFiles, key_value_message

pytestmark = pytest.mark.step


def test_a_full_github_env_publishes_nothing(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    job.env["GITHUB_ENV"] = "/dev/full"
    code, log = run_step(capsys)
    assert code == 1
    assert errors(log) == [
        "::error::Could not write to GITHUB_ENV (/dev/full): No space left on device."
    ]
    # GITHUB_OUTPUT was written first and has been cut back: no outputs from a failed step.
    assert Path(job.env["GITHUB_OUTPUT"]).read_text() == ""
    # tbot ran, but its identity is gone, and so is the config.
    assert job.started_tbot
    assert job.runner_temp_entries() == []


def test_a_full_github_output_publishes_nothing(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job.env["GITHUB_OUTPUT"] = "/dev/full"
    code, log = run_step(capsys)
    assert code == 1
    [error] = errors(log)
    assert (
        error == "::error::Could not write to GITHUB_OUTPUT (/dev/full): No space left on device."
    )
    assert Path(job.env["GITHUB_ENV"]).read_text() == ""
    assert job.runner_temp_entries() == []


def test_earlier_lines_of_the_files_are_kept(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    # Another step's outputs and variables before ours survive our rollback.
    Path(job.env["GITHUB_OUTPUT"]).write_text("earlier=1\n")
    job.env["GITHUB_ENV"] = "/dev/full"
    code, _ = run_step(capsys)
    assert code == 1
    assert Path(job.env["GITHUB_OUTPUT"]).read_text() == "earlier=1\n"


@pytest.mark.parametrize("variable", ["GITHUB_OUTPUT", "GITHUB_ENV"])
def test_an_unopenable_file_fails_before_tbot_starts(
    job: Job, capsys: pytest.CaptureFixture[str], variable: str
) -> None:
    missing = job.root / "no-such-dir" / "file"
    job.env[variable] = str(missing)
    code, log = run_step(capsys)
    assert code == 1
    assert errors(log) == [
        f"::error::Could not open {variable} ({missing}): No such file or directory."
    ]
    assert not job.started_tbot
    assert job.runner_temp_entries() == []


def test_disabled_variables_need_no_github_env(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job.env["GITHUB_ENV"] = "/dev/full"
    job.env["INPUT_DISABLE_ENV_VARS"] = "true"
    code, log = run_step(capsys)
    assert code == 0, log
    assert set(job.outputs) == {"identity-file", "ssh-config", "destination-dir"}


def test_read_only_runner_temp_is_named(
    job: Job, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root ignores directory modes, so the read-only file system is simulated at mkdir.
    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    code, log = run_step(capsys)
    assert code == 1
    temp = job.env["RUNNER_TEMP"]
    assert errors(log) == [
        f"::error::Could not create a private directory in RUNNER_TEMP ({temp}): "
        "Read-only file system."
    ]
    assert not job.started_tbot
    assert job.outputs == {}


def test_full_runner_temp_is_named(
    job: Job, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("teleport_auth.config.write_config", full)
    code, log = run_step(capsys)
    assert code == 1
    [error] = errors(log)
    assert re.fullmatch(
        r"::error::Could not write the tbot configuration in RUNNER_TEMP \(.+\): "
        r"No space left on device\.",
        error,
    )
    assert not job.started_tbot
    assert job.runner_temp_entries() == []


HOSTILE = (
    "<img src=x onerror=alert(1)> <script>x</script> [click](https://evil.example) "
    "![i](https://evil.example/i.png) **bold** _it_ `code` www.evil.example | cell\n# heading"
)


def code_spans_only(markdown: str, hostile_bits: list[str]) -> None:
    """Every hostile fragment sits inside a code span, which GitHub shows as typed."""
    spans = re.findall(r"(`+) (.*?) \1|(`+)([^`].*?[^`]|[^`])\3", markdown)
    inside = " ".join(s[1] or s[3] for s in spans)
    outside = re.sub(r"(`+) .*? \1|(`+)([^`].*?[^`]|[^`])\2", "", markdown)
    for bit in hostile_bits:
        assert bit in inside, bit
        assert bit not in outside, bit


def test_tbot_error_is_literal_in_the_summary(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    job.env["STANDIN_TBOT_FAIL"] = HOSTILE.replace("\n", " ")
    code, _log = run_step(capsys)
    assert code == 1
    summary = job.summary
    assert "### Teleport auth failed" in summary
    code_spans_only(summary, ["<img", "<script>", "[click]", "![i]", "**bold**", "www.evil"])


def test_input_values_are_literal_in_the_summary(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "<b>x</b>|[a](https://evil.example)`**"
    job.env["INPUT_KUBERNETES_CLUSTER"] = name
    code, log = run_step(capsys, ["k8s"])
    assert code == 0, log
    row = next(line for line in job.summary.splitlines() if line.startswith("| Kubernetes"))
    # The pipe is escaped so the row keeps its two cells.
    assert row.count(" | ") == 1
    code_spans_only(row, ["<b>x</b>", "[a]"])


@pytest.mark.parametrize(
    ("text", "in_table", "expected"),
    [
        ("plain", False, "`plain`"),
        ("a`b", False, "``a`b``"),
        ("``x`", False, "``` ``x` ```"),
        ("a|b", True, "`a\\|b`"),
        ("a|b", False, "`a|b`"),
        ("two\nlines\x1b[31m", False, "`two lines\ufffd[31m`"),
    ],
)
def test_md_literal(text: str, in_table: bool, expected: str) -> None:
    assert md_literal(text, in_table=in_table) == expected


# --- the runner's files, unit by unit -----------------------------------------------


def test_a_missing_file_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ActionFailure) as caught:
        RunnerFiles.open({"GITHUB_OUTPUT": str(tmp_path / "out")}, with_env=True)
    assert caught.value.message == (
        "GITHUB_ENV is not set: this step must run in a GitHub Actions job (or under act)."
    )


def test_files_not_there_yet_are_created_private_and_appended_to(tmp_path: Path) -> None:
    output, exported = tmp_path / "output", tmp_path / "env"
    exported.write_text("EARLIER=1\n")
    files = RunnerFiles.open(
        {"GITHUB_OUTPUT": str(output), "GITHUB_ENV": str(exported)}, with_env=True
    )
    try:
        files.publish({}, {"NAME": "value"})  # no outputs: the variables are still written
    finally:
        files.close()
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert output.read_text() == ""
    assert parse_file_commands(exported.read_text()) == {"EARLIER": "1", "NAME": "value"}


def test_an_os_error_is_described_in_words() -> None:
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device")) == (
        "No space left on device"
    )
    assert describe_os_error(PermissionError()) == "PermissionError"


def test_a_key_or_value_holding_the_delimiter_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner_files, "uuid4", lambda: "fixed")
    assert key_value_message("k", "v") == "k<<ghadelimiter_fixed\nv\nghadelimiter_fixed"
    for key, value in (("k", "a ghadelimiter_fixed"), ("ghadelimiter_fixed", "v")):
        with pytest.raises(ActionFailure) as caught:
            key_value_message(key, value)
        assert caught.value.message == f"Output or variable {key!r} holds its own delimiter."
