"""The one step every member runs: inputs -> config -> tbot -> outputs (-> telemetry)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING

from teleport_auth import HELPER_VERSION, cancel, gha
from teleport_auth.config import make_private_dir
from teleport_auth.context import Context
from teleport_auth.family import member as find_member
from teleport_auth.family.spec import Member, Published, Requirement
from teleport_auth.gha import ActionFailure
from teleport_auth.inputs import Inputs, read_inputs, telemetry_consent
from teleport_auth.oneshot import run_oneshot
from teleport_auth.runner_files import RunnerFiles
from teleport_auth.tbot import SETUP_HINT, TbotVersion, find_tbot, read_version
from teleport_auth.telemetry import HELPER_ENV, HELPER_VERSION_ENV, consent_line

if TYPE_CHECKING:
    from teleport_auth.daemon import RunningTbot

# GitHub gives a job these only with `permissions: id-token: write`; without them
# tbot's GitHub join fails ("ACTIONS_ID_TOKEN_REQUEST_URL environment variable missing").
OIDC_VARIABLES = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")


def check_oidc(env: Mapping[str, str]) -> None:
    """Fail before tbot starts when the job cannot get an OIDC token to join with."""
    missing = [name for name in OIDC_VARIABLES if not env.get(name)]
    if missing:
        raise ActionFailure(
            f"This job cannot get a GitHub OIDC token ({' and '.join(missing)} not set), "
            "which tbot needs to join: give the job `permissions: id-token: write` (in the "
            "workflow or the job; a job that sets `permissions:` gets only what it lists). "
            "Pull requests from forks get no OIDC token at all.",
        )


def _member(key: str) -> Member:
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


def _check_versions(version: TbotVersion, requirements: tuple[Requirement, ...]) -> None:
    for minimum, what in requirements:
        if not version.at_least(minimum):
            wanted = ".".join(map(str, minimum))
            raise ActionFailure(
                f"{what} needs tbot {wanted} or newer; the installed tbot is {version.text}.",
                hint=SETUP_HINT,
            )


def _summary(
    member: Member,
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


def _exported(member: Member, inputs: Inputs) -> str:
    if not member.exports:
        return "none"
    if inputs.disable_env_vars:
        return "no (disable-env-vars)"
    return ", ".join(f"`{name}`" for name in member.exports)


def run(env: MutableMapping[str, str], member_key: str = "") -> int:
    member = _member(member_key)
    inputs = read_inputs(env)
    plan = member.read(env)
    for message in inputs.notices:
        gha.notice(message)
    for message in (*inputs.warnings, *plan.warnings()):
        gha.warning(message)
    temp = _runner_temp(env)
    check_oidc(env)
    consent = telemetry_consent(env)
    if consent.warning:
        gha.warning(consent.warning, title="Anonymous telemetry")
    gha.info(consent_line(consent.enabled))

    # The helper fields, set where tbot and our event both read them.
    env[HELPER_ENV] = member.helper
    env[HELPER_VERSION_ENV] = HELPER_VERSION

    tbot = find_tbot(env)
    version = read_version(tbot, env)
    gha.info(f"Using tbot {version.describe()} ({tbot}).")
    _check_versions(version, member.requirements(plan))

    exporting = bool(member.exports) and not inputs.disable_env_vars
    files = RunnerFiles.open(env, with_env=exporting)
    destination: Path | None = None
    running: RunningTbot | None = None  # a daemon member's tbot, once it is up
    try:
        destination = make_private_dir(temp)
        context = Context(env, member, plan, inputs, tbot, version, destination, consent.enabled)
        settings = plan.background()
        if settings is not None:
            # Only a daemon member loads the daemon code (http.client and all).
            from teleport_auth.background import run_background  # noqa: PLC0415

            published, telemetry, running = run_background(context, settings)
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
        if running is not None:
            from teleport_auth.daemon import stop  # noqa: PLC0415

            with cancel.deferred():
                stop(running)
        if destination is not None and not kept:
            import shutil  # noqa: PLC0415 - only a failed step removes a whole directory

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
