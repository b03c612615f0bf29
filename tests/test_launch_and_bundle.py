"""The launcher (src/launch) and the runtime bundle (scripts/bundle) as a runner meets them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Job, require
from interpreters import TEST_PYTHONS_ENV, find_python
from launcher import REPO, copy_action, launch, log_lines, python_first_on_path

pytestmark = pytest.mark.step

BUNDLE = REPO / "_vendor"


def manifest(bundle: Path) -> dict[str, str]:
    entries = {}
    for line in (bundle / "BUNDLE").read_text().splitlines():
        key, value = line.split()
        entries[key] = value
    return entries


def test_shipped_bundle_is_pure_python_and_lean() -> None:
    names = {p.name for p in BUNDLE.iterdir()}
    for wanted in ("yaml", "requests", "urllib3", "google", "actions_toolkit", "certifi"):
        assert wanted in names
    # Never shipped: PyGithub and its crypto stack, third-party test packages.
    for unwanted in ("github", "jwt", "nacl", "cryptography", "cffi", "tests"):
        assert unwanted not in names
    compiled = [p for p in BUNDLE.rglob("*") if p.suffix in {".so", ".pyd", ".dylib"}]
    assert compiled == []


def test_launch_from_checkout_without_bundle_builds_it_reproducibly(
    job: Job, tmp_path: Path
) -> None:
    # A branch or `uses: ./` checkout: no _vendor/. The launcher builds it once,
    # says so, and the build matches the one made from the same requirements.
    action = copy_action(tmp_path / "action")
    done = launch(action, python_first_on_path(job.env))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "::notice::teleport-actions/auth: building its runtime packages" in done.stdout
    assert set(job.outputs) == {"identity-file", "ssh-config", "destination-dir"}
    assert manifest(action / "_vendor") == manifest(BUNDLE)
    # Byte-compiled for the interpreter that built it.
    assert list((action / "_vendor" / "yaml" / "__pycache__").glob("*.pyc"))

    # The next run finds it and builds nothing.
    again = launch(action, python_first_on_path(job.env))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "::notice::" not in again.stdout


def run_entry_point(job: Job, setup: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    """``python -m teleport_auth`` in a fresh interpreter, after ``setup`` bends its world."""
    probe = f"import runpy, sys\n{setup}\nrunpy.run_module('teleport_auth', run_name='__main__')\n"
    env = job.env | {"PYTHONPATH": os.pathsep.join(str(p) for p in paths)}
    return subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_old_python_gets_a_clear_error(job: Job) -> None:
    # The version gate runs before anything else is imported; simulate 3.9.
    done = run_entry_point(job, "sys.version_info = (3, 9, 18, 'final', 0)", BUNDLE, REPO / "src")
    assert done.returncode == 1
    assert done.stdout.startswith("::error::teleport-actions/auth needs Python 3.10 or newer")
    assert "is 3.9.18. " in done.stdout
    assert "TELEPORT_AUTH_PYTHON" in done.stdout
    assert "Traceback" not in done.stderr
    assert job.records == []


def test_old_python_in_a_job_container_names_the_image(job: Job) -> None:
    # In a `container:` job the runner mounts the work directory as /__w: the
    # image's python3 is too old, so the error is about the image.
    job.env["GITHUB_WORKSPACE"] = "/__w/repo/repo"
    done = run_entry_point(job, "sys.version_info = (3, 9, 18, 'final', 0)", BUNDLE, REPO / "src")
    assert done.returncode == 1
    [line] = done.stdout.splitlines()
    assert line.startswith("::error::teleport-actions/auth needs Python 3.10 or newer; ")
    assert "in this job's container is 3.9.18" in line
    assert "The container image needs python3 3.10+ and bash" in line
    assert job.records == []


@pytest.mark.parametrize("shipped", [True, False], ids=["released", "branch"])
def test_real_python_39_is_told_how_to_use_a_newer_one(
    job: Job, tmp_path: Path, shipped: bool
) -> None:
    # The python3 of RHEL 9 and Amazon Linux 2023.
    python_39 = find_python("3.9")
    require(python_39, f"no CPython 3.9 here (~/.pyenv/versions or {TEST_PYTHONS_ENV})")
    assert python_39 is not None
    # A released version goes straight to the module; a branch checkout builds
    # nothing with it (the build would fail for another reason) and says the same.
    action = copy_action(tmp_path / "action", with_bundle=shipped)
    python = str(python_39.path)
    env = job.env | {"TELEPORT_AUTH_PYTHON": python, "PYTHONDONTWRITEBYTECODE": "1"}
    done = launch(action, env, "auth")
    assert done.returncode == 1
    assert log_lines(done.stdout) == [
        f"::error::teleport-actions/auth needs Python 3.10 or newer; {python} is "
        f"{python_39.version}. Install a newer one beside it (e.g. python3.11 "
        "from the distribution's packages) and name it with TELEPORT_AUTH_PYTHON (e.g. "
        "`TELEPORT_AUTH_PYTHON: python3.11` in the job's env), or use actions/setup-python "
        "before this step.",
    ]
    assert done.stderr == ""
    assert not (action / "_vendor").exists() or shipped
    assert job.records == []


def test_partial_bundle_is_a_clear_error(job: Job) -> None:
    # As if _vendor/yaml were missing: the import fails before main() runs.
    done = run_entry_point(job, "sys.modules['yaml'] = None", REPO / "src")
    assert done.returncode == 1
    assert done.stdout.startswith("::error::teleport-actions/auth could not load its runtime")
    assert "_vendor/ bundle is incomplete" in done.stdout
    assert "Traceback" not in done.stderr
    assert job.records == []


def test_launch_runs_the_step(job: Job) -> None:
    done = launch(REPO, python_first_on_path(job.env))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "::add-mask::" not in done.stdout
    assert "TELEPORT_IDENTITY_FILE" in job.exported


def test_job_checkout_cannot_shadow_the_actions_modules(job: Job, tmp_path: Path) -> None:
    # The step runs in the job's checkout: modules there (a PR's files, say) and
    # a PYTHONPATH set by the job must not be imported in place of ours.
    checkout = tmp_path / "checkout"
    (checkout / "teleport_auth").mkdir(parents=True)
    evil = "import os, sys\nprint('SHADOWED', os.environ.get('INPUT_TOKEN'))\nsys.exit(0)\n"
    for name in ("yaml.py", "uuid.py", "secrets.py", "json.py", "teleport_auth/__init__.py"):
        (checkout / name).write_text(evil)
    env = python_first_on_path(job.env) | {"PYTHONPATH": str(checkout)}
    done = launch(REPO, env, cwd=checkout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SHADOWED" not in done.stdout + done.stderr
    assert "TELEPORT_IDENTITY_FILE" in job.exported
