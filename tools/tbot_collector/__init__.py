"""A prehog-compatible collector for tbot's anonymous telemetry (a development tool).

``python3 scripts/dev collector`` serves
``prehog.v1alpha.TbotReportingService/SubmitTbotEvent`` over the Connect
protocol (unary, binary or JSON codec), appends every accepted event to a JSONL
file in PostHog's capture shape and can forward the events, in batches, to a
PostHog project of your own. It is meant for local runs (``act``), the demo,
privacy audits, and teams that keep the data themselves: point
``TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS`` at it. It is not part of the action's
runtime and is not shipped with it.

Modules: ``codec`` (the Connect wire format), ``events`` (the PostHog shape),
``storage`` (the JSONL file), ``forwarding`` (PostHog), ``server`` (HTTP),
``collector`` (them together), ``console`` (the log), ``cli``.
"""

from tbot_collector.codec import MAX_BODY, METHOD_PATH
from tbot_collector.collector import Collector, CollectorError, serve

__all__ = ["MAX_BODY", "METHOD_PATH", "Collector", "CollectorError", "serve"]
