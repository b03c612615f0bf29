"""Medians, percentiles and targets."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from steptime.model import BenchError


@dataclass
class Stats:
    median: float
    p90: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise BenchError("no samples")
        if len(values) == 1:
            return cls(values[0], values[0])
        return cls(
            statistics.median(values),
            statistics.quantiles(values, n=10, method="inclusive")[8],
        )


def median_difference(minuend: Sequence[float], subtrahend: Sequence[float]) -> float:
    """The median of paired differences (each pair ran back to back)."""
    return statistics.median(a - b for a, b in zip(minuend, subtrahend, strict=True))


@dataclass
class Target:
    what: str
    value: float
    limit: float
    unit: str = "ms"

    @property
    def passed(self) -> bool:
        return self.value <= self.limit

    def show(self, value: float) -> str:
        if self.unit == "ms":
            return f"{value:.1f} ms"
        if self.unit:
            return f"{value:g} {self.unit}"
        return f"{value:.2f}"


def verdict(value: float, limit: float) -> str:
    return "PASS" if value <= limit else "FAIL"
