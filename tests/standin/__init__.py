"""A stand-in for the tbot binary; see tbot.py for its behaviour and knobs.

``install_standin`` and ``TBOT_SCRIPT`` are loaded on first use: the stand-in's
own modules live in this package, and every tbot run should not pay for the
installer's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .install import TBOT_SCRIPT, install_standin

__all__ = ["TBOT_SCRIPT", "install_standin"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import install

        return getattr(install, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
