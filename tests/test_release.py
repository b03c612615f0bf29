"""A release rehearsal: .github/workflows/release.yml run through act for a tag push.

A copy of this tree is committed in a scratch repository, tagged v1.2.3 and
pushed to a local bare ``origin``. act runs the release job on this host, with
``actions/setup-python`` replaced by a local stand-in that puts the asked-for
interpreters first on PATH, as setup-python does: those TELEPORT_AUTH_TEST_PYTHONS
lists (the project's workflow installs them) or ~/.pyenv/versions keeps.
Then a job that uses ``teleport-actions/auth@v1.2.3`` (that released tag) and its
``k8s`` member runs under each of those interpreters with no package index
reachable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from act_harness import act_binary
from conftest import gone_within, require
from echo_server import free_port
from interpreters import TEST_PYTHONS_ENV, find_python
from standin.install import install_standin

pytestmark = pytest.mark.act

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / ".github" / "workflows" / "release.yml"
TAG = "v1.2.3"
NO_INDEX = "http://127.0.0.1:9/"
# release.yml's list of interpreters to ship bytecode for, one per line.
PYTHONS_BLOCK = re.compile(r"^( +)PYTHONS: \|\n((?:\1  .*\n)+)", re.MULTILINE)

STANDIN_SETUP_PYTHON = """\
name: setup-python stand-in
description: Puts each asked-for Python (one folder per version under {shims}) first on PATH.
inputs:
  python-version:
    required: true
runs:
  using: composite
  steps:
    - name: Put the asked-for interpreters on PATH
      shell: bash
      env:
        VERSIONS: ${{{{ inputs.python-version }}}}
        SHIMS: {shims}
      run: |
        for version in $VERSIONS; do
          dir="$SHIMS/$version/bin"
          [[ -x "$dir/python3" ]] || {{ echo "::error::no Python ${{version}} here"; exit 1; }}
          # The last one asked for ends up first: python3, as with setup-python.
          echo "$dir" >> "$GITHUB_PATH"
        done
"""

CONSUMER = """\
name: use the release
on: workflow_dispatch
jobs:
  use:
    runs-on: ubuntu-24.04
    strategy:
      matrix:
        python: {pythons}
    steps:
      - uses: {setup_python}
        with:
          python-version: ${{{{ matrix.python }}}}
      - id: auth
        uses: teleport-actions/auth@{tag}
        with:
          proxy: tele.example.com:443
          token: released-bot
      # A member: its action.yml runs the launcher of the repository's root.
      - id: k8s
        uses: teleport-actions/auth/k8s@{tag}
        with:
          proxy: tele.example.com:443
          token: released-bot
          kubernetes-cluster: released-cluster
      - env:
          IDENTITY_FILE: ${{{{ steps.auth.outputs.identity-file }}}}
          KUBECONFIG_FILE: ${{{{ steps.k8s.outputs.kubeconfig }}}}
        run: |
          test -f "$IDENTITY_FILE"
          test -f "$KUBECONFIG_FILE"
          echo "authenticated with $(python3 -V)"
  # A daemon member: its end-of-job step is the release's own end-of-job action.
  tunnel:
    runs-on: ubuntu-24.04
    steps:
      - id: proxy
        uses: teleport-actions/auth/application-proxy@{tag}
        env:
          STANDIN_TBOT_VERSION: 18.6.4
        with:
          proxy: tele.example.com:443
          token: released-bot
          listen: tcp://127.0.0.1:{listen_port}
          diag-port: "{diag_port}"
      - env:
          TBOT_PID: ${{{{ steps.proxy.outputs.tbot-pid }}}}
        run: echo "tunnel tbot ${{TBOT_PID}} is running"
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=rehearsal", "-c", "user.email=rehearsal@localhost", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


def release_pythons(workflow: str) -> list[str]:
    """The versions the release job's PYTHONS block lists, in order."""
    block = PYTHONS_BLOCK.search(workflow)
    assert block, "release.yml has no PYTHONS block"
    return block[2].split()


def setup_python_ref(workflow: str) -> str:
    found: set[str] = set(re.findall(r"uses: (actions/setup-python@[0-9a-f]{40})", workflow))
    assert len(found) == 1, found
    return found.pop()


def run_act(cwd: Path, work: Path, *args: str) -> str:
    env = dict(os.environ)
    env["ACT_DISABLE_VERSION_CHECK"] = "1"
    env["XDG_CACHE_HOME"] = str(work / ".act-cache")
    # The self-hosted "runner" is this host: tbot (the stand-in) comes from PATH.
    env["PATH"] = f"{work / 'bin'}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        [act_binary(), *args, "-P", "ubuntu-24.04=-self-hosted", "--no-cache-server"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=600,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]
    return log


def scratch_repository(dest: Path, pythons: list[str]) -> None:
    """This tree as a commit would hold it (tracked and new files, nothing ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    # Interpreters this machine does not keep are left out of the rehearsal.
    workflow = dest / ".github" / "workflows" / "release.yml"
    text = workflow.read_text()
    kept = [v for v in release_pythons(text) if v in pythons]
    block = PYTHONS_BLOCK.search(text)
    assert block
    indent = block[1] + "  "
    text = text.replace(block[2], "".join(f"{indent}{v}\n" for v in kept))
    workflow.write_text(text)


def test_release_publishes_a_bundle_that_runs_without_an_index(tmp_path: Path) -> None:
    workflow = RELEASE.read_text()
    wanted = release_pythons(workflow)
    found = {version: find_python(version) for version in wanted}
    pythons = [version for version in wanted if found[version]]
    require(
        {"3.10", "3.12"} <= set(pythons),
        f"needs CPython 3.10 and 3.12 (listed in {TEST_PYTHONS_ENV} or under ~/.pyenv/versions)",
    )
    setup_python = setup_python_ref(workflow)
    work = tmp_path
    install_standin(work / "bin", python=sys.executable)
    # Each interpreter in a folder of its own, as python3, python and python3.X.
    shims = work / "pythons"
    for version in pythons:
        interpreter = found[version]
        assert interpreter is not None
        (shims / version / "bin").mkdir(parents=True)
        for name in ("python3", "python", f"python{version}"):
            (shims / version / "bin" / name).symlink_to(interpreter.path)
    standin = work / "setup-python"
    standin.mkdir()
    (standin / "action.yml").write_text(STANDIN_SETUP_PYTHON.format(shims=shims))
    replace_setup_python = ["--local-repository", f"{setup_python}={standin}"]

    # The maintainer's side: a tag pushed to origin.
    repo = work / "repo"
    repo.mkdir()
    scratch_repository(repo, pythons)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", "the release candidate")
    git(repo, "tag", TAG)
    tagged = git(repo, "rev-parse", "HEAD")
    origin = work / "origin.git"
    git(work, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main", TAG)
    git(repo, "checkout", "-q", TAG)
    event = work / "event.json"
    event.write_text(json.dumps({"ref": f"refs/tags/{TAG}", "ref_name": TAG}))

    log = run_act(repo, work, "push", "-e", str(event), "-W", str(RELEASE.relative_to(REPO)),
                  *replace_setup_python)  # fmt: skip
    assert "Job succeeded" in log
    for version in pythons:
        assert f"bytecode for Python {version}: Python {version}." in log

    # origin: the tag and v1 point at one new commit on top of the tagged one,
    # which carries the bundle and bytecode for each interpreter.
    released = git(origin, "rev-parse", f"{TAG}^{{commit}}")
    assert git(origin, "rev-parse", "v1^{commit}") == released
    assert git(origin, "rev-parse", f"{released}^") == tagged
    files = set(git(origin, "ls-tree", "-r", "--name-only", released).splitlines())
    assert "_vendor/BUNDLE" in files
    sources = [f for f in files if f.endswith(".py") and f.startswith(("_vendor/", "src/"))]
    assert len(sources) > 100
    for version in pythons:
        tag = "cpython-" + version.replace(".", "")
        missing = []
        for source in sources:
            folder, _, name = source.rpartition("/")
            if f"{folder}/__pycache__/{name[:-3]}.{tag}.pyc" not in files:
                missing.append(source)
        assert missing == [], f"no {tag} bytecode for {missing[:5]}"

    # The daemon members' end-of-job step is pinned to the tagged commit, where the
    # action it names exists (only the released commit's tree has the pin).
    for folder in ("database-tunnel", "application-tunnel", "application-proxy"):
        released_yml = git(origin, "show", f"{released}:{folder}/action.yml")
        pins = re.findall(r"uses: teleport-actions/auth/end-of-job@(\S+) # (\S+)", released_yml)
        assert pins == [(tagged, TAG)]
        assert git(origin, "show", f"{tagged}:{folder}/action.yml").count("end-of-job@main") == 1
    assert git(origin, "ls-tree", "--name-only", tagged, "end-of-job/") == "\n".join(
        ["end-of-job/action.yml", "end-of-job/main.js", "end-of-job/post.js"]
    )

    # A workflow using the released tag, under each interpreter, with no index:
    # the shipped bundle is all it needs.
    checkout = work / "released"
    git(work, "clone", "-q", "--branch", TAG, str(origin), str(checkout))
    tagged_tree = work / "tagged"
    git(work, "clone", "-q", str(origin), str(tagged_tree))
    git(tagged_tree, "checkout", "-q", tagged)
    consumer = work / "consumer"
    (consumer / ".github" / "workflows").mkdir(parents=True)
    (consumer / ".github" / "workflows" / "use.yml").write_text(
        CONSUMER.format(
            pythons=json.dumps(pythons),
            setup_python=setup_python,
            tag=TAG,
            listen_port=free_port(),
            diag_port=free_port(),
        )
    )
    git(consumer, "init", "-q")
    git(consumer, "add", "-A")
    git(consumer, "commit", "-q", "--no-gpg-sign", "-m", "consumer")
    log = run_act(
        consumer, work, "workflow_dispatch", *replace_setup_python,
        "--local-repository", f"teleport-actions/auth@{TAG}={checkout}",
        "--local-repository", f"teleport-actions/auth@{tagged}={tagged_tree}",
        "--env", f"PIP_INDEX_URL={NO_INDEX}",
        "--env", "ACTIONS_ID_TOKEN_REQUEST_URL=http://127.0.0.1:9/oidc-not-available-under-act",
        "--env", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=act",
    )  # fmt: skip
    assert log.count("Job succeeded") == len(pythons) + 1
    assert "building its runtime packages" not in log
    for version in pythons:
        assert f"authenticated with Python {version}." in log
    # When the tunnel job ended, the pinned end-of-job action stopped its tbot.
    [pid] = re.findall(r"tunnel tbot (\d+) is running", log)
    assert f"teleport-actions/auth with ref {tagged} to {tagged_tree}" in log
    assert "Run Post Stop tbot and show its log when the job ends" in log
    assert f"teleport-actions/auth/application-proxy: Stopped tbot (pid {pid})" in log
    assert gone_within(int(pid))
