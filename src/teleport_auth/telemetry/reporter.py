"""The step's side of telemetry: show the event, send it alongside tbot, report the outcome.

Only an opted-in run imports this module (and with it protobuf and requests).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from teleport_auth import gha
from teleport_auth.telemetry import METHOD_PATH
from teleport_auth.telemetry.connect import user_agent
from teleport_auth.telemetry.endpoint import EndpointRejected, endpoint_host, resolve_endpoint
from teleport_auth.telemetry.event import build_event, event_as_dict
from teleport_auth.telemetry.sender import Submission, describe_failure

# How long the step may wait for the submission once tbot has exited. The
# promise is "at most 1 s added"; the rest of that second is left for the
# step's own exit, so a hung endpoint stays within it (benchmarks/step_time.py).
GRACE_SECONDS = 0.9


class Reporter:
    def __init__(self, submission: Submission, host: str, distinct_id: str) -> None:
        self._submission = submission
        self._host = host
        self._distinct_id = distinct_id

    def abandon(self) -> None:
        """The step failed before tbot finished: start nothing more."""
        self._submission.cancel()

    def finish(self, *, tbot_succeeded: bool) -> str:
        """Wait (bounded) for the submission; log the outcome; return a summary phrase."""
        if not tbot_succeeded:
            # No event is sent after the fact for a run whose tbot failed.
            self._submission.cancel()
        outcome = self._submission.wait(GRACE_SECONDS)
        # The step moves on now: no retry may start after this point.
        self._submission.cancel()
        if outcome.status == "sent":
            gha.debug(
                f"Anonymous telemetry event {self._distinct_id} sent to {self._host} "
                f"in {outcome.duration * 1000:.0f} ms ({outcome.attempts} attempt(s))."
            )
            return f"on: event sent to `{self._host}`"
        if outcome.status == "cancelled":
            gha.debug("Anonymous telemetry event not sent: tbot failed before it went out.")
            return "on: not sent (tbot failed first)"
        gha.warning(describe_failure(outcome), title="Anonymous telemetry")
        return f"on: not sent to `{self._host}` (see the warning above)"


def start(tbot_version: str, config: Mapping[str, Any], env: Mapping[str, str]) -> Reporter | str:
    """Build and print the event, then start sending it. A string means nothing is sent, and why."""
    try:
        base_url = resolve_endpoint(env)
    except EndpointRejected as exc:
        gha.warning(f"{exc} Anonymous telemetry is not sent.", title="Anonymous telemetry")
        return "on: not sent (endpoint rejected, see the warning above)"
    request = build_event(tbot_version=tbot_version, config=config, env=env)
    with gha.group("Anonymous telemetry event"):
        gha.info(f"POST {base_url}{METHOD_PATH}")
        gha.info(json.dumps(event_as_dict(request), indent=2, sort_keys=True))
    gha.info(
        "This step sends the event itself and runs tbot with TELEPORT_ANONYMOUS_TELEMETRY=0, "
        "so tbot's own telemetry line below says it is not enabled: each run is counted once."
    )
    submission = Submission(base_url=base_url, request=request, user_agent=user_agent())
    submission.start()
    return Reporter(submission, endpoint_host(base_url), request.distinct_id)
