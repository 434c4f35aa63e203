"""Shared reporting for reliability tests: figures go to the log and to record_property."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

log = logging.getLogger("tests.reliability")


@pytest.fixture
def report(record_property: pytest.RecordProperty) -> Callable[..., None]:
    """Return a function that records a test's figures (JUnit properties and the log)."""

    def record(name: str, **figures: Any) -> None:
        for key, value in figures.items():
            record_property(f"{name}_{key}", value)
        log.info("%s: %s", name, ", ".join(f"{k}={v}" for k, v in figures.items()))

    return record
