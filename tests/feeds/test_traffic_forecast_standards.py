"""Traffic forecasts in the open standards (issue 13): DATEX II v3.7 carries each segment's
latest bucket and its re-anchored speed and flow forecasts, agreeing with our JSON and with the
bucket the same document carries; every format that carries forecasts says the same numbers."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import psycopg
import pytest

from streetsense.config import Settings
from tests.feeds import test_forecast_anchoring
from tests.feeds.conftest import Server, feeds_settings
from tests.feeds.test_sdm import SDM

# The city whose stored runs start minutes before its live values (its fixtures, shared).
anchored_city = test_forecast_anchoring.anchored_city
anchored_feeds = test_forecast_anchoring.anchored_feeds

PATH = "/v1/traffic/datex2/forecast"
# The DATEX II v3 XML schemas (D2Payload, Common, LocationReferencing, RoadTrafficData and the
# files they import) carry no licence, so they are not in the repository; they are looked for
# beside the clone, like the other published schemas, or where STREETSENSE_DATEX2_SCHEMAS says.
DATEX2_SCHEMAS = Path(
    os.environ.get("STREETSENSE_DATEX2_SCHEMAS")
    or Path(__file__).resolve().parents[3] / "shared" / "schemas" / "datex2"
)
NS = {
    "d2": "http://datex2.eu/schema/3/d2Payload",
    "com": "http://datex2.eu/schema/3/common",
    "loc": "http://datex2.eu/schema/3/locationReferencing",
    "roa": "http://datex2.eu/schema/3/roadTrafficData",
}
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
SPEED_HALF_LIFE_S = 600  # the anchored city's speed run
SPEED_RUN = 40.0  # ... and the speed it forecast


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _quantities(root: ElementTree.Element, segment: str) -> list[ElementTree.Element]:
    code = "roa:pertinentLocation/loc:externalReferencing/loc:externalLocationCode"
    return [
        q for q in root.findall("roa:physicalQuantity", NS) if q.findtext(code, "", NS) == segment
    ]


def _values(quantity: ElementTree.Element, kind: str) -> list[tuple[datetime, float]]:
    """Return (start of period, value) of each basicData of `kind` (TrafficSpeed, TrafficFlow)."""
    out = []
    for data in quantity.findall("roa:basicData", NS):
        if data.get(XSI_TYPE) != f"roa:{kind}":
            continue
        start = data.findtext("roa:measurementOrCalculationTime/roa:period/com:startOfPeriod",
                              "", NS)  # fmt: skip
        path = "roa:averageVehicleSpeed/com:speed" if kind == "TrafficSpeed" else (
            "roa:vehicleFlow/com:vehicleFlowRate"
        )  # fmt: skip
        out.append((_at(start), float(data.findtext(path, "nan", NS))))
    return out


def _split(quantities: list[ElementTree.Element], kind: str, *, forecast: bool) -> list[Any]:
    flag = "true" if forecast else "false"
    return [
        value
        for q in quantities
        if q.findtext("roa:forecast", "", NS) == flag
        for value in _values(q, kind)
    ]


def test_datex2_carries_the_segments_anchored_forecast(anchored_feeds: Server) -> None:
    with anchored_feeds.client() as client:
        response = client.get(PATH, params={"horizon": "60"})
        segment = client.get("/v1/traffic/segments/ring-eb").json()
        steps = client.get("/v1/traffic/segments/ring-eb/forecast?horizon=60").json()["steps"]
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "application/xml"
    root = ElementTree.fromstring(response.content)
    assert root.get(XSI_TYPE) == "roa:ElaboratedDataPublication"
    assert root.get("modelBaseVersion") == "3"
    ring = _quantities(root, "ring-eb")
    bucket, count, speed = _at(segment["bucket"]), segment["vehicle_count"], segment["mean_speed"]
    # the latest bucket, as observed (forecast false), is the one the JSON shows
    assert _split(ring, "TrafficSpeed", forecast=False) == [(bucket, pytest.approx(speed))]
    assert _split(ring, "TrafficFlow", forecast=False) == [(bucket, round(count * 12))]
    speeds = _split(ring, "TrafficSpeed", forecast=True)
    flows = _split(ring, "TrafficFlow", forecast=True)
    # every 5 minutes up to the horizon, the steps of the JSON forecast, for the same moments
    assert [at for at, _ in speeds] == [_at(s["at"]) for s in steps] == [at for at, _ in flows]
    assert len(speeds) == 12
    assert [v for _, v in speeds] == [s["mean_speed"] for s in steps]
    # re-anchored on the bucket the document carries: the departure from the run fades
    for at, value in speeds:
        age = (at - bucket).total_seconds()
        expected = SPEED_RUN + (speed - SPEED_RUN) * 0.5 ** (age / SPEED_HALF_LIFE_S)
        assert value == pytest.approx(expected, abs=0.1)
    # the flow's departure persists (the run stored no half-life): the live count, per hour
    assert {v for _, v in flows} == {round(count * 12)}
    # the quiet segment has neither a bucket nor a forecast: nothing of it
    assert _quantities(root, "quay-wb") == []
    location = ring[0].find("roa:pertinentLocation", NS)
    assert location is not None and location.get(XSI_TYPE) == "loc:SingleRoadLinearLocation"
    assert location.findtext("loc:gmlLineString/loc:posList", "", NS) == (
        "56.165 10.19 56.166 10.205"  # latitude first, as EPSG:4326 orders it
    )


def test_datex2_forecast_caches_like_every_read(anchored_feeds: Server) -> None:
    with anchored_feeds.client() as client:
        first = client.get(PATH)
        again = client.get(PATH, headers={"If-None-Match": first.headers["etag"]})
        shorter = client.get(PATH, params={"horizon": "30"})
    assert first.headers["cache-control"] == "public, max-age=30, stale-while-revalidate=30"
    assert first.headers["etag"].startswith('W/"') and "last-modified" in first.headers
    assert again.status_code == 304
    assert shorter.headers["etag"] != first.headers["etag"]
    root = ElementTree.fromstring(shorter.content)
    assert len(_split(_quantities(root, "ring-eb"), "TrafficSpeed", forecast=True)) == 6


def test_datex2_forecast_without_any_traffic_data_is_a_problem(feeds: Server) -> None:
    with feeds.client() as client:
        response = client.get(PATH)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry" in response.json()["detail"]


@pytest.mark.skipif(
    not (DATEX2_SCHEMAS / "DATEXII_3_D2Payload.xsd").is_file(),
    reason=f"DATEX II v3 schemas not found at {DATEX2_SCHEMAS}",
)
def test_datex2_forecast_is_valid_against_the_schema(anchored_feeds: Server) -> None:
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(str(DATEX2_SCHEMAS / "DATEXII_3_D2Payload.xsd"))
    with anchored_feeds.client() as client:
        document = client.get(PATH, params={"horizon": "120"}).text
    errors = [str(e.reason) for e in schema.iter_errors(document)]
    assert not errors, errors[:5]
    # ... and it can fail: a speed that is not a number
    broken = document.replace("<com:speed>", "<com:speed>fast", 1)
    assert list(schema.iter_errors(broken))


def _csv(text: str) -> dict[str, dict[str, str]]:
    return {row["id"]: row for row in csv.DictReader(io.StringIO(text))}


def test_every_format_carries_the_same_anchored_forecast(anchored_feeds: Server) -> None:
    with anchored_feeds.client() as client:
        lots = client.get("/v1/parking/lots").json()["lots"]
        lot_features = client.get("/v1/parking/lots", params={"format": "geojson"}).json()
        lot_rows = _csv(client.get("/v1/parking/lots", params={"format": "csv"}).text)
        segments = client.get("/v1/traffic/segments").json()["segments"]
        features = client.get("/v1/traffic/segments", params={"format": "geojson"}).json()
        rows = _csv(client.get("/v1/traffic/segments", params={"format": "csv"}).text)
    harbour = next(lot for lot in lots if lot["id"] == "harbour")
    feature = next(f for f in lot_features["features"] if f["properties"]["id"] == "harbour")
    assert feature["properties"]["forecast"] == harbour["forecast"]
    assert harbour["forecast"]["anchored_at"] is not None
    for minutes in (15, 30, 60):
        for suffix in ("", "_lo80", "_hi80"):
            field = f"available_{minutes}m{suffix}"
            cell = lot_rows["harbour"][f"forecast_{field}"]
            assert float(cell) == harbour["forecast"][field], field
    ring = next(s for s in segments if s["id"] == "ring-eb")
    feature = next(f for f in features["features"] if f["properties"]["id"] == "ring-eb")
    for key in ("forecast", "speed_forecast"):
        assert feature["properties"][key] == ring[key]
    assert ring["speed_forecast"]["anchored_at"] == ring["bucket"]
    for minutes in (15, 30, 60):
        for suffix in ("", "_lo80", "_hi80"):
            speed = f"mean_speed_{minutes}m{suffix}"
            count = f"vehicle_count_{minutes}m{suffix}"
            assert float(rows["ring-eb"][f"forecast_{speed}"]) == ring["speed_forecast"][speed]
            assert float(rows["ring-eb"][f"forecast_{count}"]) == ring["forecast"][count]


def test_datex2_forecast_is_not_anchored_on_a_stale_bucket(
    anchored_city: psycopg.Connection,
    settings: Settings,
    start_server: Callable[..., Server],
) -> None:
    # the buckets are 7-14 minutes old: with a 60 s threshold they are stale
    server = start_server(feeds_settings(settings, stale_after_s=60))
    with server.client() as client:
        segment = client.get("/v1/traffic/segments/ring-eb").json()
        root = ElementTree.fromstring(client.get(PATH).content)
    assert segment["stale"] is True
    ring = _quantities(root, "ring-eb")
    assert _split(ring, "TrafficSpeed", forecast=False) == []  # a stale bucket is not published
    speeds = _split(ring, "TrafficSpeed", forecast=True)
    assert speeds and {v for _, v in speeds} == {SPEED_RUN}  # the stored run, not re-anchored
    assert all(at > _at(segment["bucket"]) + timedelta(minutes=5) for at, _ in speeds)


def _model_properties(model: str) -> set[str]:
    """Return every property a Smart Data Model defines, its commons included."""
    schema = json.loads((SDM / model / "schema.json").read_text())
    common = json.loads((SDM / "common-schema.json").read_text())["definitions"]
    names: set[str] = set()
    for part in schema["allOf"]:
        ref = part.get("$ref", "")
        names |= set((common[ref.rsplit("/", 1)[1]] if ref else part).get("properties", {}))
    return names


@pytest.mark.skipif(
    not (SDM / "common-schema.json").is_file(), reason=f"Smart Data Models not found at {SDM}"
)
def test_ngsi_ld_carries_no_forecast_of_our_own_making(anchored_feeds: Server) -> None:
    # Smart Data Models has no traffic flow forecast model (docs/feeds.md): a segment with
    # forecasts is published in NGSI-LD with the observation's own attributes only
    with anchored_feeds.client() as client:
        entity = client.get("/v1/traffic/segments/ring-eb", params={"format": "jsonld"}).json()
        forecast = client.get("/v1/traffic/segments/ring-eb/forecast").json()
    assert forecast["steps"]  # it has forecasts to tell
    allowed = _model_properties("TrafficFlowObserved") | {"@context"}
    assert set(entity) <= allowed, set(entity) - allowed
    assert entity["type"] == "TrafficFlowObserved"
