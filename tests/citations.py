"""The tests the documents cite as proof of a promise.

A citation is a test file, or a test in it, named in backticks in SECURITY.md,
README.md, ARCHITECTURE.md or docs/*.md: `test_x.py`, `tests/test_x.py` or
`test_x.py::test_name`. tests/test_docs.py checks each is collected and not
marked to skip; conftest turns a cited test's skip into a failure under CI.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_CITATION = re.compile(r"`(?:tests/)?(test_\w+\.py|conftest\.py)(?:::(\w+))?`")


def documents() -> list[Path]:
    named = [REPO / name for name in ("SECURITY.md", "README.md", "ARCHITECTURE.md")]
    return [path for path in named if path.exists()] + sorted((REPO / "docs").glob("*.md"))


@functools.cache
def citations() -> frozenset[tuple[str, str]]:
    """(file, test) pairs; the test is "" where a whole file is cited."""
    found: set[tuple[str, str]] = set()
    for path in documents():
        found.update(_CITATION.findall(path.read_text(encoding="utf-8")))
    return frozenset(found)


def is_cited(file: str, test: str) -> bool:
    """Whether ``test`` (its name without parameters) in tests/``file`` is cited."""
    return (file, "") in citations() or (file, test) in citations()
