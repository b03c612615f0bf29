"""src/launch: the user's values are masked before anything else is printed, and
nothing printed before a workflow command stands in front of it on its line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import Job, assert_token_only_in_add_mask
from launcher import REPO, copy_action, launch, log_lines, python_first_on_path, runner_commands
from teleport_auth import gha

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


def test_masks_come_first_and_a_noisy_build_cannot_disturb_a_command(
    job: Job, tmp_path: Path
) -> None:
    action = copy_action(tmp_path / "action")
    (action / "scripts" / "bundle").write_text(NOISY_BUNDLE.format(bundle=str(REPO / "_vendor")))
    env = python_first_on_path(job.env) | {"INPUT_PROXY": "  tele.example.com:443\n"}

    done = launch(action, env, merged=True)
    log = done.stdout
    assert done.returncode == 0, log
    lines = log_lines(log)

    # The masks are the very first lines, whole, before the notice and the build.
    assert lines[:2] == ["::add-mask::gha-bot-token", "::add-mask::tele.example.com:443"]
    assert lines[2].startswith("::notice::teleport-actions/auth: building its runtime packages")
    assert_token_only_in_add_mask(log)
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

    # The step ran after it: the module masked again and set its outputs.
    assert set(job.outputs) == {"identity-file", "ssh-config", "destination-dir"}
    assert names[-1] != "error"


@pytest.mark.parametrize(
    "value",
    [
        "gha-bot-token",
        "  padded  \n",
        "two\nlines\n\n  third, indented\n",
        "crlf\r\nlines",
        "per%cent %0A%25",
        "   \n\t ",
        "",
    ],
)
def test_masks_each_line_as_the_module_does(
    job: Job, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Stops right after the masks (no interpreter), so only the masks are printed.
    env = job.env | {"INPUT_TOKEN": value, "TELEPORT_AUTH_PYTHON": "python3-not-installed"}
    done = launch(REPO, env)
    masks = [line for line in log_lines(done.stdout) if line.startswith("::add-mask::")]

    if value.strip():
        gha.add_mask(value.strip())
    want = capsys.readouterr().out.splitlines()
    want.append("::add-mask::tele.example.com:443")
    assert masks == want
    assert done.stdout.startswith("".join(line + "\n" for line in want))


def test_masks_come_before_the_missing_python_error(job: Job) -> None:
    env = job.env | {"TELEPORT_AUTH_PYTHON": "python3-not-installed"}
    done = launch(REPO, env)
    assert done.returncode == 1
    assert log_lines(done.stdout) == [
        "::add-mask::gha-bot-token",
        "::add-mask::tele.example.com:443",
        "::error::teleport-actions/auth needs python3 (3.10 or newer) on the runner, and "
        "'python3-not-installed' was not found on PATH. Install it (e.g. with "
        "actions/setup-python) before this step, or name another interpreter with "
        "TELEPORT_AUTH_PYTHON.",
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
