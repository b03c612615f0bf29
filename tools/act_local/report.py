"""The summary printed at the end: per job its outcome, our steps' outputs, its events."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from act_local.actlog import Job

OUTCOMES = {"success": "succeeded", "failure": "FAILED", "skipped": "skipped"}


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def event_lines(event: dict[str, Any]) -> list[str]:
    """One event: its name and helper, then every property (and its id and time)."""
    props = event.get("properties") or {}
    lines = [f"    event {event.get('event', '?')} (helper {props.get('tbot.helper', '-')})"]
    for name in ("distinct_id", "timestamp"):
        if name in event:
            lines.append(f"      {name}: {_value(event[name])}")
    lines += [f"      {name}: {_value(value)}" for name, value in props.items()]
    return lines


def summary(jobs: Iterable[Job], events: list[dict[str, Any]], collector_url: str) -> str:
    jobs = list(jobs)
    lines = ["", "=" * 72, "Summary (python3 scripts/dev act)"]
    if not jobs:
        lines.append("  act ran no job (see its messages above)")
    unclaimed = list(events)
    for job in jobs:
        outcome = OUTCOMES.get(job.result or "", job.result or "did not finish")
        lines.append(f"Job {job.name}: {outcome}")
        if not job.steps:
            lines.append("  (no step of this job uses teleport-actions/auth)")
        for step in job.steps.values():
            lines.append(f"  step {'/'.join(step.ids)} ({step.name}): uses {step.uses}")
            if not step.outputs:
                lines.append("    (no outputs)")
            lines += [
                f"    output {name} = {value if value else '(empty)'}"
                for name, value in step.outputs.items()
            ]
        # Each event is this job's if the job printed its id (the step logs it when sending).
        mine = [e for e in unclaimed if job.printed(str(e.get("distinct_id", "\0")))]
        unclaimed = [e for e in unclaimed if e not in mine]
        lines.append(f"  events the collector received from this job: {len(mine)}")
        for event in mine:
            lines += event_lines(event)
    if unclaimed:
        lines.append(f"Events not traced to a job: {len(unclaimed)}")
        for event in unclaimed:
            lines += event_lines(event)
    lines.append(f"Collector: {collector_url}, {len(events)} event(s) in all")
    return "\n".join(lines)
