"""The one step every member runs: inputs -> config -> tbot -> outputs (-> telemetry)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teleport_auth import __version__, cancel, gha
from teleport_auth.family import member as find_member
from teleport_auth.family.spec import Member, Published, Version
from teleport_auth.gha import ActionFailure
from teleport_auth.inputs import Inputs, raw_input, read_inputs, telemetry_consent
from teleport_auth.oneshot import run_oneshot
from teleport_auth.run_context import Context, make_private_dir
from teleport_auth.runner_files import RunnerFiles
from teleport_auth.tbot import TbotVersion, find_tbot, read_version
from teleport_auth.telemetry import HELPER_ENV, HELPER_VERSION_ENV, consent_line

if TYPE_CHECKING:
    pass

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
    runner_temp = env.get("RUNNER_TEMP")
    if runner_temp:
        temp = Path(runner_temp)
    else:
        import tempfile  # noqa: PLC0415 - only outside a runner

        temp = Path(tempfile.gettempdir())
    if not temp.is_dir():
        raise ActionFailure(f"RUNNER_TEMP ({temp}) does not exist or is not a directory.")
    return temp


def _check_versions(version: TbotVersion, requirements: tuple[tuple[Version, str], ...]) -> None:
    for minimum, what in requirements:
        if not version.at_least(minimum):
            wanted = ".".join(map(str, minimum))
            raise ActionFailure(
                f"{what} needs tbot {wanted} or newer; the installed tbot is {version.text}.",
                hint=SETUP_HINT,
            )


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
    for message in (*inputs.warnings, *member.warnings(own)):
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
    background: Any = None  # a daemon member's running tbot, once it is up
    try:
        destination = make_private_dir(temp)
        context = Context(env, member, own, inputs, tbot, version, destination, consent.enabled)
        if member.daemon is not None:
            # Only a daemon member loads the daemon code (http.client and all).
            from teleport_auth.background import run_daemon  # noqa: PLC0415

            published, telemetry, background = run_daemon(context, member.daemon(own))
        else:
            published, telemetry = run_oneshot(context)
        # All or nothing: a signal from here on no longer undoes the step, so
        # what is published stays true; before this line it undoes everything.
        with cancel.final():
            files.publish(published.outputs, published.exports if exporting else {})
    except BaseException as exc:
        # All or nothing: a failed step leaves no identity, log or tbot behind,
        # except a failed daemon start's log, which it names in its outputs.
        kept = exc.outputs if isinstance(exc, ActionFailure) else {}
        if background is not None:
            from teleport_auth.daemon import stop  # noqa: PLC0415

            with cancel.deferred():
                stop(background)
        if destination is not None and not kept:
            with cancel.deferred():
                shutil.rmtree(destination, ignore_errors=True)
        if kept:
            with cancel.deferred(), contextlib.suppress(ActionFailure):
                files.publish(kept, {})
        raise
    finally:
        files.close()

    if member.exports and inputs.disable_env_vars:
        gha.info("disable-env-vars is set: no environment variables are exported.")
    if member.oneshot:
        gha.info(f"Credentials written to {destination}.")
    gha.append_summary(_summary(member, version, published, _exported(member, inputs), telemetry))
    return 0
