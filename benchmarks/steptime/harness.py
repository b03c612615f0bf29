"""The test suite's helpers the benchmark shares: act runs, the collector, FaultServer."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

# `mypy benchmarks` alone does not see tests/ (a full `mypy` run does and checks these).
from act_harness import (  # noqa: E402
    DEMO_WORKFLOW,
    SHIPPED,
    ActRun,
    act_binary,
    prepare_workspace,
    run_act,
    start_collector,
)
from fault_server import FaultServer  # noqa: E402

__all__ = [
    "DEMO_WORKFLOW",
    "REPO",
    "SHIPPED",
    "ActRun",
    "FaultServer",
    "act_binary",
    "prepare_workspace",
    "run_act",
    "start_collector",
]
