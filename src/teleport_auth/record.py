"""Value semantics for the step's small records, without dataclasses.

The step's records are plain classes with ``__slots__``: ``dataclasses`` (and
``typing.NamedTuple``) would add milliseconds of imports to every run. A class
that derives from ``Record`` compares, hashes and prints by its slots.
"""

from __future__ import annotations


class Record:
    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record) or type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={value!r}" for name, value in zip(self.__slots__, self._values(), strict=True)
        )
        return f"{type(self).__name__}({fields})"
