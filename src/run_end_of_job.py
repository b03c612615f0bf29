"""What the end-of-job step runs: ``python3 -I -S -X utf8 src/run_end_of_job.py``.

The daemon members' nested ``end-of-job`` action runs this from its post step,
when the job ends, with the state its step saved in ``TELEPORT_AUTH_END_OF_JOB``
(see :mod:`teleport_auth.end_of_job`). As in run_action.py, the action's own
paths come first; only the standard library and gha's toolkit are imported.
"""

import os
import sys

_SRC = os.path.dirname(os.path.abspath(__file__))
_ACTION = os.path.dirname(_SRC)
sys.path[:] = [os.path.join(_ACTION, "_vendor"), _SRC] + [p for p in sys.path if p != _SRC]
if os.environ.get("PYTHONDONTWRITEBYTECODE"):
    sys.dont_write_bytecode = True

from teleport_auth.end_of_job import main  # noqa: E402

sys.exit(main(os.environ))
