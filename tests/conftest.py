"""Shared fixtures. Study factories live in tests/factories.py so other tests can import them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import make_study


@pytest.fixture(autouse=True, scope="session")
def _own_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test, and every command it runs, sees a home of its own: a command that runs
    the local service itself keeps its state in ~/.crowdkit, which must stay the user's."""
    home = tmp_path_factory.mktemp("home")
    before = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    yield
    if before is None:
        os.environ.pop("HOME", None)
    else:
        os.environ["HOME"] = before


@pytest.fixture
def small_study(tmp_path: Path) -> Path:
    """A 4-task between-participants study with 6 generated units; not yet designed."""
    return make_study(tmp_path / "study")
