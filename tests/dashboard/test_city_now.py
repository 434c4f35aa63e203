"""City now as a planner reads it: lists ordered by what they show, local times, a map base."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from harness import simcity
from harness.services import free_port
from tests.dashboard.conftest import City, query

Run = Callable[[str], AppTest]


def captions(at: AppTest) -> str:
    """Return every caption of the page, joined."""
    return "\n".join(caption.value for caption in at.caption)


def test_slowest_roads_are_ordered_by_the_share_of_the_limit_they_show(
    app: Run, city: City
) -> None:
    at = app("city_now")
    roads = at.dataframe[1].value
    assert list(roads.columns) == ["name", "of_limit", "speed", "bucket"]
    assert list(roads["of_limit"]) == sorted(roads["of_limit"])
    expected = query(
        city.url,
        "SELECT s.name, round(100 * n.mean_speed / s.speed_limit_kmh) FROM segment_now n "
        "JOIN segments s USING (segment_id) WHERE n.mean_speed IS NOT NULL "
        "ORDER BY n.mean_speed / s.speed_limit_kmh, s.name",
    )
    assert [(r.name, r.of_limit) for r in roads.itertuples()] == [
        (name, float(share)) for name, share in expected
    ]
    first = roads.iloc[0]
    limit = query(city.url, "SELECT speed_limit_kmh FROM segments WHERE name = %s",
                  (first["name"],))[0][0]  # fmt: skip
    assert first["speed"].endswith(f" / {limit:.0f} km/h")


def test_times_are_shown_in_the_city_zone_and_the_page_says_which(app: Run) -> None:
    at = app("city_now")
    assert f"Times in {simcity.TIMEZONE}" in captions(at)
    for table in at.dataframe:
        for column in table.value.select_dtypes("datetimetz"):
            assert str(table.value[column].dt.tz) == simcity.TIMEZONE


class _Style(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"version": 8, "sources": {}, "layers": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        """Quiet."""


@pytest.fixture
def style_server() -> Iterator[str]:
    """A tile server's style document on loopback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Style)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/style.json"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_the_map_draws_the_registrys_areas_and_names_the_setting_when_tiles_fail(
    app: Run, city: City, style_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/style.json"
    monkeypatch.setenv("STREETSENSE_DASHBOARD_MAP_STYLE", dead)
    at = app("city_now")
    [deck] = at.get("deck_gl_json_chart")
    spec = json.loads(deck.proto.json)
    assert spec["mapStyle"] == dead
    layers = {layer["id"]: layer for layer in spec["layers"] if "id" in layer}
    areas = query(city.url, "SELECT DISTINCT area FROM lots UNION SELECT area FROM segments")
    assert sorted(row["area"] for row in layers["areas"]["data"]) == sorted(a for (a,) in areas)
    assert all(len(row["outline"]) >= 4 for row in layers["areas"]["data"])
    assert "did not answer" in captions(at)
    assert "dashboard.map_style" in captions(at)

    monkeypatch.setenv("STREETSENSE_DASHBOARD_MAP_STYLE", style_server)
    at = app("city_now")
    assert "dashboard.map_style" not in captions(at)
