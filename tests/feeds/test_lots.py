"""Lot and segment endpoints: fields, filters, paging, formats, problem documents."""

from __future__ import annotations

import csv
import io

from tests.feeds.conftest import Server, assert_problems


def test_lots_carry_availability_and_freshness(feeds: Server) -> None:
    with feeds.client() as client:
        body = client.get("/v1/parking/lots").json()
    lots = {lot["id"]: lot for lot in body["lots"]}
    assert body["total"] == 3
    assert lots["harbour"]["available"] == 300
    assert lots["harbour"]["occupancy"] == 0.25
    assert lots["market"]["available"] == 1
    assert lots["market"]["kind"] == "on_street"
    assert lots["market"]["stale"] is False
    assert lots["station"]["available"] is None  # no sensor has reported yet
    assert lots["station"]["stale"] is True
    assert set(lots["harbour"]["forecast"]) >= {"available_15m", "available_30m", "available_60m"}


def test_lot_filters(feeds: Server) -> None:
    with feeds.client() as client:
        kind = client.get("/v1/parking/lots", params={"kind": "on_street"}).json()
        free = client.get("/v1/parking/lots", params={"min_free": 2}).json()
        box = client.get("/v1/parking/lots", params={"bbox": "10.21,56.152,10.22,56.158"}).json()
        near = client.get(
            "/v1/parking/lots", params={"near": "56.1572,10.2107", "radius_m": 800}
        ).json()
    assert [lot["id"] for lot in kind["lots"]] == ["market"]
    assert [lot["id"] for lot in free["lots"]] == ["harbour"]
    assert sorted(lot["id"] for lot in box["lots"]) == ["harbour", "market"]
    assert [lot["id"] for lot in near["lots"]] == ["market", "harbour"]  # nearest first
    assert near["lots"][0]["distance_m"] == 0.0
    assert 400 < near["lots"][1]["distance_m"] < 800


def test_lot_pages_link_to_the_next(feeds: Server) -> None:
    with feeds.client() as client:
        first = client.get("/v1/parking/lots", params={"limit": 2}).json()
        second = client.get(first["next"]).json()
    assert [lot["id"] for lot in first["lots"]] == ["harbour", "market"]
    assert [lot["id"] for lot in second["lots"]] == ["station"]
    assert second["next"] is None


def test_one_lot_and_unknown_lot(feeds: Server) -> None:
    with feeds.client() as client:
        lot = client.get("/v1/parking/lots/market")
        missing = client.get("/v1/parking/lots/no-such-lot")
    assert lot.json()["available"] == 1
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    problem = missing.json()
    assert problem["status"] == 404
    assert "/v1/parking/lots" in problem["detail"]


def test_bad_parameters_get_problems_saying_what_to_fix(feeds: Server) -> None:
    cases = {
        "bbox=1,2": "bbox",
        "bbox=10.3,56.1,10.2,56.2": "min before max",
        "bbox=a,b,c,d": "4 comma-separated numbers",
        "near=95,10": "lat in [-90, 90]",
        "near=56,10&radius_m=0": "radius_m",
        "limit=5000": "limit",
        "kind=garage": "kind",
        "format=xml": "format",
    }
    with feeds.client() as client:
        assert_problems(client, "/v1/parking/lots", cases)


def test_bulk_csv_and_geojson(feeds: Server) -> None:
    with feeds.client() as client:
        as_csv = client.get("/v1/parking/lots", params={"format": "csv"})
        as_geojson = client.get("/v1/parking/lots", headers={"Accept": "application/geo+json"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {row["id"]: row["available"] for row in rows} == {
        "harbour": "300",
        "market": "1",
        "station": "",
    }
    collection = as_geojson.json()
    assert as_geojson.headers["content-type"] == "application/geo+json"
    assert collection["type"] == "FeatureCollection"
    harbour = next(f for f in collection["features"] if f["id"] == "harbour")
    assert harbour["geometry"] == {"type": "Point", "coordinates": [10.212, 56.153]}
    assert harbour["properties"]["available"] == 300


def test_lta_datamall_twin(feeds: Server) -> None:
    with feeds.client() as client:
        body = client.get("/ltaodataservice/CarParkAvailabilityv2").json()
        skipped = client.get("/ltaodataservice/CarParkAvailabilityv2", params={"$skip": 1}).json()
    records = {r["CarParkID"]: r for r in body["value"]}
    assert set(records) == {"harbour", "market"}  # no count yet: left out
    harbour = records["harbour"]
    assert harbour["Location"] == "56.153 10.212"
    assert harbour["AvailableLots"] == 300
    assert harbour["LotType"] == "C"
    assert harbour["Development"] == "Harbour Garage"
    assert harbour["Area"] == "harbour"
    assert harbour["TotalLots"] == 400
    assert harbour["Stale"] is False
    assert [r["CarParkID"] for r in skipped["value"]] == ["market"]


def test_segments_list_and_detail(feeds: Server) -> None:
    with feeds.client() as client:
        listing = client.get("/v1/traffic/segments", params={"bbox": "10.18,56.16,10.21,56.17"})
        one = client.get("/v1/traffic/segments/ring-eb")
        missing = client.get("/v1/traffic/segments/nope")
        as_csv = client.get("/v1/traffic/segments", params={"format": "csv"})
    assert [s["id"] for s in listing.json()["segments"]] == ["ring-eb"]
    assert one.json()["congestion"] == "unknown"  # no flow yet
    assert missing.status_code == 404
    assert as_csv.text.splitlines()[0].startswith("id,name,direction")
