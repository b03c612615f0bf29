"""The one-shot mode: tbot runs once, in the foreground, and the step publishes what it wrote."""

from __future__ import annotations

from pathlib import Path

from teleport_auth import gha
from teleport_auth.context import Context
from teleport_auth.family.spec import Published
from teleport_auth.tbot import describe_exit, run_start, step_exit_code, tbot_env
from teleport_auth.tbot_run import TbotFailed, run_tbot


def run_oneshot(context: Context) -> tuple[Published, str]:
    """Run tbot once with telemetry alongside; what to publish and the telemetry phrase."""

    def launch(config_path: Path) -> None:
        result = run_start(
            context.tbot, config_path, tbot_env(context.env), debug=gha.is_debug(context.env)
        )
        gha.debug(f"tbot ran for {result.seconds * 1000:.0f} ms")
        if result.exit_code != 0:
            # tbot's own error may name the join token; a message of ours never does.
            last_error = result.last_error.replace(context.inputs.token, "<join token>")
            detail = f": {last_error}" if last_error else ""
            raise TbotFailed(
                f"tbot {describe_exit(result.exit_code)}{detail}",
                exit_code=step_exit_code(result.exit_code),
                hint="The tbot output is in the `tbot start` group of the step's log.",
            )

    _, telemetry = run_tbot(context, launch)
    return context.plan.publish(context.inputs, context.workdir), telemetry
