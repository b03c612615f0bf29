#!/usr/bin/env python3
"""A stand-in for Teleport's ``tbot`` binary (installed as ``tbot`` by install.py).

The real binary cannot be downloaded where the tests, the ``act`` runs, the demo
and the benchmark run, so this imitates it wherever an action can observe it:
the ``tbot version`` line; how ``tbot start -c PATH [--diag-addr HOST:PORT]``
validates a ``version: v2`` config and fails (one ``ERROR: <message>`` line on
stderr, exit 1), strict at the top level and lenient inside outputs, services
and destinations as tbot is; the files identity, kubernetes and application
outputs write (outputs.py); tbot's own anonymous telemetry (telemetry.py); and,
with ``oneshot: false``, a daemon with the diagnostics endpoints and the tunnel
listeners of ``database-tunnel``, ``application-tunnel`` and ``application-proxy``
services (daemon.py).

It joins nothing: certificates and keys are random bytes shaped like PEM and
OpenSSH text, and a tunnel relays bytes to a backend of the test's choosing.
Only outputs with a directory destination produce files; the storage directory
is left alone.

Knobs, all read from the environment:

``STANDIN_TBOT_VERSION``
    Version ``tbot version`` prints and telemetry reports (default 16.4.2). The
    daemon's ``/wait`` exists from 18.6.4 (404 below, as on an older tbot).
``STANDIN_TBOT_EDITION``
    ``enterprise`` prints ``Teleport Enterprise v...``.
``STANDIN_TBOT_DELAY``
    Seconds (float) the join takes, before the outputs are written.
``STANDIN_TBOT_FAIL``
    After a valid config and the join delay, fail with ``ERROR: <value>``
    instead of writing (a daemon exits before it is ready).
``STANDIN_TBOT_EXIT_CODE``
    Exit code for ``STANDIN_TBOT_FAIL`` (default 1).
``STANDIN_TBOT_RECORD``
    Path of a JSON-lines file; every invocation appends, when it exits,
    ``{"argv": [args without the program name], "env": {...}, "env_keys":
    [...], "config": ..., "reported": bool}``. ``config`` is the parsed config as
    is (token included: the record is a test artifact and tests check what the
    action passed).
``STANDIN_TBOT_GOYAML``
    Path of a build of ``tests/goyaml`` (the test suite sets it when Go is
    installed): the config is read with Go's yaml.v3 first, tbot's own parser,
    and refused as tbot refuses it; the stand-in also fails if PyYAML reads it
    differently.

Daemon knobs (``oneshot: false``):

``STANDIN_TBOT_READY_DELAY``
    Seconds (float) after the outputs are written before the services are
    ready: ``/wait`` and ``/readyz`` answer 503 until then, 200 after.
``STANDIN_TBOT_WAIT``
    ``block``: ``/wait`` holds each request until ready and then answers, as
    newer tbot does; ``poll`` (the default) answers 503 at once until ready.
``STANDIN_TBOT_BACKEND``
    ``host:port`` every connection to a tunnel's ``listen`` address is relayed
    to; without it connections are accepted and closed.
``STANDIN_TBOT_MAX_LIFETIME``
    Seconds (float, default 600) after which the daemon exits by itself (exit
    0, with a WARN line), so that no test can leave one behind.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[1]
# The stand-in's modules are the `standin` package; the generated prehog module
# lives in the action's source tree.
for _path in (_REPO / "src", _HERE.parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
# A bare python3 (an act run, the demo) may lack PyYAML or protobuf: fall back on the
# action's bundle, after the interpreter's own packages.
if (_REPO / "_vendor").is_dir():
    sys.path.append(str(_REPO / "_vendor"))

from standin.cli import main  # noqa: E402 - needs the paths above

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], dict(os.environ)))
