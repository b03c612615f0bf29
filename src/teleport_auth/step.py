"""The one step every member runs: inputs -> config -> tbot -> outputs (-> telemetry)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teleport_auth import __version__, gha
from teleport_auth.config import build_config as _build_config
from teleport_auth.config import private_dir, redacted, to_yaml, write_config
from teleport_auth.family import member as find_member
from teleport_auth.family.spec import Member, Published, Version
from teleport_auth.gha import ActionFailure
from teleport_auth.inputs import Inputs, raw_input, read_inputs, telemetry_consent
from teleport_auth.runner_files import RunnerFiles, describe_os_error
from teleport_auth.tbot import (
    TbotVersion,
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

SETUP_HINT = (
    "Install tbot before this step, for example with "
    "[`teleport-actions/setup`](https://github.com/teleport-actions/setup)."
)
_TELEMETRY_BROKEN = (
    "Anonymous telemetry failed inside the action ({error}); nothing more is sent. "
    "Authentication is not affected."
)


def mask_user_values(env: Mapping[str, str]) -> None:
    # Before anything else is printed: the token and the proxy never show in the log.
    for name in ("token", "proxy"):
        value = raw_input(env, name).strip()
        if value:
            gha.add_mask(value)


def _member(key: str) -> Member[Any]:
    found = find_member(key)
    if found is None:
        # Only a hand-edited action.yml gets here.
        raise ActionFailure(f"teleport-actions/auth has no member called {key!r}.")
    return found


def _runner_temp(env: Mapping[str, str]) -> Path:
    temp = Path(env.get("RUNNER_TEMP") or tempfile.gettempdir())
    if not temp.is_dir():
        raise ActionFailure(f"RUNNER_TEMP ({temp}) does not exist or is not a directory.")
    return temp


def _private_dir(temp: Path) -> Path:
    try:
        return private_dir(temp)
    except OSError as exc:
        raise ActionFailure(
            f"Could not create a private directory in RUNNER_TEMP ({temp}): "
            f"{describe_os_error(exc)}."
        ) from None


def _write_config(config: dict[str, Any], directory: Path) -> Path:
    try:
        return write_config(config, directory)
    except OSError as exc:
        raise ActionFailure(
            f"Could not write the tbot configuration in RUNNER_TEMP ({directory}): "
            f"{describe_os_error(exc)}."
        ) from None


def _check_versions(version: TbotVersion, requirements: tuple[tuple[Version, str], ...]) -> None:
    for minimum, what in requirements:
        if not version.at_least(minimum):
            wanted = ".".join(map(str, minimum))
            raise ActionFailure(
                f"{what} needs tbot {wanted} or newer; the installed tbot is {version.text}.",
                hint=SETUP_HINT,
            )


def _start_telemetry(
    tbot_version: str, config: dict[str, Any], env: Mapping[str, str]
) -> tuple[Reporter | None, str]:
    """Start the submission alongside tbot. Telemetry never fails the job, even on a bug."""
    try:
        # Imported only when opted in: an opted-out run never loads the telemetry code.
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


def _summary(
    member: Member[Any],
    version: TbotVersion,
    published: Published,
    exported: str,
    telemetry: str,
) -> str:
    rows = [("tbot", version.describe())]
    lines = [f"### {member.title}", "", "| | |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in rows]
    # Paths and names come from inputs: shown literally, never rendered.
    lines += [
        f"| {label} | {gha.md_literal(value, in_table=True)} |" for label, value in published.rows
    ]
    lines += [
        f"| Variables exported | {exported} |",
        f"| Anonymous telemetry | {telemetry} |",
    ]
    return "\n".join(lines)


def _exported(member: Member[Any], inputs: Inputs) -> str:
    if not member.exports:
        return "none"
    if inputs.disable_env_vars:
        return "no (disable-env-vars)"
    return ", ".join(f"`{name}`" for name in member.exports)


def run(env: MutableMapping[str, str], member_key: str = "") -> int:
    mask_user_values(env)
    member = _member(member_key)
    inputs = read_inputs(env)
    own = member.read(env)
    for message in inputs.warnings:
        gha.warning(message)
    temp = _runner_temp(env)
    consent = telemetry_consent(env)
    if consent.warning:
        gha.warning(consent.warning, title="Anonymous telemetry")
    gha.info(consent_line(consent.enabled))

    # The helper fields, set where tbot and our event both read them.
    env[HELPER_ENV] = member.helper
    env[HELPER_VERSION_ENV] = __version__

    tbot = find_tbot(env)
    version = read_version(tbot, env)
    gha.info(f"Using tbot {version.describe()} ({tbot}).")
    _check_versions(version, member.requirements(own))

    exporting = bool(member.exports) and not inputs.disable_env_vars
    files = RunnerFiles.open(env, with_env=exporting)
    destination: Path | None = None
    try:
        destination = _private_dir(temp)
        published, telemetry = _run_tbot(
            env,
            member,
            own,
            inputs,
            tbot=tbot,
            version=version,
            destination=destination,
            telemetry_on=consent.enabled,
        )
        files.publish(published.outputs, published.exports if exporting else {})
    except BaseException:
        # All or nothing: a failed step leaves no identity behind.
        if destination is not None:
            shutil.rmtree(destination, ignore_errors=True)
        raise
    finally:
        files.close()

    if member.exports and inputs.disable_env_vars:
        gha.info("disable-env-vars is set: no environment variables are exported.")
    gha.info(f"Credentials written to {destination}.")
    gha.append_summary(_summary(member, version, published, _exported(member, inputs), telemetry))
    return 0


def _run_tbot(
    env: MutableMapping[str, str],
    member: Member[Any],
    own: object,
    inputs: Inputs,
    *,
    tbot: str,
    version: TbotVersion,
    destination: Path,
    telemetry_on: bool,
) -> tuple[Published, str]:
    """Write the config, run tbot once with telemetry alongside; what to publish."""
    config = _build_config(inputs, member.entry(own, destination), oneshot=member.oneshot)
    if gha.is_debug(env):
        gha.debug("tbot configuration (token redacted):")
        for line in to_yaml(redacted(config)).splitlines():
            gha.debug(line)

    config_dir = _private_dir(destination.parent)
    reporter, telemetry = (
        _start_telemetry(version.text, config, env) if telemetry_on else (None, "off")
    )
    try:
        config_path = _write_config(config, config_dir)
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
    return member.publish(own, inputs, destination), telemetry
