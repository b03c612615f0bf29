"""What one submission attempt came to: the shared record, free of HTTP imports.

The sender's thread makes the attempt (connect.py, with requests); the main
thread only reads this record, so it lives apart from the HTTP stack that an
opted-in run loads in the background.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallResult:
    ok: bool
    # "" on success, else a Connect code name such as "unavailable".
    code: str
    # One short line, safe to print.
    message: str
    http_status: int | None
    # False only when the request certainly never left this machine.
    sent: bool
    # Another attempt cannot produce a second event.
    retryable: bool
    # The endpoint itself answered that the call failed (a Connect error or a
    # redirect), so it did not take the event. A gateway's 502/504 is not such
    # an answer: the service behind it may have taken the event.
    refused: bool = False
