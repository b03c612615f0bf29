"""A stand-in for the tbot binary; see tbot.py for its behaviour and knobs."""

from .install import TBOT_SCRIPT, install_standin

__all__ = ["TBOT_SCRIPT", "install_standin"]
