"""Fixtures of the alert tests: a migrated database with the test city, rules from text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import psycopg
import pytest

from alerts.engine import Report, run_once
from alerts.rules import RuleSet, parse_rules
from tests.alerts.support import load_city


@pytest.fixture
def city(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """Return a connection to a database holding the test city."""
    load_city(db)
    db.commit()
    yield db


Evaluate = Callable[[str, datetime], Report]


@pytest.fixture
def evaluate(database_url: str) -> Iterator[Callable[[RuleSet, datetime], Report]]:
    """Return a function that runs one evaluation of some rules at a time, on its own connection."""
    with psycopg.connect(database_url, autocommit=True) as conn:

        def run(rules: RuleSet, now: datetime) -> Report:
            return run_once(conn, rules, now, "UTC")

        yield run


def rules(text: str) -> RuleSet:
    """Parse rules from text (without the defaults)."""
    return parse_rules(text, "test.toml")
