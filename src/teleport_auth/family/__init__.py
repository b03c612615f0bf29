"""The family of actions: one description per member, one shared step.

Adding a member means one small module here (a ``read`` function returning
its plan: its config entry and what it publishes), a line in ``_WHERE`` and
its folder with a generated action.yml (``scripts/gen_actions``). A run
imports only its own member's module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from teleport_auth.family.spec import Member

# Member key -> (module in this package, name of its description there), in the
# order the documentation lists them.
_WHERE = {
    "auth": ("auth", "MEMBER"),
    "k8s": ("k8s", "MEMBER"),
    "application": ("application", "MEMBER"),
    "database-tunnel": ("tunnels", "DATABASE_TUNNEL"),
    "application-tunnel": ("tunnels", "APPLICATION_TUNNEL"),
    "application-proxy": ("tunnels", "APPLICATION_PROXY"),
}
KEYS = tuple(_WHERE)


def member(key: str) -> Member | None:
    """The member called ``key`` (``auth`` when empty), or None."""
    where = _WHERE.get(key or "auth")
    if where is None:
        return None
    module, name = where
    found: Member = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return found


def __getattr__(name: str) -> tuple[Member, ...]:
    # MEMBERS, every description, for the generator, the docs and the tests.
    if name == "MEMBERS":
        return tuple(m for m in map(member, KEYS) if m is not None)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
