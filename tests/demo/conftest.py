"""Fixtures of the demo tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from streetsense.demo.database import EmbeddedPostgres


@pytest.fixture
def demo_dir() -> Iterator[Path]:
    """Return a fresh folder for the demo's data, outside pytest's private tmp tree.

    As root the embedded PostgreSQL runs as another user, who must traverse every parent
    folder; concurrent pytest runs reset /tmp/pytest-of-<user> to mode 0700.
    """
    path = Path(tempfile.mkdtemp(prefix="streetsense-demo-test-"))
    path.chmod(0o755)
    yield path / "demo"
    # a failed test may have killed the demo before it stopped its PostgreSQL
    EmbeddedPostgres(path / "demo").stop_leftover()
    shutil.rmtree(path, ignore_errors=True)
