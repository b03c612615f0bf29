"""``python tools/act_local``: what ``python3 scripts/dev act`` runs.

Run as a folder, not with ``-m`` and a PYTHONPATH: the environment is passed
on to act and the jobs, which must not inherit this checkout's paths.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "src"), str(ROOT / "_vendor")]

from act_local.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
