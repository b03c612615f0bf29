"""The tbot every benchmarked step runs: a POSIX sh script that times itself.

``tbot version`` prints a version line the original action accepts too (>= 16.0.0);
``tbot start -c CFG`` prints a first line, works ``$BENCH_TBOT_SLEEP`` seconds if
set, writes the identity output's files (0600) into the destination named in the
config and exits. Every invocation appends "command start-ns end-ns" to
``$BENCH_TBOT_TIMES``. With ``$BENCH_TBOT_PROBE`` set, ``start`` writes what the
step looks like from inside: its parent is the step's interpreter (src/launch execs
Python; the original's node spawns tbot directly).
"""

from __future__ import annotations

from pathlib import Path

from steptime.model import BenchError

TBOT_VERSION_LINE = "Teleport v16.4.2 git:v16.4.2-0-g1a2b3c4 go1.22.8"
FIRST_LINE = "INFO [TBOT] benchmark tbot: starting"

INSTANT_TBOT = r"""#!/bin/sh
t0=$(date +%s%N)
cmd=${1:-}
case "$cmd" in
version)
    echo "@VERSION@"
    ;;
start)
    echo "@FIRST@"
    shift
    cfg=
    while [ $# -gt 0 ]; do
        case "$1" in
        -c | --config) cfg=${2:-}; [ $# -gt 1 ] && shift ;;
        esac
        shift
    done
    if [ -n "${BENCH_TBOT_SLEEP:-}" ]; then
        sleep "$BENCH_TBOT_SLEEP"
    fi
    # The identity output's destination: the only `path` key in the generated config
    # (YAML, or JSON, which is YAML too; a path without quotes, commas or braces).
    dest=$(sed -n "/.*[ {,\"]path\"\{0,1\}: *[\"']\{0,1\}\([^\"',}]*\).*/{s//\1/p;q;}" "$cfg")
    if [ -z "$dest" ]; then
        echo "ERROR: no destination path in the config" >&2
        exit 1
    fi
    umask 077
    mkdir -p "$dest"
    for f in identity key key.pub key-cert.pub tlscert teleport-host-ca.crt \
        teleport-user-ca.crt teleport-database-ca.crt known_hosts ssh_config; do
        echo "instant tbot stand-in: $f" >"$dest/$f"
    done
    echo "INFO [TBOT] One-shot mode completed, exiting."
    if [ -n "${BENCH_TBOT_PROBE:-}" ]; then
        action=${GITHUB_ACTION_PATH:-/nonexistent}
        {
            echo "parent=$(readlink "/proc/$PPID/exe")"
            echo "dontwrite=${PYTHONDONTWRITEBYTECODE-<unset>}"
            echo "action_path=${GITHUB_ACTION_PATH:-}"
            echo "pycs=$(find "$action/src" "$action/_vendor" -name '*.pyc' 2>/dev/null | wc -l)"
        } >"$BENCH_TBOT_PROBE"
    fi
    ;;
*)
    echo "ERROR: the benchmark's tbot does not do '$cmd'" >&2
    exit 1
    ;;
esac
if [ -n "${BENCH_TBOT_TIMES:-}" ]; then
    echo "$cmd $t0 $(date +%s%N)" >>"$BENCH_TBOT_TIMES"
fi
""".replace("@VERSION@", TBOT_VERSION_LINE).replace("@FIRST@", FIRST_LINE)


def install_tbot(bin_dir: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "tbot"
    path.write_text(INSTANT_TBOT, encoding="utf-8")
    path.chmod(0o755)
    return path


def tbot_seconds(path: Path) -> float:
    """Wall-clock time inside tbot: the sum over its invocations (version and start)."""
    lines = path.read_text().splitlines() if path.exists() else []
    commands = [line.split()[0] for line in lines]
    if sorted(commands) != ["start", "version"]:
        raise BenchError(f"expected one `tbot version` and one `tbot start`, got {commands}")
    return sum(int(end) - int(start) for _, start, end in (line.split() for line in lines)) / 1e9


def read_probe(path: Path) -> dict[str, str]:
    if not path.exists():
        raise BenchError("the warm-up run left no probe: did tbot run inside the step?")
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def event_printed_first(lines: list[str]) -> bool:
    """Opted in: the event's log group closed before tbot printed its first line."""
    group = next((i for i, line in enumerate(lines) if "Anonymous telemetry event" in line), None)
    tbot = next((i for i, line in enumerate(lines) if FIRST_LINE in line), None)
    if group is None or tbot is None:
        return False
    closed = next((i for i in range(group, tbot) if "::endgroup::" in lines[i]), None)
    return closed is not None
