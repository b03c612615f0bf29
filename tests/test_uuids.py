"""The step's own v4 UUIDs (directory names, file-command delimiters) are real v4 UUIDs."""

from __future__ import annotations

import uuid

import pytest

from teleport_auth.uuids import uuid4

pytestmark = pytest.mark.step


def test_a_version_4_rfc_4122_uuid_in_canonical_form() -> None:
    seen = set()
    for _ in range(200):
        text = uuid4()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 200
