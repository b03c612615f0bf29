"""The action's one step: validate, configure, run tbot, publish the identity."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teleport_auth import HELPER_NAME, __version__, gha
from teleport_auth.config import build_config, private_dir, redacted, to_yaml, write_config
from teleport_auth.gha import ActionFailure
from teleport_auth.inputs import Inputs, raw_input, read_inputs, telemetry_consent
from teleport_auth.tbot import (
    check_version,
    describe_exit,
    find_tbot,
    read_version,
    run_start,
    step_exit_code,
    tbot_env,
)
from teleport_auth.telemetry import HELPER_ENV, HELPER_VERSION_ENV, consent_line

if TYPE_CHECKING:
    from teleport_auth.telemetry.reporter import Reporter

OUTPUT_FILES = {"identity-file": "identity", "ssh-config": "ssh_config"}


def _mask_user_values(env: Mapping[str, str]) -> None:
    # Before anything else is printed: the token and the proxy never show in the log.
    for name in ("token", "proxy"):
        value = raw_input(env, name).strip()
        if value:
            gha.add_mask(value)


def _publish(inputs: Inputs, destination: Path, identity: Path) -> None:
    gha.set_output("identity-file", str(identity))
    gha.set_output("ssh-config", str(destination / OUTPUT_FILES["ssh-config"]))
    gha.set_output("destination-dir", str(destination))
    if inputs.disable_env_vars:
        gha.info("disable-env-vars is set: TELEPORT_* variables are not exported.")
        return
    gha.export_variable("TELEPORT_PROXY", inputs.proxy)
    gha.export_variable("TELEPORT_AUTH_SERVER", inputs.proxy)
    gha.export_variable("TELEPORT_IDENTITY_FILE", str(identity))


_TELEMETRY_BROKEN = (
    "Anonymous telemetry failed inside the action ({error}); nothing more is sent. "
    "Authentication is not affected."
)


def _start_telemetry(
    tbot_version: str, config: dict[str, Any], env: Mapping[str, str]
) -> tuple[Reporter | None, str]:
    """Start the submission alongside tbot. Telemetry never fails the job, even on a bug."""
    try:
        # Imported only when opted in: an opted-out run never loads the HTTP/protobuf stack.
        from teleport_auth.telemetry import reporter  # noqa: PLC0415

        started = reporter.start(tbot_version, config, env)
    except Exception as exc:
        gha.warning(_TELEMETRY_BROKEN.format(error=f"{type(exc).__name__}: {exc}"))
        return None, "on: not sent (see the warning above)"
    if isinstance(started, str):
        return None, started
    return started, "on"


def _finish_telemetry(reporter: Reporter, *, tbot_succeeded: bool) -> str:
    try:
        return reporter.finish(tbot_succeeded=tbot_succeeded)
    except Exception as exc:
        reporter.abandon()
        gha.warning(_TELEMETRY_BROKEN.format(error=f"{type(exc).__name__}: {exc}"))
        return "on: outcome unknown (see the warning above)"


def _preflight(env: Mapping[str, str], inputs: Inputs) -> Path:
    """Check the runner's files before tbot issues anything; return the temp directory."""
    needed = ["GITHUB_OUTPUT"] + ([] if inputs.disable_env_vars else ["GITHUB_ENV"])
    for name in needed:
        if not env.get(name):
            raise ActionFailure(
                f"{name} is not set: this step must run in a GitHub Actions job (or under act)."
            )
    temp = Path(env.get("RUNNER_TEMP") or tempfile.gettempdir())
    if not temp.is_dir():
        raise ActionFailure(f"RUNNER_TEMP ({temp}) does not exist or is not a directory.")
    return temp


def run(env: MutableMapping[str, str]) -> int:
    _mask_user_values(env)
    inputs = read_inputs(env)
    temp = _preflight(env, inputs)
    consent = telemetry_consent(env)
    if consent.warning:
        gha.warning(consent.warning, title="Anonymous telemetry")
    gha.info(consent_line(consent.enabled))

    # The helper fields, set where tbot and our event both read them.
    env[HELPER_ENV] = HELPER_NAME
    env[HELPER_VERSION_ENV] = __version__

    tbot = find_tbot(env)
    version = read_version(tbot, env)
    gha.info(f"Using tbot {version.describe()} ({tbot}).")
    check_version(version, allow_reissue=inputs.allow_reissue)

    destination = private_dir(temp)
    config_dir = private_dir(temp)
    config = build_config(inputs, destination)
    if gha.is_debug(env):
        gha.debug("tbot configuration (token redacted):")
        for line in to_yaml(redacted(config)).splitlines():
            gha.debug(line)

    reporter, telemetry = (
        _start_telemetry(version.text, config, env) if consent.enabled else (None, "off")
    )
    try:
        config_path = write_config(config, config_dir)
        result = run_start(tbot, config_path, tbot_env(env), debug=gha.is_debug(env))
    except BaseException:
        if reporter is not None:
            reporter.abandon()
        raise
    finally:
        # The config holds the token and is only needed while tbot runs.
        shutil.rmtree(config_dir, ignore_errors=True)

    if reporter is not None:
        telemetry = _finish_telemetry(reporter, tbot_succeeded=result.exit_code == 0)
    gha.debug(f"tbot ran for {result.seconds * 1000:.0f} ms")
    if result.exit_code != 0:
        detail = f": {result.last_error}" if result.last_error else ""
        raise ActionFailure(
            f"tbot {describe_exit(result.exit_code)}{detail}",
            exit_code=step_exit_code(result.exit_code),
            hint="The tbot output is in the `tbot start` group of the step's log. "
            "A missing `ACTIONS_ID_TOKEN_REQUEST_URL` means the job lacks "
            "`permissions: id-token: write`.",
        )

    identity = destination / OUTPUT_FILES["identity-file"]
    _publish(inputs, destination, identity)
    gha.info(f"Identity written to {identity}.")
    exported = "no (disable-env-vars)" if inputs.disable_env_vars else "yes"
    gha.append_summary(
        "### Teleport auth\n\n"
        "| | |\n|---|---|\n"
        f"| tbot | {version.describe()} |\n"
        f"| Identity file | `{identity}` |\n"
        f"| `TELEPORT_*` variables exported | {exported} |\n"
        f"| Anonymous telemetry | {telemetry} |"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    del argv  # the action takes everything from its environment
    try:
        return run(os.environ)
    except ActionFailure as failure:
        return gha.die(failure)
    except KeyboardInterrupt:
        return gha.die(ActionFailure("Interrupted.", exit_code=130))
    except Exception as exc:
        # A bug or an environment fault (e.g. RUNNER_TEMP not writable): one clear
        # error line for the user; the traceback only in the debug log.
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
