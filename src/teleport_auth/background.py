"""The background mode, for the daemon members: tbot keeps running, detached, for the job."""

from __future__ import annotations

import sys
from pathlib import Path

from teleport_auth import cancel, daemon, gha, tbot_log
from teleport_auth.context import Context
from teleport_auth.daemon import RunningTbot
from teleport_auth.end_of_job import State
from teleport_auth.family.spec import BackgroundSettings, Published
from teleport_auth.tbot import tbot_env
from teleport_auth.tbot_run import TbotFailed, run_tbot

_LOG_HINT = (
    "tbot's log is in the `tbot log` group of the step's log, and stays in the file named "
    "by the step's `log-path` output."
)
# The program the end-of-job step runs, as this step sees it (in a container job too).
END_OF_JOB_SCRIPT = Path(__file__).parent.parent / "run_end_of_job.py"


def _wait(running: RunningTbot, timeout_ms: int) -> None:
    if timeout_ms == 0:
        gha.warning(
            "timeout-ms is 0: not waiting for tbot to be ready, so the tunnel may not accept "
            "connections yet."
        )
        if not daemon.wait_config_read(running):
            gha.warning(
                f"tbot's diagnostics service did not answer within "
                f"{daemon.CONFIG_READ_SECONDS:g} s; its configuration file is removed anyway."
            )
        return
    seconds = daemon.wait_ready(running, timeout_ms)
    gha.info(f"tbot is ready after {seconds * 1000:.0f} ms.")


def run_background(
    context: Context, settings: BackgroundSettings
) -> tuple[Published, str, RunningTbot]:
    """Start tbot detached, wait until it is ready; the config is removed once it is.

    Returns what to publish, the telemetry phrase, and the running tbot (which
    the step stops should publishing fail).
    """

    def launch(config_path: Path) -> RunningTbot:
        # A signal in the middle of starting it must not lose track of the process.
        with cancel.deferred():
            running = daemon.start(
                context.tbot,
                config_path,
                tbot_env(context.env),
                diag_addr=settings.diag_addr,
                log_dir=context.workdir,
                debug=gha.is_debug(context.env),
            )
        gha.info(
            f"Started tbot in the background (pid {running.pid}), diagnostics on "
            f"{settings.diag_addr}, log in {running.log_path}."
        )
        try:
            _wait(running, settings.timeout_ms)
        except daemon.NotReady as failure:
            with cancel.deferred():
                daemon.stop(running)
            # As the original: the whole log now, and its path (and the diagnostics
            # address) as outputs of the failed step; the log file is kept.
            tbot_log.show(running.log_path)
            raise TbotFailed(
                failure.message,
                hint=_LOG_HINT,
                outputs={"log-path": str(running.log_path), "diag-addr": settings.diag_addr},
            ) from None
        except BaseException:
            # A cancelled or failed step leaves no tbot behind.
            with cancel.deferred():
                daemon.stop(running)
            raise
        return running

    running, telemetry = run_tbot(context, launch)
    own = context.plan.publish(context.inputs, context.workdir)
    end_of_job = State(context.member.key, running.pid, running.start_ticks, running.log_path)
    outputs = {
        **own.outputs,
        "diag-addr": settings.diag_addr,
        "log-path": str(running.log_path),
        "tbot-pid": str(running.pid),
        # For the member's end-of-job step only (not outputs of the action).
        "end-of-job-script": str(END_OF_JOB_SCRIPT),
        # The interpreter running this step: a later step may put another python3 first.
        "end-of-job-python": sys.executable,
        "end-of-job-state": end_of_job.to_text(),
    }
    rows = (
        *own.rows,
        ("tbot process id", str(running.pid)),
        ("tbot log", str(running.log_path)),
    )
    gha.info(
        f"tbot keeps running in the background (pid {running.pid}) until the job ends, when "
        f"it is stopped and its log shown; its log: {running.log_path}"
    )
    return Published(outputs, rows=rows), telemetry, running
