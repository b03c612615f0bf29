"""The demo: the action end to end through act, with the tbot stand-in and a local collector.

Run it as ``python3 scripts/dev demo [--telemetry on|off] [--keep]``; scripts/dev
prepares .venv/ (act, the stand-in's packages) and _vendor/ first.
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

from act_harness import prepare_workspace, run_act, start_collector  # noqa: E402
from standin.install import install_standin  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--telemetry", choices=["on", "off"], default="on")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="teleport-auth-demo-"))
    print(f"demo: work directory {work}", flush=True)
    workspace = prepare_workspace(work / "workspace")
    bin_dir = work / "bin"
    install_standin(bin_dir)
    collector = start_collector(work)
    url = collector.url
    try:
        print(
            f"demo: act -P ubuntu-latest=-self-hosted workflow_dispatch "
            f"(demo/workflow.yml, anonymous-telemetry: {args.telemetry == 'on'})\n",
            flush=True,
        )
        run = run_act(
            workspace,
            bin_dir=bin_dir,
            telemetry="true" if args.telemetry == "on" else "false",
            env={"TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS": url},
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
