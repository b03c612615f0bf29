"""Entry point: ``python -m teleport_auth``, as the action's launcher runs it."""

import gc
import sys

# Checked before anything else is imported, so an old interpreter gets a clear
# error instead of a SyntaxError from newer code.
if sys.version_info < (3, 10):  # noqa: UP036
    import os

    found = ".".join(map(str, sys.version_info[:3]))
    if os.environ.get("GITHUB_WORKSPACE", "").startswith("/__w/"):
        # A job with `container:` runs the step in its image, with that image's
        # python3; the runner mounts the job's work directory there as /__w.
        sys.stdout.write(
            f"::error::teleport-actions/auth needs Python 3.10 or newer; "
            f"{sys.executable or 'python3'} in this job's container is {found}. The container "
            "image needs python3 3.10+ and bash: use a newer image (e.g. debian:12, "
            "ubuntu:22.04 or later) or install a newer python3 in an earlier step and name it "
            "with TELEPORT_AUTH_PYTHON.\n"
        )
        raise SystemExit(1)
    # RHEL 9 and Amazon Linux 2023 ship 3.9 as python3, with newer ones as packages.
    sys.stdout.write(
        f"::error::teleport-actions/auth needs Python 3.10 or newer; {sys.executable or 'python3'} "
        f"is {found}. Install a newer one beside it (e.g. python3.11 "
        "from the distribution's packages) and name it with TELEPORT_AUTH_PYTHON "
        "(e.g. `TELEPORT_AUTH_PYTHON: python3.11` in the job's env), or use "
        "actions/setup-python before this step.\n"
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

code = main(sys.argv[1:])
# Nothing is left to collect: without this, the interpreter's exit walks every
# object protobuf and requests made (about 12 ms of an opted-in run).
gc.freeze()
raise SystemExit(code)
