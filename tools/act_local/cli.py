"""``python3 scripts/dev act REPO [-W WORKFLOW] [-j JOB] [--tbot PATH] [--verbose] [-- ACT ARGS]``.

Runs a repository's workflows, unedited, through act on this host: every
reference to the originals (``teleport-actions/auth[/folder]@REF``, the
siblings' own names such as ``teleport-actions/auth-k8s@REF``) is taken from
this checkout, ``teleport-actions/setup`` from a stand-in that installs nothing,
and everything act and the jobs write lives in a private temporary directory
that is removed when the command ends, however it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from act_local.actlog import ActLog
from act_local.jobenv import OIDC_DUMMIES, oidc_bash_env, setup_standin
from act_local.processes import (
    ROOT,
    Collector,
    SetupError,
    make_throwaway_ca,
    put_tbot_on_path,
    stop_leftover_tbot,
    stop_tbots_under,
)
from act_local.report import standin_note, summary
from act_local.view import ViewError, make_member_view, make_view
from act_local.workflows import MEMBER_FOLDERS, Scan, WorkflowError, scan, workflow_files
from teleport_auth.family import MEMBERS

PROG = "python3 scripts/dev act"
# The daemon members need tbot 18.6.4 (its /wait); the stand-in reports 16.4.2 unless told.
DAEMON_TBOT_VERSION = "18.6.4"
DAEMON_FOLDERS = frozenset(m.folder for m in MEMBERS if not m.oneshot)
# How long act gets to end its jobs after Ctrl-C before it is killed.
ACT_GRACE = 30.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run a repository's workflows, unedited, through act on this host: every "
        "`uses:` of teleport-actions/auth[/FOLDER]@REF and of the originals' own names "
        "(teleport-actions/auth-k8s@REF, ...) taken from this checkout, "
        "teleport-actions/setup@REF replaced by a stand-in that installs nothing, tbot (the "
        "stand-in unless --tbot) on PATH, a local telemetry collector, GitHub's OIDC "
        "variables only in jobs granted `id-token: write`. act's cache and every job's "
        "RUNNER_TEMP are in a private temporary directory, removed at the end. Arguments "
        "after `--` go to act as they are (e.g. `-- workflow_dispatch --input name=value`).",
    )
    p.add_argument("repository", type=Path, help="the repository whose workflows to run")
    p.add_argument(
        "-W",
        "--workflows",
        metavar="WORKFLOW",
        help="a workflow file or folder (default: the repository's .github/workflows); "
        "relative to the current directory, else to the repository or its .github/workflows",
    )
    p.add_argument("-j", "--job", help="run this job only")
    p.add_argument("--tbot", type=Path, help="a real tbot to put on PATH instead of the stand-in")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show everything act prints, and the steps' ::debug:: lines "
        "(act -v; RUNNER_DEBUG=1 as GitHub's debug logging)",
    )
    return p


def _resolve_workflows(value: str | None, repository: Path) -> Path | None:
    if value is None:
        return None
    for candidate in (
        Path(value),
        repository / value,
        repository / ".github" / "workflows" / value,
    ):
        if candidate.exists():
            return candidate.resolve()
    raise WorkflowError(
        f"-W {value}: no such file or folder (here, in {repository} or its workflows)"
    )


def act_binary() -> str:
    beside = Path(sys.executable).parent / "act"
    found = str(beside) if beside.exists() else shutil.which("act")
    if not found:
        raise SetupError("act is not installed: run this through `python3 scripts/dev act`")
    return found


def act_command(
    *,
    mappings: list[tuple[str, Path]],
    labels: set[str],
    job_env: dict[str, str],
    workflows: Path | None,
    job: str | None,
    verbose: bool,
    extra: list[str],
) -> list[str]:
    cmd = [act_binary(), "--json", "--no-cache-server"]
    # Every label the jobs ask for runs on this host (no Docker needed).
    for label in sorted(labels | {"ubuntu-latest"}):
        cmd += ["-P", f"{label}=-self-hosted"]
    for mapping, folder in mappings:
        cmd += ["--local-repository", f"{mapping}={folder}"]
    if verbose:
        cmd.append("-v")
    for key, value in job_env.items():
        cmd += ["--env", f"{key}={value}"]
    if workflows is not None:
        cmd += ["-W", str(workflows)]
    if job:
        cmd += ["-j", job]
    return cmd + extra


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: handled as Ctrl-C is, so that everything is cleaned up."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def run_act(cmd: list[str], cwd: Path, env: dict[str, str], log: ActLog) -> int:
    """Run act, showing its log as it comes; returns its exit code."""
    process = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        # act logs some lines (JSON too) on stderr: read and shown the same way.
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    assert process.stdout is not None  # noqa: S101 - stdout=PIPE
    try:
        for line in process.stdout:
            shown = log.feed(line)
            if shown is not None:
                print(shown, flush=True)
        return process.wait()
    except KeyboardInterrupt as exc:
        # Ctrl-C reached act too (same process group); a SIGTERM to this
        # process did not: pass it on. Either way act ends its jobs first.
        with contextlib.suppress(ProcessLookupError):
            if isinstance(exc, _Terminated):
                process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=ACT_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return 130


def main(argv: list[str]) -> int:
    own, extra = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    args = _parser().parse_args(own)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_terminated)
    try:
        return _run(args, extra)
    except (WorkflowError, ViewError, SetupError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130  # before or after act ran (run_act handles it during)


def _say(message: str) -> None:
    print(f"{PROG}: {message}", flush=True)


def _report_scan(found: Scan) -> None:
    """Print each mapping once, then what GitHub would warn about and the OIDC jobs."""
    for reference in found.references:
        _say(f"{reference.uses} → {reference.describe()}")
        missing = reference.kind == "checkout" and not any(
            (ROOT / reference.folder / name).is_file() for name in ("action.yml", "action.yaml")
        )
        if missing:
            known = ", ".join(sorted(f for f in MEMBER_FOLDERS if f))
            print(f"{PROG}: warning: uses {reference.uses}, but this checkout has no action in "
                  f"{reference.folder!r} (members: {known})", file=sys.stderr)  # fmt: skip
    if not found.references:
        _say("note: no workflow there uses teleport-actions/auth or the originals")
    for note in found.notes:
        _say(f"note: {note}")
    for warning in found.warnings:
        _say(f"warning (GitHub warns too): {warning.where}: {warning.message}")
    granted = [f"{workflow}/{job}" for workflow, job in found.oidc_jobs()]
    _say(
        "GitHub's OIDC variables (permissions grant id-token: write) in: "
        + (", ".join(granted) if granted else "no job")
    )
    mixed = [f"{w}/{j}" for (w, j), grants in sorted(found.oidc.items()) if len(grants) > 1]
    if mixed:
        _say(f"note: reached both with and without id-token: write, given none: {', '.join(mixed)}")


def _remove(folder: Path) -> None:
    """Remove ``folder`` whatever modes the jobs left inside it."""

    def retry(function: object, path: str, exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), stat.S_IRWXU)
            os.chmod(path, stat.S_IRWXU)
        with contextlib.suppress(FileNotFoundError):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)

    shutil.rmtree(folder, onerror=retry)


@contextlib.contextmanager
def _private_directory() -> Iterator[Path]:
    """A 0700 directory for everything this run writes; removed however the run ends."""
    work = Path(tempfile.mkdtemp(prefix="teleport-auth-act-"))
    try:
        yield work
    finally:
        # A second Ctrl-C must not leave credentials behind half-removed.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            _remove(work)
        finally:
            signal.signal(signal.SIGINT, previous)


def _run(args: argparse.Namespace, extra: list[str]) -> int:
    repository = args.repository.resolve()
    if not repository.is_dir():
        raise WorkflowError(f"{args.repository}: not a folder")
    workflows = _resolve_workflows(args.workflows, repository)
    found = scan(repository, workflow_files(repository, workflows))
    standin = args.tbot is None
    daemons = bool(DAEMON_FOLDERS & found.members())
    log = ActLog(verbose=args.verbose)
    with _private_directory() as work:
        # The caller's environment, as a runner's; the jobs inherit it (host mode).
        env = {k: v for k, v in os.environ.items() if k not in OIDC_DUMMIES}
        env["ACT_DISABLE_VERSION_CHECK"] = "1"  # it would query the internet
        # act's cache holds every job's RUNNER_TEMP: here, not in ~/.cache/act.
        env["XDG_CACHE_HOME"] = str(work / "cache")
        env["TMPDIR"] = str(work / "tmp")
        (work / "tmp").mkdir()
        tbot = put_tbot_on_path(work / "bin", args.tbot)
        # The self-hosted "runner" is this host: jobs find tbot on act's own PATH.
        env["PATH"] = f"{work / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        if standin:
            make_throwaway_ca(work / "ca")
            env["STANDIN_TBOT_CA"] = str(work / "ca")
            if daemons:
                env.setdefault("STANDIN_TBOT_VERSION", DAEMON_TBOT_VERSION)
        mappings = _lay_out(found, work, tbot, standin=standin)
        collector = Collector.start(work)
        try:
            job_env = {
                "TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS": collector.url,
                "BASH_ENV": str(
                    oidc_bash_env(work, found.oidc_jobs(), os.environ.get("BASH_ENV", ""))
                ),
            }
            if args.verbose:
                job_env["RUNNER_DEBUG"] = "1"
            cmd = act_command(
                mappings=mappings,
                labels=found.labels,
                job_env=job_env,
                workflows=workflows,
                job=args.job,
                verbose=args.verbose,
                extra=extra,
            )
            _say(f"act in {repository}; tbot: {tbot}; collector: {collector.url}")
            _report_scan(found)
            _say(f"act's cache, every job's RUNNER_TEMP and TMPDIR: {work} (removed at the end)")
            print(flush=True)
            code = run_act(cmd, repository, env, log)
        finally:
            events = collector.events()
            stopped = _stop_daemons(log, work)
            collector.stop()
    for line in stopped:
        print(line)
    print(summary(log.jobs.values(), events, collector.url, found.warnings))
    if standin:
        for line in standin_note(tunnels=daemons, backend=env.get("STANDIN_TBOT_BACKEND", "")):
            print(line)
    gone = "removed" if not work.exists() else "NOT removed (remove it yourself)"
    print(f"Private directory {work} (act's cache, every job's RUNNER_TEMP): {gone}", flush=True)
    if code != 0:
        return code
    ran = list(log.jobs.values())
    return 0 if ran and all(job.result == "success" for job in ran) else 1


def _lay_out(found: Scan, work: Path, tbot: str, *, standin: bool) -> list[tuple[str, Path]]:
    """The folders act serves each mapping from: views of this checkout, the setup stand-in."""
    folders = {m.folder for m in MEMBERS if m.folder}
    folders |= {f for f in found.checkout_folders() if (ROOT / f).is_dir()}
    view = make_view(ROOT, work / "view", folders)
    setup = None
    if found.uses_setup():
        setup = setup_standin(work / "setup", work / "bin", tbot, standin=standin)
    member_views: dict[str, Path] = {}
    mappings: dict[str, Path] = {}
    for reference in found.references:
        if reference.kind == "checkout":
            mappings.setdefault(reference.mapping, view)
        elif reference.kind == "setup" and setup is not None:
            mappings.setdefault(reference.mapping, setup)
        elif reference.kind == "member":
            # teleport-actions/auth-k8s@REF: a repository whose root is the k8s member.
            name = reference.repo.rpartition("/")[2]
            if name not in member_views:
                dest = work / "views" / name
                member_views[name] = make_member_view(ROOT, dest, reference.folder)
            mappings.setdefault(reference.mapping, member_views[name])
    return list(mappings.items())


def _stop_daemons(log: ActLog, work: Path) -> list[str]:
    """End the tbots the jobs left running, as GitHub's runner ends a job's processes."""
    lines = []
    for job in log.jobs.values():
        for step in job.steps.values():
            if "tbot-pid" in step.outputs:
                stopped = stop_leftover_tbot(step.outputs["tbot-pid"], job.name)
                if stopped:
                    lines.append(stopped)
    for pid in stop_tbots_under(work):
        lines.append(f"act: stopped tbot (pid {pid}) left running under {work}")
    return lines
