"""Put the tbot stand-in on a PATH directory as an executable named ``tbot``.

Usage: ``python tests/standin/install.py BIN_DIR`` prints the installed path.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path

TBOT_SCRIPT = Path(__file__).resolve().parent / "tbot.py"


def install_standin(bin_dir: Path, python: str = sys.executable) -> Path:
    """Write ``bin_dir/tbot``, a shell wrapper running the stand-in with ``python``.

    The default interpreter is the one running the caller, which has PyYAML and
    protobuf; a bare ``python3`` works too when the action's ``_vendor`` bundle exists.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    target = bin_dir / "tbot"
    # -I: like a Go binary, the stand-in is unaffected by the job's PYTHONPATH or cwd.
    wrapper = f'#!/bin/sh\nexec {shlex.quote(python)} -I {shlex.quote(str(TBOT_SCRIPT))} "$@"\n'
    # Write then rename: a concurrent test never runs a half-written wrapper.
    fd, tmp = tempfile.mkstemp(dir=bin_dir, prefix=".tbot.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(wrapper)
        os.chmod(tmp, 0o755)  # noqa: S103 - an executable on PATH must be readable
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: install.py BIN_DIR", file=sys.stderr)
        return 2
    print(install_standin(Path(argv[0]).resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
