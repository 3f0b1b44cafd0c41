"""Shared fixtures. Study factories live in tests/factories.py so other tests can import them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import make_study


@pytest.fixture
def small_study(tmp_path: Path) -> Path:
    """A 4-task between-participants study with 6 generated units; not yet designed."""
    return make_study(tmp_path / "study")
