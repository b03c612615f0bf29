"""What the launcher runs: ``python3 -I -S -X utf8 src/run_action.py [MEMBER ...]``.

``-I`` isolates the step from the job: the working directory (the job's
checkout, where a stray ``yaml.py`` would otherwise shadow our modules),
PYTHON* variables and user site-packages are all ignored; ``-S`` leaves out
site-packages too. The action's own paths are put first here instead: the
vendored packages, then its source; the rest is the standard library.
"""

import os
import sys

_SRC = os.path.dirname(os.path.abspath(__file__))
_ACTION = os.path.dirname(_SRC)
# Python 3.10's -I still adds this script's directory (src/): keep just one copy.
sys.path[:] = [os.path.join(_ACTION, "_vendor"), _SRC] + [p for p in sys.path if p != _SRC]
# -I also ignores PYTHONDONTWRITEBYTECODE; a runner that sets it means it.
if os.environ.get("PYTHONDONTWRITEBYTECODE"):
    sys.dont_write_bytecode = True

import runpy  # noqa: E402

# alter_sys replaces only sys.argv[0] (with the module's path): the launcher's
# arguments (the family member's name) stay in sys.argv[1:] for the module.
runpy.run_module("teleport_auth", run_name="__main__", alter_sys=True)
