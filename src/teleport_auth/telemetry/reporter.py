"""The step's side of telemetry: show the event, send it alongside tbot, report the outcome.

Only an opted-in run imports this module, and it stays cheap on purpose: the
event is built as plain data and printed with the standard library, and the
sender's thread loads protobuf, requests and truststore while tbot runs.
Importing it loads none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from teleport_auth.tbot_schema import BotConfig

from teleport_auth import gha
from teleport_auth.telemetry import METHOD_PATH
from teleport_auth.telemetry.endpoint import EndpointRejected, endpoint_host, resolve_endpoint
from teleport_auth.telemetry.event import build_event, event_json
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
        """Wait (bounded) for the submission; log the outcome; return a summary phrase.

        The phrase is plain text for a Markdown table cell: no line breaks, no pipes.
        """
        if not tbot_succeeded:
            # As with tbot's own event, a run whose tbot fails to join is still
            # counted: the first attempt goes out, but nothing is retried.
            self._submission.stop_retrying()
        self._submission.wait(GRACE_SECONDS)
        # The step moves on now: no attempt may begin after this point, so the
        # outcome read after it is final as to whether the event left.
        self._submission.cancel()
        outcome = self._submission.wait(0)
        if outcome.delivery == "confirmed":
            gha.debug(
                f"Anonymous telemetry event {self._distinct_id} sent to {self._host} "
                f"in {outcome.duration * 1000:.0f} ms ({outcome.attempts} attempt(s))."
            )
            return f"on: event sent to {self._host}"
        gha.warning(describe_failure(outcome), title="Anonymous telemetry")
        if outcome.delivery == "not_sent":
            return f"on: not sent to {self._host} (see the warning above)"
        if outcome.delivery == "refused":
            return f"on: not accepted by {self._host} (see the warning above)"
        return f"on: may have reached {self._host}, unconfirmed (see the warning above)"


def start(
    tbot_version: str,
    config: BotConfig,
    env: Mapping[str, str],
    *,
    helper: str,
    helper_version: str,
) -> Reporter | str:
    """Build and print the event, then start sending it. A string means nothing is sent, and why.

    ``env`` is read for the endpoint override only.
    """
    try:
        base_url = resolve_endpoint(env)
    except EndpointRejected as exc:
        gha.warning(f"{exc} Anonymous telemetry is not sent.", title="Anonymous telemetry")
        return "on: not sent (endpoint rejected, see the warning above)"
    event = build_event(
        tbot_version=tbot_version, config=config, helper=helper, helper_version=helper_version
    )
    printed = event_json(event)
    with gha.group("Anonymous telemetry event"):
        gha.info(f"POST {base_url}{METHOD_PATH}")
        gha.info(printed)
    gha.info(
        "This step sends the event itself and runs tbot with TELEPORT_ANONYMOUS_TELEMETRY=0, "
        "so tbot's own telemetry line below says it is not enabled: each run is counted once."
    )
    # The sender encodes exactly the text just printed.
    submission = Submission(base_url=base_url, event_json=printed)
    submission.start()
    return Reporter(submission, endpoint_host(base_url), event["distinct_id"])
