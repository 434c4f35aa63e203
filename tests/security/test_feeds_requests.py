"""Hostile requests to the open feeds: absurd parameters and headers get a 400 problem document,
never a 500, and nothing the client sends is echoed back as if it were ours."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg
import pytest

from feeds.app import create_app
from streetsense.config import Settings, with_overrides
from streetsense.errors import ConfigError
from tests.feeds.conftest import Server, feeds_settings

PROBLEM = "application/problem+json"


def _assert_problem(response: httpx.Response, status: int, hint: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == PROBLEM
    assert hint in response.json()["detail"], response.json()


@pytest.mark.parametrize(
    "query",
    [
        "from=0001-01-01T00:00:00%2B01:00&to=0001-01-01T05:00:00Z",
        "to=0001-01-01T00:00:00Z",
        "to=0001-01-01T00:00:00%2B14:00",
        "from=9999-12-31T23:00:00Z&to=9999-12-31T23:59:59-05:00",
        "from=9999-12-31T23:59:59-14:00",
        "to=9999-12-31T23:59:59.999999Z",
    ],
)
def test_history_at_the_ends_of_the_calendar_is_a_bad_range(feeds: Server, query: str) -> None:
    with feeds.client() as client:
        response = client.get(f"/v1/parking/lots/harbour/history?{query}")
    _assert_problem(response, 400, "the range must lie between")


def test_a_range_too_long_for_any_resolution_is_refused(feeds: Server) -> None:
    # Found by the fuzzer (bench/feeds_fuzz.py): no resolution fitted 26 years, and the search
    # for the finest one that did raised StopIteration (a 500).
    with feeds.client() as client:
        response = client.get("/v1/parking/lots/harbour/history?from=2000-01-01T00:00:00Z")
    _assert_problem(response, 400, "at resolution 1d the range may span at most 3660 days")


@pytest.mark.parametrize(
    "last_event_id",
    ["9" * 4_301, "1" * 21, "\u00b9\u00b2", "12 34", "-5", "0x10"],
    ids=["4301 digits", "21 digits", "superscript digits", "space", "negative", "hex"],
)
def test_a_last_event_id_that_we_never_sent_is_refused(feeds: Server, last_event_id: str) -> None:
    with (
        feeds.client() as client,
        client.stream(
            "GET", "/v1/parking/stream", headers={"Last-Event-ID": last_event_id.encode()}
        ) as response,
    ):
        response.read()
    _assert_problem(response, 400, "Last-Event-ID")


def test_a_forged_host_is_never_echoed_nor_cached(
    city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    server = start_server(feeds_settings(settings, public_url="https://data.city.example/"))
    path = "/ltaodataservice/CarParkAvailabilityv2"
    with server.client() as client:
        forged = client.get(path, headers={"Host": "evil.example"})
        honest = client.get(path)
    for response in (forged, honest):
        assert response.status_code == 200
        assert "evil.example" not in response.text
        assert response.json()["odata.metadata"] == (
            "https://data.city.example/ltaodataservice/$metadata#CarParkAvailability"
        )
    assert forged.headers["etag"] == honest.headers["etag"]  # one answer, whatever the Host


def test_without_a_public_url_links_are_relative(feeds: Server) -> None:
    with feeds.client() as client:
        body = client.get(
            "/ltaodataservice/CarParkAvailabilityv2", headers={"Host": "evil.example"}
        ).json()
    assert body["odata.metadata"] == "/ltaodataservice/$metadata#CarParkAvailability"


@pytest.mark.parametrize("url", ["data.city.example", "ftp://x", "https://x/?a=1", "https://"])
def test_a_public_url_that_is_no_url_stops_the_feeds(url: str) -> None:
    with pytest.raises(ConfigError, match=r"feeds\.public_url"):
        create_app(with_overrides(Settings(), feeds={"public_url": url}))
