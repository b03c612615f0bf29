"""The demo: one member end to end through act, with the tbot stand-in and a local collector.

Run it as ``python3 scripts/dev demo [--action MEMBER] [--telemetry on|off] [--keep]``;
scripts/dev prepares .venv/ (act, the stand-in's packages) and _vendor/ first.
``--action`` is ``auth`` (demo/workflow.yml, the default) or another member
(its job in demo/family.yml). The daemon members get an echo server as the
stand-in's backend, so the workflow's later step talks through the tunnel.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import contextlib  # noqa: E402

from act_harness import (  # noqa: E402
    DEMO_WORKFLOW,
    FAMILY_WORKFLOW,
    prepare_workspace,
    run_act,
    start_collector,
)
from echo_server import EchoServer, free_port  # noqa: E402
from standin.install import install_standin  # noqa: E402

sys.path.insert(0, str(REPO / "_vendor"))
sys.path.insert(1, str(REPO / "src"))
from teleport_auth.family import MEMBERS  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--action", choices=[m.key for m in MEMBERS], default="auth")
    parser.add_argument("--telemetry", choices=["on", "off"], default="on")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="teleport-auth-demo-"))
    print(f"demo: work directory {work}", flush=True)
    member = next(m for m in MEMBERS if m.key == args.action)
    workflow = DEMO_WORKFLOW if member.key == "auth" else FAMILY_WORKFLOW
    workspace = prepare_workspace(work / "workspace", workflow)
    bin_dir = work / "bin"
    install_standin(bin_dir)
    collector = start_collector(work)
    url = collector.url
    env = {"TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS": url}
    with contextlib.ExitStack() as stack:
        if not member.oneshot:
            echo = stack.enter_context(EchoServer())
            # The daemon members need tbot 18.6.4; the stand-in relays to the echo server.
            env |= {
                "STANDIN_TBOT_VERSION": "18.6.4",
                "STANDIN_TBOT_BACKEND": echo.hostport,
                "STANDIN_TBOT_MAX_LIFETIME": "120",
            }
        try:
            job = None if member.key == "auth" else member.key
            print(
                f"demo: act -P ubuntu-latest=-self-hosted workflow_dispatch "
                f"({workflow.relative_to(REPO)}{f' -j {job}' if job else ''}, "
                f"uses: ./{member.folder}, anonymous-telemetry: {args.telemetry == 'on'})\n",
                flush=True,
            )
            run = run_act(
                workspace,
                bin_dir=bin_dir,
                telemetry="true" if args.telemetry == "on" else "false",
                env=env,
                job=job,
                variables={
                    "DEMO_LISTEN_PORT": str(free_port()),
                    "DEMO_DIAG_PORT": str(free_port()),
                },
            )
            print(run.log)
        finally:
            collector.stop()

    print("=" * 72)
    print("Outputs the action set:")
    for name, value in run.reported("output").items():
        print(f"  {name} = {value}")
    print("Environment for later steps:")
    for name, value in run.reported("env").items():
        print(f"  {name} = {value}")
    for line in run.step_lines:
        if line.startswith(("reply ", "context ")):
            print(f"A later step: {line}")
    events = collector.events()
    print(f"Events the collector received: {len(events)}")
    for event in events:
        print(json.dumps(event, indent=2))
    if args.telemetry == "off" and not events:
        print("  (telemetry off: nothing was sent, as promised)")
    verdict = "succeeded" if run.succeeded else "FAILED"
    print(f"Job {verdict}; the action's step took {run.step_seconds:.3f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    expected_events = 1 if args.telemetry == "on" else 0
    return 0 if run.succeeded and len(events) == expected_events else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
