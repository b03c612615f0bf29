"""Entry point of the step: run it, and turn every failure into one ``::error::``."""

from __future__ import annotations

import os
import sys

from teleport_auth import gha
from teleport_auth.cancel import cancellable
from teleport_auth.gha import ActionFailure
from teleport_auth.step import run


def main(argv: list[str] | None = None) -> int:
    """``argv``: the member's name (``k8s``, ...; none for ``auth``), as its action.yml passes it.

    Everything else comes from the environment.
    """
    member = argv[0] if argv else ""
    try:
        # SIGINT/SIGTERM/SIGHUP become Cancelled (an ActionFailure): every cleanup runs.
        with cancellable():
            return run(os.environ, member)
    except ActionFailure as failure:
        return gha.die(failure)
    except KeyboardInterrupt:
        return gha.die(ActionFailure("Interrupted.", exit_code=130))
    except Exception as exc:
        # A bug or an environment fault (e.g. RUNNER_TEMP not writable): one clear
        # error line for the user; the traceback only in the debug log.
        import traceback  # noqa: PLC0415 - only a bug gets here

        for line in traceback.format_exc().splitlines():
            gha.debug(line)
        return gha.die(
            ActionFailure(
                f"Unexpected {type(exc).__name__}: {exc}",
                hint="Re-run the job with debug logging enabled to see where it happened.",
            )
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
