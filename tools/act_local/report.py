"""The summary printed at the end: per job its outcome, our steps' outputs, its events;
then GitHub's warnings about inputs, and what the jobs' credentials could reach."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from act_local.actlog import Job
from act_local.workflows import SETUP_REPO, InputWarning

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


def summary(
    jobs: Iterable[Job],
    events: list[dict[str, Any]],
    collector_url: str,
    warnings: Iterable[InputWarning] = (),
) -> str:
    jobs = list(jobs)
    lines = ["", "=" * 72, "Summary (python3 scripts/dev act)"]
    if not jobs:
        lines.append("  act ran no job (see its messages above)")
    unclaimed = list(events)
    for job in jobs:
        outcome = OUTCOMES.get(job.result or "", job.result or "did not finish")
        lines.append(f"Job {job.name}: {outcome}")
        if job.matrix:
            lines.append(
                "  matrix: " + ", ".join(f"{k}={_value(v)}" for k, v in job.matrix.items())
            )
        ours = [s for s in job.steps.values() if s.repo.lower() != SETUP_REPO]
        if not ours:
            lines.append("  (no step of this job uses teleport-actions/auth)")
        for step in ours:
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
    for warning in warnings:
        lines.append(f"Warning (as on GitHub), {warning.where}: {warning.message}")
    return "\n".join(lines)


def standin_note(*, tunnels: bool, backend: str) -> list[str]:
    """What the stand-in's credentials are and what a connection made with them reaches."""
    lines = [
        "Teleport: a stand-in. tbot was the stand-in (tests/standin): it joined no cluster, and "
        "the keys and certificates it wrote came from a throwaway CA made for this run. "
        "kubectl, curl and psql read them and get as far as connecting to the addresses the "
        "workflow named; nothing there trusts them."
    ]
    if tunnels and backend:
        lines.append(
            "Tunnels and the application proxy relayed every connection to "
            f"STANDIN_TBOT_BACKEND ({backend})."
        )
    elif tunnels:
        lines.append(
            "Tunnels and the application proxy accepted every connection and closed it "
            "(set STANDIN_TBOT_BACKEND=host:port to relay them to a server of yours)."
        )
    return lines
