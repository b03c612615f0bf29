"""src/launch: no value of the user's is registered as a secret (as in the
original), nothing printed before a workflow command stands in front of it on
its line, and a missing or broken interpreter gets a named error."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import Job, assert_token_never_printed
from launcher import REPO, copy_action, launch, log_lines, python_first_on_path, runner_commands

pytestmark = pytest.mark.step

# A bundle build as pip's can look: coloured warnings on stderr, a line that
# would be a workflow command, and a last warning cut off inside an escape
# sequence, without a newline. It does build the bundle (a copy of ours).
NOISY_BUNDLE = textwrap.dedent(
    """\
    import os, shutil, sys
    from pathlib import Path

    sys.stderr.write("\\033[33mWARNING: a coloured pip warning\\033[0m\\n")
    print("::set-output name=identity-file::/from/the/build")
    print("::error::an error line printed by the build")
    print("INPUT variables seen by the build:", [k for k in os.environ if k[:6] == "INPUT_"])
    sys.stdout.flush()
    shutil.copytree({bundle!r}, Path(__file__).resolve().parent.parent / "_vendor")
    sys.stderr.write("\\033[1;33mWARNING: the last one, cut short\\033[")
    """
)


def test_a_noisy_build_cannot_disturb_a_command(job: Job, tmp_path: Path) -> None:
    action = copy_action(tmp_path / "action")
    (action / "scripts" / "bundle").write_text(NOISY_BUNDLE.format(bundle=str(REPO / "_vendor")))
    env = python_first_on_path(job.env) | {"INPUT_PROXY": "  tele.example.com:443\n"}

    done = launch(action, env, merged=True)
    log = done.stdout
    assert done.returncode == 0, log
    lines = log_lines(log)

    # The notice is the very first line, whole, before the build's output.
    assert lines[0].startswith("::notice::teleport-actions/auth: building its runtime packages")
    assert_token_never_printed(log)
    assert "INPUT variables seen by the build: []" in lines

    # The runner's view: the build's output is shown in a group with commands
    # stopped, so its lines act on nothing; every command of ours is whole.
    commands = runner_commands(log)
    names = [name for name, _ in commands]
    assert "set-output" not in names
    assert ("error", "an error line printed by the build") not in commands
    start = names.index("group")
    token = commands[start + 1][1]
    assert commands[start : start + 4] == [
        ("group", "Runtime bundle build output"),
        ("stop-commands", token),
        ("resume", token),
        ("endgroup", ""),
    ]
    assert len(token) >= 32
    # The cut-off sequence is closed by a reset before the line ends.
    shown = lines[lines.index(f"::stop-commands::{token}") + 1 : lines.index(f"::{token}::")]
    assert shown[-1] == "\033[1;33mWARNING: the last one, cut short\033[\033[0m"
    # Nothing of ours was left in front of a command: each one the runner would
    # see somewhere in a line, it sees at the start of that line.
    for line in lines:
        for name in ("add-mask", "notice", "group", "endgroup", "stop-commands", token):
            if f"::{name}::" in line:
                assert line.startswith(f"::{name}::"), line

    # The step ran after it and set its outputs.
    assert set(job.outputs) == {"identity-file", "ssh-config", "destination-dir"}
    assert names[-1] != "error"


@pytest.mark.parametrize(
    "value",
    ["gha-bot-token", "  padded  \n", "two\nlines\n\n  third, indented\n", "per%cent %0A%25"],
)
def test_the_launcher_masks_nothing(job: Job, value: str) -> None:
    # Stops right after the interpreter check (no interpreter): only its error.
    env = job.env | {"INPUT_TOKEN": value, "TELEPORT_AUTH_PYTHON": "python3-not-installed"}
    done = launch(REPO, env)
    assert "::add-mask::" not in done.stdout + done.stderr
    assert [line for line in log_lines(done.stdout) if line.startswith("::")] == [
        line for line in log_lines(done.stdout) if line.startswith("::error::")
    ]


def test_the_missing_python_error(job: Job) -> None:
    env = job.env | {"TELEPORT_AUTH_PYTHON": "python3-not-installed"}
    done = launch(REPO, env)
    assert done.returncode == 1
    assert log_lines(done.stdout) == [
        "::error::teleport-actions/auth needs python3 (3.10 or newer) on the runner, and "
        "'python3-not-installed' was not found on PATH. Install it (e.g. with "
        "actions/setup-python) before this step, or name another interpreter with "
        "TELEPORT_AUTH_PYTHON.",
    ]
    assert job.records == []


def test_in_a_container_the_error_says_what_the_image_needs(job: Job) -> None:
    # In a job's container the runner mounts the work directory as /__w.
    env = job.env | {
        "GITHUB_WORKSPACE": "/__w/repo/repo",
        "TELEPORT_AUTH_PYTHON": "python3-missing-in-image",
    }
    done = launch(REPO, env)
    assert done.returncode == 1
    [error] = log_lines(done.stdout)
    assert error.startswith("::error::teleport-actions/auth needs python3 (3.10 or newer) and bash")
    assert "in this job's container" in error
    assert "apt-get install -y python3" in error
    assert job.records == []


def test_an_interpreter_that_cannot_run_gets_a_named_error(job: Job, tmp_path: Path) -> None:
    # A pyenv shim for a version that is not installed: on PATH, exits 127.
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "python3.11"
    shim.write_text('#!/bin/sh\necho "pyenv: python3.11: command not found" >&2\nexit 127\n')
    shim.chmod(0o755)
    env = job.env | {
        "PATH": f"{shims}:{job.env['PATH']}",
        "TELEPORT_AUTH_PYTHON": "python3.11",
    }
    done = launch(REPO, env)
    assert done.returncode == 1
    assert log_lines(done.stdout) == [
        "::error::teleport-actions/auth could not run the Python interpreter 'python3.11' "
        "(named by TELEPORT_AUTH_PYTHON): it exited with code 127 (pyenv: python3.11: command "
        "not found). Name a working python3 (3.10 or newer) with TELEPORT_AUTH_PYTHON, or "
        "install one before this step.",
    ]
    assert job.records == []


def test_arguments_reach_the_module_in_sys_argv(job: Job, tmp_path: Path) -> None:
    # Each action.yml of the family runs `launch <member>`; the module gets the
    # arguments as sys.argv[1:], through run_action.py's runpy call.
    action = copy_action(tmp_path / "action", with_bundle=True)
    main = action / "src" / "teleport_auth" / "__main__.py"
    main.write_text("import json, sys\nprint(json.dumps(sys.argv))\n")
    done = launch(action, python_first_on_path(job.env), "k8s", "two words", "")
    assert done.returncode == 0, done.stdout + done.stderr
    argv = json.loads(log_lines(done.stdout)[-1])
    assert argv[1:] == ["k8s", "two words", ""]
    assert Path(argv[0]) == main
