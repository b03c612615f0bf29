"""Random (version 4) UUIDs as text, without the ``uuid`` module.

``uuid`` imports ``platform`` and more at start-up (a few ms on every run);
a v4 UUID is 122 random bits with fixed version and variant bits, which
``os.urandom`` gives directly (the tests check the result against ``uuid``).
"""

from __future__ import annotations

import os


def uuid4() -> str:
    """A fresh random UUID, e.g. ``0f3c1d52-8a1e-4c7b-9d6e-2b1f0a9c8e7d``."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
