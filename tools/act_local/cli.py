"""``python3 scripts/dev act REPO [-W WORKFLOW] [-j JOB] [--tbot PATH] [--verbose] [-- ACT ARGS]``.

Runs a repository's workflows through act on this host, with every
``uses: teleport-actions/auth[/member]@REF`` taken from this checkout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from act_local.actlog import ActLog
from act_local.processes import ROOT, Collector, SetupError, put_tbot_on_path, stop_leftover_tbot
from act_local.report import summary
from act_local.view import ViewError, make_view
from act_local.workflows import WorkflowError, scan, workflow_files
from teleport_auth.family import MEMBERS
from teleport_auth.family.spec import END_OF_JOB_FOLDER, END_OF_JOB_REF

PROG = "python3 scripts/dev act"
# The daemon members need tbot 18.6.4 (its /wait); the stand-in reports 16.4.2 unless told.
DAEMON_TBOT_VERSION = "18.6.4"
# act has no OIDC service: the stand-in only checks that these are set.
OIDC_DUMMIES = {
    "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/oidc-not-available-under-act",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "act",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run a repository's workflows through act on this host, with every "
        "`uses: teleport-actions/auth[/member]@REF` taken from this checkout, tbot (the "
        "stand-in unless --tbot) on PATH and a local telemetry collector. Arguments after "
        "`--` go to act as they are (e.g. `-- workflow_dispatch --input name=value`).",
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
        help="show the steps' ::debug:: lines (act -v; RUNNER_DEBUG=1 as GitHub's debug logging)",
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
    view: Path,
    mappings: list[str],
    labels: set[str],
    collector_url: str,
    workflows: Path | None,
    job: str | None,
    verbose: bool,
    extra: list[str],
) -> list[str]:
    cmd = [act_binary(), "--json", "--no-cache-server"]
    # Every label the jobs ask for runs on this host (no Docker needed).
    for label in sorted(labels | {"ubuntu-latest"}):
        cmd += ["-P", f"{label}=-self-hosted"]
    for mapping in mappings:
        cmd += ["--local-repository", f"{mapping}={view}"]
    job_env = {**OIDC_DUMMIES, "TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS": collector_url}
    if verbose:
        job_env["RUNNER_DEBUG"] = "1"
        cmd.append("-v")
    for key, value in job_env.items():
        cmd += ["--env", f"{key}={value}"]
    if workflows is not None:
        cmd += ["-W", str(workflows)]
    if job:
        cmd += ["-j", job]
    return cmd + extra


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
    except KeyboardInterrupt:
        # Ctrl-C reached act too (same process group): let it clean up its job.
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return 130


def main(argv: list[str]) -> int:
    own, extra = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    args = _parser().parse_args(own)
    try:
        return _run(args, extra)
    except (WorkflowError, ViewError, SetupError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130  # before or after act ran (run_act handles it during)


def _run(args: argparse.Namespace, extra: list[str]) -> int:
    repository = args.repository.resolve()
    if not repository.is_dir():
        raise WorkflowError(f"{args.repository}: not a folder")
    workflows = _resolve_workflows(args.workflows, repository)
    found = scan(repository, workflow_files(repository, workflows))
    folders = {m.folder: m for m in MEMBERS}
    for usage in found.usages:
        if usage.member not in folders:
            known = ", ".join(sorted(f for f in folders if f))
            print(f"{PROG}: warning: {usage.file}: uses {usage.uses}, but this checkout has "
                  f"no member {usage.member!r} (members: {known})", file=sys.stderr)  # fmt: skip
    if not found.usages:
        print(f"{PROG}: note: no workflow there uses teleport-actions/auth@REF", file=sys.stderr)
    env = dict(os.environ)
    # act's version check would query the internet.
    env["ACT_DISABLE_VERSION_CHECK"] = "1"
    with tempfile.TemporaryDirectory(prefix="teleport-auth-act-") as tmp:
        work = Path(tmp)
        view = make_view(
            ROOT, work / "view", (m.folder for m in MEMBERS if m.folder), (END_OF_JOB_FOLDER,)
        )
        tbot = put_tbot_on_path(work / "bin", args.tbot)
        # The self-hosted "runner" is this host: jobs find tbot on act's own PATH.
        env["PATH"] = f"{work / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        daemons = {m.folder for m in MEMBERS if not m.oneshot} & found.members()
        if args.tbot is None and daemons:
            env.setdefault("STANDIN_TBOT_VERSION", DAEMON_TBOT_VERSION)
        mappings = found.mappings()
        # The daemon members' own nested `uses: teleport-actions/auth/end-of-job@REF`.
        if daemons and (nested := f"teleport-actions/auth@{END_OF_JOB_REF}") not in mappings:
            mappings.append(nested)
        collector = Collector.start(work)
        log = ActLog()
        try:
            cmd = act_command(
                view=view,
                mappings=mappings,
                labels=found.labels,
                collector_url=collector.url,
                workflows=workflows,
                job=args.job,
                verbose=args.verbose,
                extra=extra,
            )
            print(f"{PROG}: act in {repository}; tbot: {tbot}; collector: {collector.url}")
            for mapping in mappings:
                print(f"{PROG}: {mapping} (and its members) = this checkout, {ROOT}")
            print(flush=True)
            code = run_act(cmd, repository, env, log)
        finally:
            events = collector.events()
            collector.stop()
    for job in log.jobs.values():
        for step in job.steps.values():
            if "tbot-pid" in step.outputs:
                stopped = stop_leftover_tbot(step.outputs["tbot-pid"], job.name)
                if stopped:
                    print(stopped)
    print(summary(log.jobs.values(), events, collector.url), flush=True)
    if code != 0:
        return code
    ran = list(log.jobs.values())
    return 0 if ran and all(job.result == "success" for job in ran) else 1
