"""``python3 scripts/dev act``: the parts that need no act.

What the scan reaches and reads (mappings, labels, OIDC jobs, unexpected
inputs), the views of this checkout, the setup stand-in's checks, the OIDC
BASH_ENV file, how act's log is filtered, removal of the private directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from act_local.actlog import ActLog
from act_local.cli import _remove, _report_scan, _resolve_workflows, main
from act_local.jobenv import OIDC_DUMMIES, oidc_bash_env, setup_standin
from act_local.processes import stop_tbots_under
from act_local.setup_standin.setup import SetupError, check_inputs
from act_local.setup_standin.setup import run as run_setup
from act_local.view import LINKED, ViewError, make_member_view, make_view
from act_local.workflows import (
    Scan,
    classify,
    id_token_write,
    scan,
    unexpected_inputs,
    workflow_files,
)
from teleport_auth.family import MEMBERS
from teleport_auth.family.spec import END_OF_JOB_FOLDER, END_OF_JOB_REF
from throwaway_repo import make_repo

REPO = Path(__file__).resolve().parent.parent
SHA = "0123456789abcdef0123456789abcdef01234567"


def scan_of(tmp_path: Path, files: dict[str, str], selected: str | None = None) -> Scan:
    repo = make_repo(tmp_path / "repo", files)
    chosen = repo / ".github" / "workflows" / selected if selected else None
    return scan(repo, workflow_files(repo, chosen))


def test_scan_finds_refs_members_and_labels(tmp_path: Path) -> None:
    workflow = """\
on: push
jobs:
  a:
    runs-on: ${{ matrix.os }}
    strategy:
      matrix:
        os: [ubuntu-22.04, big-runner]
        include:
          - os: arm-runner
    steps:
      - uses: teleport-actions/auth@v1
      - uses: "teleport-actions/auth/k8s@v1"   # same ref: one mapping
      - uses: ./.github/actions/login
  b:
    runs-on: {group: ours, labels: [self-hosted, gpu]}
    steps:
      - uses: 'teleport-actions/auth/database-tunnel@release-2'
  c:
    runs-on: ${{ inputs.where }}
    steps: [{run: echo}]
"""
    composite = "runs:\n  using: composite\n  steps:\n    - uses: teleport-actions/auth@sha-1\n"
    found = scan_of(
        tmp_path,
        {".github/workflows/w.yml": workflow, ".github/actions/login/action.yml": composite},
    )
    # The daemon member's own nested end-of-job action is reached too.
    assert found.mappings() == [
        "teleport-actions/auth@v1",
        "teleport-actions/auth@sha-1",
        "teleport-actions/auth@release-2",
        f"teleport-actions/auth@{END_OF_JOB_REF}",
    ]
    assert found.members() == {"", "k8s", "database-tunnel", END_OF_JOB_FOLDER}
    assert found.checkout_folders() == {"k8s", "database-tunnel", END_OF_JOB_FOLDER}
    assert found.labels == {"ubuntu-22.04", "big-runner", "arm-runner", "self-hosted", "gpu"}


@pytest.mark.parametrize("ref", ["v2", "main", "release/2.x", SHA])
def test_every_original_maps_onto_its_member_for_any_ref(ref: str) -> None:
    for member in MEMBERS:
        found = classify(f"{member.original}@{ref}")
        assert found is not None
        assert (found.kind, found.folder, found.mapping) == (
            "checkout" if not member.folder else "member",
            member.folder,
            f"{member.original}@{ref}",
        )
        assert found.describe() == f"this checkout's {member.folder or 'auth'} member"
    setup = classify(f"teleport-actions/setup@{ref}")
    assert setup is not None
    assert setup.kind == "setup"
    # Any folder of this repository, a member or not, at any ref.
    helper = classify(f"teleport-actions/auth/.github/helpers/post@{ref}")
    assert helper is not None
    assert (helper.kind, helper.folder, helper.mapping) == (
        "checkout",
        ".github/helpers/post",
        f"teleport-actions/auth@{ref}",
    )
    assert helper.describe() == "this checkout's .github/helpers/post folder"
    for other in (
        "actions/checkout@v4",
        "teleport-actions/other@v1",
        "teleport-actions/setup/x@v1",
    ):
        assert classify(other) is None


def test_scan_follows_reusable_workflows_local_actions_and_this_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "k8s").mkdir(parents=True)
    (checkout / "action.yml").write_text("runs: {using: composite, steps: []}\n")
    # A member using a helper folder of this repository at a fixed ref.
    (checkout / "k8s" / "action.yml").write_text(
        "runs:\n  using: composite\n  steps:\n    - uses: teleport-actions/auth/.post@v1.2.3\n"
    )
    (checkout / ".post").mkdir()
    (checkout / ".post" / "action.yml").write_text("runs: {using: node20, main: main.js}\n")
    files = {
        ".github/workflows/caller.yml": (
            "on: push\njobs:\n  call:\n    uses: ./.github/workflows/called.yml\n"
        ),
        ".github/workflows/called.yml": """\
on: workflow_call
jobs:
  inner:
    runs-on: inner-runner
    steps:
      - uses: ./.github/actions/outer
""",
        ".github/actions/outer/action.yml": (
            "runs:\n  using: composite\n  steps:\n    - uses: ./.github/actions/inner\n"
        ),
        ".github/actions/inner/action.yml": (
            "runs:\n  using: composite\n  steps:\n    - uses: teleport-actions/auth-k8s@v2\n"
        ),
        ".github/workflows/unselected.yml": (
            "on: push\njobs:\n  x:\n    runs-on: other-runner\n"
            "    steps:\n      - uses: teleport-actions/auth@unselected\n"
        ),
    }
    repo = make_repo(tmp_path / "repo", files)
    found = scan(repo, workflow_files(repo, repo / ".github/workflows/caller.yml"), checkout)
    assert [r.uses for r in found.references] == [
        "teleport-actions/auth-k8s@v2",
        "teleport-actions/auth/.post@v1.2.3",
    ]
    assert found.mappings() == ["teleport-actions/auth-k8s@v2", "teleport-actions/auth@v1.2.3"]
    assert found.checkout_folders() == {".post"}
    assert found.labels == {"inner-runner"}


def workflow_with_permissions(workflow: str, job: str) -> str:
    return f"name: w\non: push\n{workflow}jobs:\n  j:\n    runs-on: x\n{job}    steps: []\n"


@pytest.mark.parametrize(
    ("workflow", "job", "granted"),
    [
        ("", "", False),  # GitHub's default token has no id-token
        ("permissions:\n  id-token: write\n", "", True),
        ("permissions: write-all\n", "", True),
        ("permissions: read-all\n", "", False),
        ("permissions: {}\n", "", False),
        ("permissions:\n  id-token: read\n", "", False),
        # The job's permissions replace the workflow's.
        ("permissions:\n  id-token: write\n", "    permissions:\n      contents: read\n", False),
        ("permissions:\n  contents: read\n", "    permissions:\n      id-token: write\n", True),
        ("", "    permissions: write-all\n", True),
    ],
)
def test_oidc_only_where_permissions_grant_id_token_write(
    tmp_path: Path, workflow: str, job: str, granted: bool
) -> None:
    found = scan_of(tmp_path, {".github/workflows/w.yml": workflow_with_permissions(workflow, job)})
    assert found.oidc == {("w", "j"): {granted}}
    assert found.oidc_jobs() == ([("w", "j")] if granted else [])


@pytest.mark.parametrize(
    ("caller", "called", "granted"),
    [
        ("    permissions:\n      id-token: write\n", "", True),  # inherited from the caller
        ("", "permissions:\n  id-token: write\n", False),  # at most what the caller has
        ("    permissions: write-all\n", "permissions:\n  contents: read\n", False),
    ],
)
def test_a_called_workflow_gets_at_most_what_its_caller_grants(
    tmp_path: Path, caller: str, called: str, granted: bool
) -> None:
    files = {
        ".github/workflows/caller.yml": (
            f"on: push\njobs:\n  call:\n{caller}    uses: ./.github/workflows/called.yml\n"
        ),
        # No name: act sets GITHUB_WORKFLOW to the file's name.
        ".github/workflows/called.yml": (
            f"on: workflow_call\n{called}jobs:\n  inner:\n    runs-on: x\n    steps: []\n"
        ),
    }
    found = scan_of(tmp_path, files, "caller.yml")
    assert found.oidc == {("called.yml", "inner"): {granted}}


def test_id_token_write_reads_every_form() -> None:
    assert id_token_write({}) is None
    assert id_token_write({"permissions": None}) is False
    assert id_token_write({"permissions": "write-all"}) is True
    assert id_token_write({"permissions": {"id-token": "write"}}) is True


def test_unexpected_inputs_as_github_says_it() -> None:
    action: dict[str, object] = {"inputs": {"proxy": {}, "token": {}, "anonymous-telemetry": {}}}
    assert unexpected_inputs(["proxy", "TOKEN"], action) is None  # names match in any case
    assert unexpected_inputs(["proxy", "anonymous_telemetry", "ca-pin"], action) == (
        "Unexpected input(s) 'anonymous_telemetry', 'ca-pin', "
        "valid inputs are ['proxy', 'token', 'anonymous-telemetry']"
    )
    docker = {"runs": {"using": "docker"}}
    assert unexpected_inputs(["args", "entrypoint"], docker) is None


def test_scan_warns_of_unexpected_inputs_naming_the_step(tmp_path: Path) -> None:
    workflow = """\
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: teleport-actions/setup@v1
        with: {version: 17.0.0, enterprise: false}
      - name: Log in
        uses: teleport-actions/auth@v2
        with: {proxy: p, token: t, ca-pin: x}
      - uses: teleport-actions/auth-k8s@v2
        with: {proxy: p, token: t, kubernetes_cluster: c}
      - uses: ./.github/actions/mine
        with: {colour: red}
"""
    mine = "inputs:\n  color: {description: c}\nruns: {using: composite, steps: []}\n"
    found = scan_of(
        tmp_path, {".github/workflows/w.yml": workflow, ".github/actions/mine/action.yml": mine}
    )
    where = ".github/workflows/w.yml: job deploy"
    assert [(w.where, w.message.split(", valid")[0]) for w in found.warnings] == [
        (f'{where}, step "Log in" (teleport-actions/auth@v2)', "Unexpected input(s) 'ca-pin'"),
        (
            f'{where}, step "Run teleport-actions/auth-k8s@v2" (teleport-actions/auth-k8s@v2)',
            "Unexpected input(s) 'kubernetes_cluster'",
        ),
        (
            f'{where}, step "Run ./.github/actions/mine" (./.github/actions/mine)',
            "Unexpected input(s) 'colour'",
        ),
    ]


def test_each_mapping_is_printed_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    step = "      - uses: teleport-actions/auth-k8s@v2\n"
    workflow = f"on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n{step}{step}  b:\n" + (
        f"    runs-on: x\n    steps:\n{step}      - uses: teleport-actions/auth/k8s@v2\n"
    )
    _report_scan(scan_of(tmp_path, {".github/workflows/w.yml": workflow}))
    out = capsys.readouterr().out
    assert out.count("teleport-actions/auth-k8s@v2 → this checkout's k8s member\n") == 1
    assert out.count("teleport-actions/auth/k8s@v2 → this checkout's k8s member\n") == 1


def test_view_links_everything_but_the_action_files(tmp_path: Path) -> None:
    folders = [m.folder for m in MEMBERS if m.folder]
    view = make_view(REPO, tmp_path / "view", folders)
    for folder in ("", *folders):
        copied = view / folder / "action.yml"
        assert not copied.is_symlink()
        assert copied.read_bytes() == (REPO / folder / "action.yml").read_bytes()
    for name in LINKED:
        assert (view / name).resolve() == (REPO / name).resolve()
    assert sorted(p.name for p in view.iterdir()) == sorted([*folders, "action.yml", *LINKED])


def test_view_holds_any_folder_reached(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "_vendor").mkdir(parents=True)
    (checkout / "_vendor" / "BUNDLE").write_text("")
    (checkout / "action.yml").write_text("name: root\n")
    helper = checkout / ".post"
    helper.mkdir()
    (helper / "action.yml").write_text("runs: {using: node20, main: main.js, post: post.js}\n")
    (helper / "post.js").write_text("// post\n")
    view = make_view(checkout, tmp_path / "view", [".post"])
    assert not (view / ".post" / "action.yml").is_symlink()
    # A folder that is an action of its own is copied whole: act runs its scripts.
    assert not (view / ".post" / "post.js").is_symlink()
    assert (view / ".post" / "post.js").read_text() == "// post\n"
    with pytest.raises(ViewError, match="missing"):
        make_view(checkout, tmp_path / "view2", ["absent"])


def test_member_view_puts_the_member_at_the_root(tmp_path: Path) -> None:
    view = make_member_view(REPO, tmp_path / "auth-k8s", "k8s")
    text = (view / "action.yml").read_text()
    assert '"$GITHUB_ACTION_PATH/src/launch" k8s' in text
    assert "/../" not in text
    assert (
        text.replace('"$GITHUB_ACTION_PATH/src/', '"$GITHUB_ACTION_PATH/../src/')
        == (REPO / "k8s" / "action.yml").read_text()
    )
    assert (view / "src").resolve() == (REPO / "src").resolve()


def test_view_needs_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "checkout").mkdir()
    with pytest.raises(ViewError, match="_vendor/ has no bundle"):
        make_view(tmp_path / "checkout", tmp_path / "view", [])


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "'version' input must be non-empty"),
        ({"INPUT_VERSION": "v17.0.0"}, "'version' input should not be prefixed with 'v'"),
        ({"INPUT_VERSION": "17.0"}, "incorrect 'version' specified"),
        ({"INPUT_VERSION": "17.0.0\n"}, None),  # trimmed, as core.getInput trims
        ({"INPUT_VERSION": "17.0.0-beta.1+build"}, None),
        ({"INPUT_VERSION": "auto"}, "'proxy' input must be non-empty when 'version' is set"),
        ({"INPUT_VERSION": "auto", "INPUT_PROXY": "tele.example.com:443"}, None),
        ({"INPUT_VERSION": "17.0.0", "INPUT_ENTERPRISE": "yes"}, 'YAML 1.2 "Core Schema"'),
        ({"INPUT_VERSION": "17.0.0", "INPUT_CACHE": "no"}, "specification: cache"),
    ],
)
def test_setup_standin_checks_inputs_as_the_original(
    env: dict[str, str], message: str | None
) -> None:
    env = {"INPUT_ENTERPRISE": "false", "INPUT_CACHE": "true", **env}
    if message is None:
        check_inputs(env)
    else:
        with pytest.raises(SetupError, match=message.replace("(", r"\(")):
            check_inputs(env)


def test_setup_standin_puts_tbot_first_and_reports_the_version(tmp_path: Path) -> None:
    standin = setup_standin(tmp_path / "setup", tmp_path / "bin", "the tbot stand-in", standin=True)
    files = {name: tmp_path / name for name in ("path", "env", "output")}
    env = {
        "INPUT_VERSION": "18.6.4",
        "INPUT_ENTERPRISE": "true",
        "INPUT_CACHE": "true",
        **{f"GITHUB_{name.upper()}": str(path) for name, path in files.items()},
    }
    lines = run_setup(env, standin)
    assert files["path"].read_text() == f"{tmp_path / 'bin'}\n"
    assert (
        files["env"].read_text() == "STANDIN_TBOT_VERSION=18.6.4\nSTANDIN_TBOT_EDITION=enterprise\n"
    )
    assert files["output"].read_text() == "cache-hit=false\n"
    assert "nothing installed, nothing downloaded" in lines[0]
    assert "would install teleport-ent 18.6.4" in lines[1]
    # A real tbot (--tbot) is what it is: no version is imposed on it.
    (standin / "run.json").write_text(json.dumps({"bin": "/b", "tbot": "/t", "standin": False}))
    files["env"].unlink()
    assert "its own version" in run_setup(env, standin)[-1]
    assert not files["env"].exists()


def test_oidc_bash_env_sets_the_variables_in_granted_jobs_only(tmp_path: Path) -> None:
    user = tmp_path / "user-env.sh"
    user.write_text("export FROM_USER_BASH_ENV=yes\n")
    script = oidc_bash_env(tmp_path, [("ci", "deploy"), ("w.yml", "build")], str(user))
    show = (
        'echo "${ACTIONS_ID_TOKEN_REQUEST_URL-unset} ${ACTIONS_ID_TOKEN_REQUEST_TOKEN-unset} '
        '$FROM_USER_BASH_ENV"'
    )

    def job(workflow: str, name: str) -> str:
        env = {"PATH": os.environ["PATH"], "BASH_ENV": str(script)}
        env |= {"GITHUB_WORKFLOW": workflow, "GITHUB_JOB": name}
        # As act runs a `shell: bash` step.
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", show],
            env=env, capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        return done.stdout.strip()

    granted = f"{OIDC_DUMMIES['ACTIONS_ID_TOKEN_REQUEST_URL']} act yes"
    assert job("ci", "deploy") == granted
    assert job("w.yml", "build") == granted
    assert job("ci", "build") == "unset unset yes"
    assert job("ci deploy", "") == "unset unset yes"


def _entry(**fields: object) -> str:
    return json.dumps({"level": "info", "job": "ci/deploy", "jobID": "deploy", **fields}) + "\n"


def test_act_log_leaves_out_noise_and_repeats_unless_verbose() -> None:
    lines = [
        json.dumps({"level": "warning", "msg": "Couldn't get a valid docker connection: no"}),
        _entry(
            msg="LocalRepositoryCache matched https://github.com/teleport-actions/auth with "
            "ref v2 to /v",
            stepID=["auth"],
        ),
        _entry(
            msg="  ⚙  ::set-output:: kubeconfig=/k",
            command="set-output",
            stage="Main",
            stepID=["kube", "auth"],
            name="kubeconfig",
        ),
        _entry(
            msg="  ⚙  ::set-output:: kubeconfig=/k",
            command="set-output",
            stage="Main",
            stepID=["kube"],
            name="kubeconfig",
        ),
        _entry(
            msg="  ⚙  Summary - ### Teleport\n\n| a | b |",
            command="summary",
            stage="Main",
            stepID=["kube"],
        ),
        _entry(
            msg="  ⚙  Summary - ### Teleport\n\n| a | b |",
            command="summary",
            stage="Main",
            stepID=["kube"],
        ),
        _entry(msg="same line\n", raw_output=True, stepID=["2"]),
        _entry(msg="same line\n", raw_output=True, stepID=["2"]),
    ]
    quiet, verbose = ActLog(), ActLog(verbose=True)
    shown = [s for s in map(quiet.feed, lines) if s is not None]
    assert shown == [
        "[ci/deploy]   ⚙  ::set-output:: kubeconfig=/k",
        "[ci/deploy]   ⚙  Summary - ### Teleport\n[ci/deploy]   \n[ci/deploy]   | a | b |",
        "[ci/deploy]   | same line",
        "[ci/deploy]   | same line",
    ]
    assert quiet.jobs["ci/deploy"].steps[("auth",)].uses == "teleport-actions/auth@v2"
    assert len([s for s in map(verbose.feed, lines) if s is not None]) == len(lines)


def test_private_directory_is_removed_whatever_its_modes(tmp_path: Path) -> None:
    work = tmp_path / "work"
    locked = work / "cache" / "act" / "tmp" / "creds"
    locked.mkdir(parents=True)
    (locked / "identity").write_text("secret")
    (locked / "identity").chmod(0o400)
    locked.chmod(0o500)
    _remove(work)
    assert not work.exists()


def test_tbots_under_the_private_directory_are_stopped(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "tbot"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(300)\n")
    fake.chmod(0o755)
    config = str(tmp_path / "work" / "config.yaml")
    sleep = [sys.executable, "-c", "import time; time.sleep(300)"]
    tbot = subprocess.Popen([str(fake), "start", "-c", config], stdin=subprocess.DEVNULL)
    other = subprocess.Popen([*sleep, config], stdin=subprocess.DEVNULL)  # not a tbot
    try:
        assert stop_tbots_under(tmp_path / "elsewhere") == []
        assert stop_tbots_under(tmp_path / "work") == [tbot.pid]
        assert tbot.wait(timeout=30) != 0
        assert other.poll() is None
    finally:
        for process in (tbot, other):
            if process.poll() is None:
                process.kill()
            process.wait()


def test_workflow_paths_resolve_here_then_in_the_repository(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"ci/a.yml": "on: push\n", ".github/workflows/b.yml": ""})
    assert _resolve_workflows("ci/a.yml", repo) == (repo / "ci/a.yml").resolve()
    assert _resolve_workflows("b.yml", repo) == (repo / ".github/workflows/b.yml").resolve()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing"], "missing: not a folder"),
        (["{tmp}", "-W", "nope.yml"], "-W nope.yml: no such file or folder"),
        (["{tmp}"], "no workflow file or folder at"),
        (["{tmp}/repo", "--tbot", "{tmp}/none"], "--tbot {tmp}/none: not an executable file"),
    ],
)
def test_bad_arguments_are_one_clear_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    make_repo(tmp_path / "repo")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    code = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert message.format(tmp=tmp_path) in err
    # The private directory, made for the --tbot case, is gone.
    assert list((tmp_path / "tmp").iterdir()) == []
