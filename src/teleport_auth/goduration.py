"""Go's ``time.ParseDuration``, exactly: what tbot accepts for ``certificate_ttl``.

A port of the algorithm rather than a regular expression, so that the edges
agree too: the int64 overflow (``2562047h47m16.854775807s`` is the largest
duration), fractions rounded as Go rounds them, ``µs``/``μs``, a bare ``0``.
"""

from __future__ import annotations

_NS_PER = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # U+00B5 micro sign
    "\u03bcs": 1_000,  # U+03BC Greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_LIMIT = 1 << 63
_DIGITS = "0123456789"


class DurationError(ValueError):
    """Go would return an error for this string."""


def _leading_int(s: str) -> tuple[int, str]:
    value = 0
    i = 0
    while i < len(s) and s[i] in _DIGITS:
        if value > _LIMIT // 10:
            raise DurationError("overflow")
        value = value * 10 + int(s[i])
        if value > _LIMIT:
            raise DurationError("overflow")
        i += 1
    return value, s[i:]


def _leading_fraction(s: str) -> tuple[int, float, str]:
    # Digits past what fits are skipped, not an error (Go's leadingFraction).
    value = 0
    scale = 1.0
    overflow = False
    i = 0
    while i < len(s) and s[i] in _DIGITS:
        if not overflow:
            if value > (_LIMIT - 1) // 10:
                overflow = True
            else:
                nxt = value * 10 + int(s[i])
                if nxt > _LIMIT:
                    overflow = True
                else:
                    value = nxt
                    scale *= 10
        i += 1
    return value, scale, s[i:]


def parse_duration_ns(text: str) -> int:
    """Nanoseconds, as Go's ``time.ParseDuration(text)``; raises DurationError."""
    s = text
    negative = False
    if s and s[0] in "+-":
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise DurationError("invalid duration")
    total = 0
    while s:
        if s[0] != "." and s[0] not in _DIGITS:
            raise DurationError("invalid duration")
        before = len(s)
        whole, s = _leading_int(s)
        has_whole = len(s) != before
        frac, scale, has_frac = 0, 1.0, False
        if s.startswith("."):
            s = s[1:]
            before = len(s)
            frac, scale, s = _leading_fraction(s)
            has_frac = len(s) != before
        if not has_whole and not has_frac:
            raise DurationError("invalid duration")
        i = 0
        while i < len(s) and s[i] != "." and s[i] not in _DIGITS:
            i += 1
        if i == 0:
            raise DurationError("missing unit")
        unit = _NS_PER.get(s[:i])
        if unit is None:
            raise DurationError(f"unknown unit {s[:i]!r}")
        s = s[i:]
        if whole > _LIMIT // unit:
            raise DurationError("overflow")
        whole *= unit
        if frac > 0:
            # float64 arithmetic and truncation toward zero, as Go's uint64(float64(...)).
            whole += int(float(frac) * (float(unit) / scale))
            if whole > _LIMIT:
                raise DurationError("overflow")
        total += whole
        if total > _LIMIT:
            raise DurationError("overflow")
    if negative:
        return -total
    if total > _LIMIT - 1:
        raise DurationError("overflow")
    return total
