"""The command line: ``python3 scripts/dev collector [flags]``."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from types import FrameType
from urllib.parse import urlsplit

from tbot_collector.collector import Collector
from tbot_collector.forwarding import API_KEY_ENV, FLUSH_INTERVAL, CollectorError
from tbot_collector.storage import DEFAULT_OUTPUT

PROG = "python3 scripts/dev collector"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Collect tbot's anonymous telemetry (prehog.v1alpha SubmitTbotEvent over "
        "Connect) into a JSONL file, optionally forwarding it to your own PostHog.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free port)")
    p.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        metavar="PATH",
        help=f"JSONL file events are appended to (default {DEFAULT_OUTPUT})",
    )
    p.add_argument(
        "--posthog-host",
        metavar="URL",
        help=f"also forward the events to this PostHog (project key from {API_KEY_ENV})",
    )
    p.add_argument(
        "--posthog-flush-interval",
        type=float,
        default=FLUSH_INTERVAL,
        metavar="SECONDS",
        help=f"send a batch to PostHog at least this often (default {FLUSH_INTERVAL:g})",
    )
    p.add_argument("--port-file", metavar="PATH", help="write the bound port here once listening")
    p.add_argument("--quiet", action="store_true", help="no line per event")
    p.add_argument(
        "--exit-after",
        type=float,
        metavar="SECONDS",
        help="stop by itself after this long (a safety net for scripts and tests)",
    )
    return p


def _write_port_file(path: str, port: int) -> None:
    # Atomic: a script polling for the file never reads it half-written.
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _summary(collector: Collector) -> str:
    text = f"{collector.events} events"
    if collector.forwarding:
        text += f"; PostHog: {collector.forwarded} forwarded"
        if collector.forward_failures:
            text += f", {collector.forward_failures} failed"
        if collector.forward_pending:
            text += f", {collector.forward_pending} not confirmed"
    return f"collector stopped ({text})"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0-65535, not {args.port}")
    if args.exit_after is not None and not _positive(args.exit_after):
        parser.error(f"--exit-after must be a positive number of seconds, not {args.exit_after}")
    if not _positive(args.posthog_flush_interval):
        parser.error(
            "--posthog-flush-interval must be a positive number of seconds, "
            f"not {args.posthog_flush_interval}"
        )
    api_key = None
    if args.posthog_host is not None:
        url = urlsplit(args.posthog_host)
        if url.scheme not in ("http", "https") or not url.netloc:
            parser.error(f"--posthog-host must be an http(s) URL, not {args.posthog_host!r}")
        api_key = os.environ.get(API_KEY_ENV, "").strip()
        if not api_key:
            parser.error(f"--posthog-host needs the PostHog project API key in {API_KEY_ENV}")

    try:
        collector = Collector(
            args.output,
            args.host,
            args.port,
            posthog_host=args.posthog_host,
            posthog_api_key=api_key,
            posthog_flush_interval=args.posthog_flush_interval,
            quiet=args.quiet,
        )
    except CollectorError as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"collector: {exc.strerror or exc}", file=sys.stderr)
        return 1

    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True  # only a flag: the main loop does the (locking) shutdown

    # Installed before the port file appears, so a SIGTERM right after it is clean.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        collector.start()
        collector.lines.out(f"collector listening on {collector.url} (events → {collector.output})")
        if args.port_file:
            try:
                _write_port_file(args.port_file, collector.port)
            except OSError as exc:
                collector.lines.err(f"collector: cannot write the port file: {exc}")
                collector.stop()
                return 1
        deadline = None if args.exit_after is None else time.monotonic() + args.exit_after
        while not stop and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.1)
        collector.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    collector.lines.out(_summary(collector))
    return 0
