"""The one-shot members: run tbot once, in the foreground, and publish what it wrote."""

from __future__ import annotations

import shutil

from teleport_auth import cancel, gha
from teleport_auth.family.spec import Published
from teleport_auth.gha import ActionFailure
from teleport_auth.run_context import (
    Context,
    abandon_telemetry,
    finish_telemetry,
    make_private_dir,
    start_telemetry,
    write_private_config,
)
from teleport_auth.tbot import describe_exit, run_start, step_exit_code, tbot_env


def run_oneshot(context: Context) -> tuple[Published, str]:
    """Write the config, run tbot once with telemetry alongside; what to publish."""
    config = context.config()
    config_dir = make_private_dir(context.workdir.parent)
    reporter, telemetry = start_telemetry(context, config)
    try:
        config_path = write_private_config(config, config_dir)
        result = run_start(
            context.tbot, config_path, tbot_env(context.env), debug=gha.is_debug(context.env)
        )
    except BaseException:
        abandon_telemetry(reporter)
        raise
    finally:
        # The config holds the token and is only needed while tbot runs.
        with cancel.deferred():
            shutil.rmtree(config_dir, ignore_errors=True)

    telemetry = finish_telemetry(reporter, telemetry, tbot_succeeded=result.exit_code == 0)
    gha.debug(f"tbot ran for {result.seconds * 1000:.0f} ms")
    if result.exit_code != 0:
        # tbot's own error may name the join token; a message of ours never does.
        last_error = result.last_error.replace(context.inputs.token, "<join token>")
        detail = f": {last_error}" if last_error else ""
        raise ActionFailure(
            f"tbot {describe_exit(result.exit_code)}{detail}",
            exit_code=step_exit_code(result.exit_code),
            hint="The tbot output is in the `tbot start` group of the step's log.",
        )
    return context.member.publish(context.own, context.inputs, context.workdir), telemetry
