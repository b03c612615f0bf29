"""What one submission attempt came to: the shared record, free of HTTP imports.

The sender's thread makes the attempt (connect.py, with requests); the main
thread only reads this record, so it lives apart from the HTTP stack that an
opted-in run loads in the background.
"""

from __future__ import annotations

from teleport_auth.record import Record


class CallResult(Record):
    # A slotted class, not a dataclass: opting in must not add dataclasses'
    # import (inspect, ast...) to the step's main thread.
    __slots__ = ("code", "http_status", "message", "ok", "refused", "retryable", "sent")

    def __init__(
        self,
        *,
        ok: bool,
        code: str,
        message: str,
        http_status: int | None,
        sent: bool,
        retryable: bool,
        refused: bool = False,
    ) -> None:
        self.ok = ok
        # "" on success, else a Connect code name such as "unavailable".
        self.code = code
        # One short line, safe to print.
        self.message = message
        self.http_status = http_status
        # False only when the request certainly never left this machine.
        self.sent = sent
        # Another attempt cannot produce a second event.
        self.retryable = retryable
        # The endpoint itself answered that the call failed (a Connect error or a
        # redirect), so it did not take the event. A gateway's 502/504 is not such
        # an answer: the service behind it may have taken the event.
        self.refused = refused
