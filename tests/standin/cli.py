"""The stand-in's command line: ``tbot version`` and ``tbot start -c PATH``."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping

from .config import BotConfig, decode_config
from .console import ConfigError, Logger, fail, print_error
from .outputs import write_outputs
from .telemetry import Telemetry, start_telemetry
from .yamlload import YamlMap, load_config

DEFAULT_VERSION = "16.4.2"

RECORDED_ENV = (
    "TELEPORT_ANONYMOUS_TELEMETRY",
    "TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS",
    "_TBOT_TELEMETRY_HELPER",
    "_TBOT_TELEMETRY_HELPER_VERSION",
    "TELEPORT_PROXY",
    "TELEPORT_AUTH_SERVER",
)

USAGE = """\
usage: tbot [<flags>] <command> [<args> ...]

A stand-in for Teleport's Machine ID agent, tbot.

Commands:
  version            Print the version of your tbot binary.
  start [legacy] -c  Starts the renewal bot, writing certificates to the outputs.

Flags:
  -h, --help         Show context-sensitive help.
  -d, --debug        Verbose logging to stdout.
  -c, --config       Path to a configuration file.
      --diag-addr    Address (host:port) of the diagnostics service: /livez,
                     /readyz, /wait.
"""

# Flags that take a value: --name VALUE, --name=VALUE, and -xVALUE for short ones.
_VALUE_FLAGS = {"-c": "config_path", "--config": "config_path", "--diag-addr": "diag_addr"}


class Invocation:
    def __init__(self) -> None:
        self.command = ""
        self.config_path: str | None = None
        self.diag_addr: str | None = None
        self.debug = False
        self.help = False


def parse_args(args: list[str]) -> Invocation:
    inv = Invocation()
    positional: list[str] = []
    items: Iterator[str] = iter(args)
    for arg in items:
        name, has_value, inline = arg.partition("=")
        if arg == "--":
            positional.extend(items)
        elif arg in ("-d", "--debug"):
            inv.debug = True
        elif arg in ("-h", "--help"):
            inv.help = True
        elif arg in _VALUE_FLAGS or (name.startswith("--") and has_value and name in _VALUE_FLAGS):
            value = inline if has_value else next(items, None)
            if value is None:
                fail(f"expected argument for flag '{arg}'")
            setattr(inv, _VALUE_FLAGS[name if has_value else arg], value)
        elif arg.startswith("-c") and not arg.startswith("--"):
            inv.config_path = arg[2:]
        elif arg.startswith("-") and arg != "-":
            fail(f"unknown flag '{name}'")
        else:
            positional.append(arg)

    if inv.help or positional[:1] == ["help"]:
        inv.help = True
        return inv
    if not positional:
        fail("expected command but got nothing")
    inv.command = positional[0]
    rest = positional[1:]
    if inv.command == "start" and rest[:1] == ["legacy"]:
        rest = rest[1:]  # v17+: `start legacy` is the explicit form of `start -c`
    elif inv.command not in ("start", "version"):
        fail(f'expected command but got "{inv.command}"')
    if rest:
        fail(f'unexpected argument "{rest[0]}"')
    if inv.command == "version":
        for flag, value in (("--config", inv.config_path), ("--diag-addr", inv.diag_addr)):
            if value is not None:
                fail(f"unknown flag '{flag}'")
    return inv


def tbot_version(env: Mapping[str, str]) -> str:
    return env.get("STANDIN_TBOT_VERSION", "").strip().removeprefix("v") or DEFAULT_VERSION


class Run:
    """What one invocation did, for the STANDIN_TBOT_RECORD line."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.config: YamlMap | None = None
        self.telemetry = Telemetry()


def start(inv: Invocation, env: Mapping[str, str], run: Run) -> int:
    console = Logger(debug_enabled=inv.debug)
    if inv.config_path is None:
        fail("the tbot stand-in needs a config file: tbot start -c PATH")
    run.config = load_config(inv.config_path, env.get("STANDIN_TBOT_GOYAML", ""))
    cfg = decode_config(run.config, env)
    daemon = None
    if not cfg.oneshot:
        from .daemon import Daemon, Knobs  # sockets and http.server: daemons only

        daemon = Daemon(cfg, Knobs(env), console, tbot_version(env))
    console.debug_enabled = inv.debug or cfg.debug
    version = tbot_version(env)
    console.debug("TBOT", "Debug logging has been enabled.", "tbot/main.go:356")
    console.info("TBOT", "Initializing tbot", "tbot/tbot.go:244", version=version)

    run.telemetry = start_telemetry(cfg, version, env, console)
    try:
        if daemon is None:
            code = join_and_write(cfg, env, console, _sleep)
            return 0 if code is None else code
        diag_addr = inv.diag_addr or cfg.diag_addr  # an empty flag leaves the config alone
        return daemon.run(diag_addr, lambda sleep: join_and_write(cfg, env, console, sleep))
    finally:
        run.telemetry.wait()


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return True


def join_and_write(
    cfg: BotConfig, env: Mapping[str, str], console: Logger, sleep: Callable[[float], bool]
) -> int | None:
    """Join and write the outputs. In one-shot mode it returns the exit code; a daemon
    gets None to go on (or to stop, when ``sleep`` was cut short), an exit code to fail."""
    console.info(
        "TBOT:IDENTITY",
        "Initializing bot identity.",
        "tbot/service_bot_identity.go:218",
        join_method=cfg.join_method,
        address=cfg.address,
    )
    if cfg.join_method == "github":
        # tbot fetches a GitHub OIDC token; jobs without `id-token: write` lack these.
        for name in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
            if not env.get(name):
                fail(f"{name} environment variable missing")
    delay = env.get("STANDIN_TBOT_DELAY", "")
    try:
        seconds = max(0.0, float(delay)) if delay else 0.0
    except ValueError:
        fail(f"tbot stand-in: STANDIN_TBOT_DELAY is not a number: {delay!r}")
    if not sleep(seconds):
        return None
    if message := env.get("STANDIN_TBOT_FAIL", ""):
        code = env.get("STANDIN_TBOT_EXIT_CODE", "1")
        print_error(message)
        return int(code) if code.strip().lstrip("-").isdigit() else 1
    console.info("TBOT:IDENTITY", "Fetched new bot identity.", "tbot/service_bot_identity.go:240")
    write_outputs(cfg, console, env)
    if not cfg.oneshot:
        return None
    for svc in cfg.services:
        if svc.is_tunnel:  # tunnels only run in daemon mode
            console.info(
                "TBOT",
                "Service does not support oneshot mode, will not run.",
                "tbot/tbot.go:382",
                service=svc.name,
            )
    console.info("TBOT", "One-shot mode completed, exiting.", "tbot/tbot.go:310")
    return 0


def write_record(run: Run, env: Mapping[str, str]) -> None:
    path = env.get("STANDIN_TBOT_RECORD", "")
    if not path:
        return
    record = {
        "argv": run.args,
        "env": {name: env.get(name) for name in RECORDED_ENV},
        "env_keys": sorted(env),
        "config": run.config,
        "reported": run.telemetry.reported,
    }
    line = json.dumps(record, default=str) + "\n"
    # One write on an O_APPEND descriptor keeps concurrent records whole.
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError as exc:  # a harness problem must be visible, not a traceback
        print(f"WARN tbot stand-in: cannot write {path}: {exc}", file=sys.stderr, flush=True)


def main(args: list[str], env: Mapping[str, str]) -> int:
    run = Run(list(args))
    try:
        inv = parse_args(args)
        if inv.help:
            sys.stdout.write(USAGE)
            return 0
        if inv.command == "version":
            edition = "Enterprise " if env.get("STANDIN_TBOT_EDITION") == "enterprise" else ""
            version = tbot_version(env)
            print(f"Teleport {edition}v{version} git:v{version}-0-g1a2b3c4 go1.22.8")
            return 0
        return start(inv, env, run)
    except ConfigError as exc:
        print_error(str(exc))
        return 1
    finally:
        write_record(run, env)
