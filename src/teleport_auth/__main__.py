"""Entry point: ``python -m teleport_auth``, as the action's launcher runs it."""

import sys

# Checked before anything else is imported, so an old interpreter gets a clear
# error instead of a SyntaxError from newer code.
if sys.version_info < (3, 10):  # noqa: UP036
    found = ".".join(map(str, sys.version_info[:3]))
    sys.stdout.write(
        f"::error::teleport-actions/auth needs Python 3.10 or newer; the runner's python3 "
        f"is {found}. Install a newer one (e.g. with actions/setup-python) before this step.\n"
    )
    raise SystemExit(1)

try:
    from teleport_auth.main import main
except ImportError as exc:
    # Only a damaged install gets here (e.g. a partial _vendor/ bundle).
    sys.stdout.write(
        f"::error::teleport-actions/auth could not load its runtime packages ({exc}). "
        "Its _vendor/ bundle is incomplete: delete that directory to have it rebuilt, "
        "or use a released version of the action, which ships it.\n"
    )
    raise SystemExit(1) from None

raise SystemExit(main(sys.argv[1:]))
