"""Hostile requests to the traffic forecasts (GET /v1/traffic/segments/{id}/forecast and the
DATEX II /v1/traffic/datex2/forecast): a bad horizon gets a 400 problem naming the parameter,
an oversized or injected id a 404 that echoes at most 64 of its characters, and the stored
forecasts are untouched."""

from __future__ import annotations

from xml.etree import ElementTree

import psycopg
import pytest

from tests.feeds.conftest import Server

PROBLEM = "application/problem+json"
PATH = "/v1/traffic/segments/ring-eb/forecast"
DATEX2 = "/v1/traffic/datex2/forecast"
PATHS = (PATH, DATEX2)
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
BASIC_DATA = "{http://datex2.eu/schema/3/roadTrafficData}basicData"


@pytest.mark.parametrize(
    "horizon",
    ["0", "-5", "7", "125", "180", "9" * 400, "1e3", "60.5", "abc", "", "\uff16\uff10",
     "60;DROP TABLE forecasts", "60' OR '1'='1"],
    ids=["zero", "negative", "not a multiple of 5", "beyond 120", "beyond the window",
         "400 digits", "exponent", "fraction", "word", "empty", "full-width digits",
         "statement", "quote"],
)  # fmt: skip
@pytest.mark.parametrize("path", PATHS, ids=["json", "datex2"])
def test_a_bad_horizon_is_a_bad_parameter(busy_feeds: Server, path: str, horizon: str) -> None:
    with busy_feeds.client() as client:
        response = client.get(path, params={"horizon": horizon})
    assert response.status_code == 400, response.text[:300]
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["errors"][0]["parameter"] == "horizon"
    assert "DROP" not in response.text and "9" * 50 not in response.text


def test_the_horizon_bounds_are_served(busy_feeds: Server) -> None:
    with busy_feeds.client() as client:
        shortest = client.get(PATH, params={"horizon": "5"}).json()
        longest = client.get(PATH, params={"horizon": "120"}).json()
    assert [s["minutes_ahead"] for s in shortest["steps"]] == [5]
    # the busy city's flow run ends two hours ahead: steps stop where the forecast does
    assert 0 < len(longest["steps"]) <= 24
    assert longest["horizon_min"] == 120


@pytest.mark.parametrize(
    "segment_id",
    ["x" * 10_000, "ring-eb' OR '1'='1", "ring-eb;DROP TABLE forecasts", "%00ring-eb",
     "..%2F..%2Fhealth"],
    ids=["10,000 characters", "quote", "statement", "nul", "traversal"],
)  # fmt: skip
def test_an_oversized_or_injected_segment_id_is_unknown(
    busy_feeds: Server, busy_city: psycopg.Connection, segment_id: str
) -> None:
    before = busy_city.execute("SELECT count(*) FROM forecasts").fetchone()
    with busy_feeds.client() as client:
        response = client.get(f"/v1/traffic/segments/{segment_id}/forecast")
    assert response.status_code in (404, 414), response.text[:300]
    assert response.headers["content-type"] == PROBLEM
    assert len(response.content) < 2_000  # never the whole id back
    assert busy_city.execute("SELECT count(*) FROM forecasts").fetchone() == before


@pytest.mark.parametrize("path", PATHS, ids=["json", "datex2"])
def test_the_forecasts_are_read_only(busy_feeds: Server, path: str) -> None:
    with busy_feeds.client() as client:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            response = client.request(method, path, content=b"<x/>")
            assert response.status_code == 405, method
            assert response.headers["content-type"] == PROBLEM


def test_many_horizons_in_one_request_are_refused_or_one_is_used(busy_feeds: Server) -> None:
    # a client repeating the parameter gets one answer of one horizon, never a 500
    with busy_feeds.client() as client:
        response = client.get(PATH + "?" + "&".join(["horizon=5"] * 500))
        datex2 = client.get(DATEX2 + "?" + "&".join(["horizon=5"] * 500))
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.json()["horizon_min"] == 5
    assert datex2.status_code in (200, 400)
    if datex2.status_code == 200:
        root = ElementTree.fromstring(datex2.content)
        profiles = [q for q in root.iter() if q.get(XSI_TYPE) == "roa:TimeProfiledPhysicalQuantity"]
        assert profiles and all(len(q.findall(BASIC_DATA)) == 1 for q in profiles)


def test_an_oversized_query_is_refused_without_echo(busy_feeds: Server) -> None:
    with busy_feeds.client() as client:
        response = client.get(DATEX2, params={"horizon": "60", "x": "<y>" * 5_000})
    # an unknown parameter is ignored, as everywhere; the answer never carries it back
    assert response.status_code in (200, 414, 431)
    assert b"<y>" not in response.content


def test_unknown_parameters_do_not_change_the_document(busy_feeds: Server) -> None:
    # so they cannot be used to make the server render a fresh document per request
    with busy_feeds.client() as client:
        plain = client.get(DATEX2)
        noisy = client.get(DATEX2, params={"cache-buster": "1", "format": "csv"})
    assert plain.status_code == noisy.status_code == 200
    assert plain.headers["etag"] == noisy.headers["etag"]
