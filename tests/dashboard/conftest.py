"""One database filled by the simulator for every dashboard test, and the app under test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from streamlit.testing.v1 import AppTest

from analytics.job import run_once
from harness import simcity
from streetsense.config import load_settings, with_overrides

ENTRY = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


@dataclass(frozen=True, slots=True)
class City:
    """The filled database and what went into it."""

    url: str
    filled: simcity.Filled


@pytest.fixture(scope="session")
def city(admin_url: str, template_database: str) -> Iterator[City]:
    """Return a database holding three simulated days, rollups, device state and forecasts."""
    name = f"ss_dash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_database)
            )
        )
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    settings = with_overrides(
        load_settings(None, environ={}), database={"url": url, "timescale": "off"}
    )
    with psycopg.connect(url) as conn:
        filled = simcity.fill(conn, settings, simcity.bucket_now())
        conn.autocommit = True
        run_once(conn)
    yield City(url, filled)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def app(city: City, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], AppTest]:
    """Return a function that runs the dashboard on one page against the city database."""
    monkeypatch.setenv("STREETSENSE_DATABASE_URL", city.url)
    monkeypatch.setenv("STREETSENSE_CITY_TIMEZONE", simcity.TIMEZONE)
    monkeypatch.delenv("STREETSENSE_CONFIG", raising=False)

    return run_page


def run_page(page: str) -> AppTest:
    """Run the dashboard on one page (database and zone from the environment), unexcepted."""
    at = AppTest.from_file(str(ENTRY), default_timeout=60)
    at.run()
    if page != "city_now":
        at.switch_page(f"app_pages/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def query(url: str, text: str, params: object = None) -> list[tuple[Any, ...]]:
    """Run one independent check query against the city database."""
    with psycopg.connect(url) as conn:
        return list(conn.execute(text, params).fetchall())  # type: ignore[arg-type]
