"""A fresh deployment: every page renders on an empty database and says there is no data."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.data import pool
from harness.services import free_port
from tests.dashboard.conftest import ENTRY

PAGES = ("city_now", "parking", "traffic", "forecast_quality", "devices", "export")


def test_pages_render_on_an_empty_database(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREETSENSE_DATABASE_URL", database_url)
    at = AppTest.from_file(str(ENTRY), default_timeout=60)
    at.run()
    for page in PAGES:
        if page != "city_now":
            at.switch_page(f"app_pages/{page}.py")
            at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        shown = {m.label: m.value for m in at.metric}
        if page == "city_now":
            assert shown == {"Spaces free": "0", "Lots above 90%": "0",
                             "Segments congested": "0", "Sensors offline": "0"}  # fmt: skip
        elif page in ("parking", "traffic", "forecast_quality", "export"):
            assert at.info, f"{page}: an empty page should say what is missing"


def test_an_unreachable_database_is_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "STREETSENSE_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    )
    monkeypatch.setenv("STREETSENSE_DATABASE_CONNECT_TIMEOUT_S", "1")
    at = AppTest.from_file(str(ENTRY), default_timeout=60)
    try:
        at.run()
    finally:
        pool.clear()  # closes the pool, which would keep retrying in the background
    assert not at.exception
    [error] = at.error
    assert "cannot reach PostgreSQL" in error.value
    assert "STREETSENSE_DATABASE_URL" in error.value


def test_a_missing_database_setting_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREETSENSE_DATABASE_URL", raising=False)
    monkeypatch.delenv("STREETSENSE_CONFIG", raising=False)
    monkeypatch.chdir("/")
    at = AppTest.from_file(str(ENTRY), default_timeout=60)
    at.run()
    assert not at.exception
    assert "STREETSENSE_DATABASE_URL" in at.error[0].value
