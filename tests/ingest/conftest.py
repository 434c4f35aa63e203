"""Ingest test fixtures: no ingest process outlives its test, even a failed one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.ingest import IngestProcess


@pytest.fixture(autouse=True)
def _no_orphan_ingest() -> Iterator[None]:
    yield
    for process in IngestProcess.started:
        if process.alive():
            process.kill()
    IngestProcess.started.clear()
