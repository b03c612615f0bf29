"""The family of actions: one description per member, one shared step.

Adding a member means one small module here (its inputs, its config entry,
what it publishes) and its folder with a generated action.yml.
"""

from __future__ import annotations

from typing import Any

from teleport_auth.family import application, auth, k8s, tunnels
from teleport_auth.family.spec import Member

MEMBERS: tuple[Member[Any], ...] = (
    auth.MEMBER,
    k8s.MEMBER,
    application.MEMBER,
    tunnels.DATABASE_TUNNEL,
    tunnels.APPLICATION_TUNNEL,
    tunnels.APPLICATION_PROXY,
)


def member(key: str) -> Member[Any] | None:
    """The member called ``key`` (``auth`` when empty), or None."""
    wanted = key or "auth"
    return next((m for m in MEMBERS if m.key == wanted), None)
