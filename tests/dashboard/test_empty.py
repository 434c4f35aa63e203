"""A fresh deployment: every page renders on an empty database and says there is no data."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

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
