"""A richer lot in every feed: opening status (hours and operator), categories, facts, meaning
checks; DATEX II v3.7 and ParkAPI v1/v3. A closed lot is never "full" anywhere."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import psycopg
import pytest

from feeds.app import create_app
from feeds.live import LiveLot
from store.lot_status import set_override
from store.registry import store_registry
from streetsense.config import Settings, with_overrides
from streetsense.errors import ConfigError
from streetsense.hours import OpeningStatus
from streetsense.lot_checks import checked_occupied
from streetsense.lot_status import StatusOverride
from streetsense.registry import parse_registry
from tests.feeds.conftest import Server, counter, feeds_settings, spot, write
from tests.feeds.test_sdm import SDM
from tests.feeds.test_sdm import _check as check_sdm

SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "schemas" / "parkapi"
# The published schemas lie beside the clone (../shared), as the recordings do; without them
# these checks are skipped with the folder named, like the recordings' tests.
NEEDS_SDM = pytest.mark.skipif(
    not (SDM / "common-schema.json").is_file(), reason=f"Smart Data Models not found at {SDM}"
)
NEEDS_PARKAPI = pytest.mark.skipif(
    not SCHEMAS.is_dir(), reason=f"ParkAPI schemas not found at {SCHEMAS}"
)
NS = {
    "d2": "http://datex2.eu/schema/3/d2Payload",
    "com": "http://datex2.eu/schema/3/common",
    "fac": "http://datex2.eu/schema/3/facilities",
    "prk": "http://datex2.eu/schema/3/parking",
    "loc": "http://datex2.eu/schema/3/locationReferencing",
}
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

CITY: dict[str, list[dict[str, Any]]] = {
    "site": [{"id": "c", "name": "Centre"}],
    "lot": [
        # counted by its gate, two disabled spaces watched by spot sensors
        {"id": "garage", "site": "c", "name": "Garage & <Co>", "kind": "off_street",
         "capacity": 100, "lat": 56.15, "lon": 10.21,
         "spaces": {"disabled": 2, "ev_charging": 4, "bus": 1},
         "opening_hours": "24/7", "operator": "Harbour Parking", "address": "Havnegade 1",
         "max_height_m": 2.1, "park_and_ride": True, "fee": "3 EUR/h",
         "tariff_url": "https://city.example/fees", "phone": "+45 89 40 20 00",
         "email": "parking@city.example", "entrances": [[10.2101, 56.1502]]},
        # closed by an operator although open at all times by its hours
        {"id": "market", "site": "c", "name": "Market", "kind": "on_street", "capacity": 2,
         "lat": 56.16, "lon": 10.22},
        # closed by its hours at every moment
        {"id": "night", "site": "c", "name": "Never open", "kind": "off_street",
         "capacity": 10, "lat": 56.17, "lon": 10.23, "opening_hours": "off"},
        # spot sensors only, with categories, all taken: full (and open)
        {"id": "kerb", "site": "c", "name": "Kerb", "kind": "on_street", "capacity": 3,
         "lat": 56.18, "lon": 10.24, "spaces": {"disabled": 1, "motorcycle": 1}},
        {"id": "old", "site": "c", "name": "Old data", "kind": "off_street", "capacity": 50,
         "lat": 56.19, "lon": 10.25},
        # one sensor on two disabled spaces: how many of the two are free is unknown
        {"id": "partial", "site": "c", "name": "Partly sensed", "kind": "on_street",
         "capacity": 4, "lat": 56.20, "lon": 10.26, "spaces": {"disabled": 2}},
    ],
    "device": [
        {"id": "garage-gate", "site": "c", "kind": "counter", "lot": "garage"},
        {"id": "garage-gw", "site": "c", "kind": "parking", "lot": "garage"},
        {"id": "market-gw", "site": "c", "kind": "parking", "lot": "market"},
        {"id": "night-gate", "site": "c", "kind": "counter", "lot": "night"},
        {"id": "kerb-gw", "site": "c", "kind": "parking", "lot": "kerb"},
        {"id": "old-gate", "site": "c", "kind": "counter", "lot": "old"},
        {"id": "partial-gw", "site": "c", "kind": "parking", "lot": "partial"},
    ],
    "spot": [
        {"id": "g-d1", "lot": "garage", "device": "garage-gw", "sensor": "d1",
         "category": "disabled"},
        {"id": "g-d2", "lot": "garage", "device": "garage-gw", "sensor": "d2",
         "category": "disabled"},
        {"id": "m-1", "lot": "market", "device": "market-gw", "sensor": "a"},
        {"id": "m-2", "lot": "market", "device": "market-gw", "sensor": "b"},
        {"id": "k-1", "lot": "kerb", "device": "kerb-gw", "sensor": "a"},
        {"id": "k-2", "lot": "kerb", "device": "kerb-gw", "sensor": "b", "category": "disabled"},
        {"id": "k-3", "lot": "kerb", "device": "kerb-gw", "sensor": "c",
         "category": "motorcycle"},
        {"id": "p-d", "lot": "partial", "device": "partial-gw", "sensor": "d",
         "category": "disabled"},
        {"id": "p-1", "lot": "partial", "device": "partial-gw", "sensor": "a"},
        {"id": "p-2", "lot": "partial", "device": "partial-gw", "sensor": "b"},
    ],
}  # fmt: skip


@pytest.fixture
def standards(
    db: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> Server:
    """The city above: garage 40/100 (1 of 2 disabled free), market closed, night closed by
    its hours, kerb full, old stale."""
    store_registry(db, parse_registry(CITY), "tests")
    now = datetime.now(UTC)
    write(db, [
        counter("garage-gate", 40, now - timedelta(seconds=30)),
        spot("garage-gw", "d1", True, now - timedelta(seconds=30)),
        spot("garage-gw", "d2", False, now - timedelta(seconds=30)),
        spot("market-gw", "a", True, now - timedelta(seconds=20)),
        spot("market-gw", "b", True, now - timedelta(seconds=20)),
        counter("night-gate", 10, now - timedelta(seconds=20)),
        *(spot("kerb-gw", s, True, now - timedelta(seconds=10)) for s in "abc"),
        counter("old-gate", 5, now - timedelta(hours=3)),
        *(spot("partial-gw", s, s == "a", now - timedelta(seconds=10)) for s in "dab"),
    ])  # fmt: skip
    set_override(
        db, StatusOverride("market", OpeningStatus.CLOSED, "street market", "ops", now), "cli"
    )
    db.commit()
    return start_server(feeds_settings(settings))


def _lots(server: Server) -> dict[str, dict[str, Any]]:
    with server.client() as client:
        return {lot["id"]: lot for lot in client.get("/v1/parking/lots").json()["lots"]}


def test_our_json_carries_status_categories_facts(standards: Server) -> None:
    lots = _lots(standards)
    garage, market, night, kerb, old = (lots[k] for k in ("garage", "market", "night", "kerb",
                                                          "old"))  # fmt: skip
    assert (garage["status"], garage["available"], garage["status_source"]) == (
        "open", 60, "opening_hours",
    )  # fmt: skip
    # in the registry's category order (the database's jsonb would put "bus" first)
    assert [c["category"] for c in garage["categories"]] == [
        "general", "disabled", "ev_charging", "bus",
    ]  # fmt: skip
    disabled = next(c for c in garage["categories"] if c["category"] == "disabled")
    assert disabled == {"category": "disabled", "capacity": 2, "available": 1, "occupied": 1}
    ev = next(c for c in garage["categories"] if c["category"] == "ev_charging")
    assert ev["available"] is None  # no sensor watches them: unknown, not free
    assert garage["facts"]["operator"] == "Harbour Parking"
    assert garage["facts"]["entrances"] == [[10.2101, 56.1502]]
    assert (market["status"], market["status_source"], market["status_reason"]) == (
        "closed", "operator", "street market",
    )  # fmt: skip
    for closed in (market, night):
        assert closed["available"] is None and closed["occupied"] is not None
        assert all(c["available"] is None for c in closed["categories"])
        assert all(v is None for k, v in closed["forecast"].items() if k.startswith("available"))
        assert closed["forecast"]["status_15m"] == "closed"
    assert night["status_reason"].startswith("opening hours off")
    assert kerb["available"] == 0 and kerb["status"] == "open"
    assert [c["available"] for c in kerb["categories"]] == [0, 0, 0]
    assert old["stale"] is True
    assert "set_by" not in json.dumps(lots) and "ops" not in json.dumps(market)
    partial = {c["category"]: c for c in lots["partial"]["categories"]}
    assert partial["general"] == {"category": "general", "capacity": 2, "available": 1,
                                  "occupied": 1}  # fmt: skip
    assert partial["disabled"]["available"] is None  # 1 sensor on 2 spaces: not "2 free"


def test_apps_ask_for_a_free_disabled_space(standards: Server) -> None:
    """ "2 disabled spaces free" is an answer an app can ask for, not only read."""
    with standards.client() as client:

        def ids(query: str) -> list[str]:
            response = client.get(f"/v1/parking/lots?{query}")
            assert response.status_code == 200, response.text
            return sorted(lot["id"] for lot in response.json()["lots"])

        assert ids("category=disabled") == ["garage", "kerb", "partial"]
        assert ids("category=disabled&min_free=1") == ["garage"]  # kerb's is taken
        assert ids("category=ev_charging&min_free=0") == []  # no sensor: unknown, not free
        assert ids("status=closed") == ["market", "night"]
        assert ids("min_free=0") == ["garage", "kerb", "old", "partial"]  # closed: not "0 free"
        refused = client.get("/v1/parking/lots?category=vip")
        assert refused.status_code == 400 and "category" in refused.json()["detail"]


def test_more_taken_than_capacity_is_flagged_and_clamped(
    standards: Server, db: psycopg.Connection
) -> None:
    write(db, [counter("garage-gate", 130, datetime.now(UTC))])
    db.commit()
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    garage = _lots(standards)["garage"]
    while garage["occupied"] != 100 and datetime.now(UTC) < deadline:
        garage = _lots(standards)["garage"]
    assert garage["available"] == 0 and garage["occupied"] == 100  # free never below 0
    assert [c["code"] for c in garage["checks"]] == ["over_capacity"]
    assert "130 spaces taken, more than the lot's 100" in garage["checks"][0]["reason"]


@pytest.mark.parametrize(
    ("counter_value", "sensed", "sensors", "codes"),
    [
        (40.0, 1.0, 2, []),  # two sensors agree well enough with the gate
        (10.0, 30.0, 30, ["counter_disagrees"]),  # sensors see more cars than passed the gate
        (90.0, 60.0, 100, ["counter_disagrees"]),  # every space sensed, 30 apart
        (62.0, 60.0, 100, []),  # within the tolerance of a drifting counter
        (-2.0, None, 0, ["negative_occupancy"]),
    ],
)
def test_gate_counter_against_spot_sensors(
    counter_value: float, sensed: float | None, sensors: int, codes: list[str]
) -> None:
    live = LiveLot(counter_value, datetime.now(UTC), counter_value, sensed, sensors, {})
    occupied, checks = checked_occupied(100, live)
    assert [c.code for c in checks] == codes
    assert 0 <= occupied <= 100


def test_csv_geojson_and_lta_say_the_same(standards: Server) -> None:
    with standards.client() as client:
        rows = {
            r["id"]: r
            for r in csv.DictReader(io.StringIO(client.get("/v1/parking/lots?format=csv").text))
        }
        features = client.get("/v1/parking/lots?format=geojson").json()["features"]
        lta = client.get("/ltaodataservice/CarParkAvailabilityv2").json()["value"]
    assert (rows["garage"]["available_disabled"], rows["garage"]["capacity_disabled"]) == ("1", "2")
    assert rows["market"]["status"] == "closed" and rows["market"]["available"] == ""
    assert rows["garage"]["operator"] == "Harbour Parking"
    by_id = {f["id"]: f["properties"] for f in features}
    assert by_id["night"]["status"] == "closed" and by_id["night"]["available"] is None
    records = {(r["CarParkID"], r["LotType"]): r for r in lta}
    assert ("market", "C") not in records and ("night", "C") not in records  # never "0 free"
    assert records[("kerb", "Y")]["AvailableLots"] == 0
    assert records[("kerb", "C")]["TotalLots"] == 2


@NEEDS_SDM
def test_ngsi_ld_status_and_categories(standards: Server) -> None:
    with standards.client() as client:
        entities = client.get("/v1/parking/lots?format=jsonld").json()
    by_id = {e["id"].split(":")[-1]: e for e in entities}
    for entity in entities:  # every new property validates against the Smart Data Models
        check_sdm(entity)
    assert by_id["night"]["status"] == ["closed"]
    assert "availableSpotNumber" not in by_id["night"]
    assert by_id["garage"]["status"] == ["open", "spacesAvailable"]
    assert by_id["garage"]["category"] == ["forDisabled", "forElectricalCharging", "feeCharged"]
    assert by_id["garage"]["maximumAllowedHeight"] == 2.1
    assert by_id["garage"]["usageScenario"] == ["parkAndRide"]
    assert len(by_id["garage"]["openingHoursSpecification"]) == 7
    assert by_id["kerb"]["allowedVehicleType"] == ["car", "motorcycle"]
    assert by_id["kerb"]["extraSpotNumber"] == 0


def _xml(server: Server, path: str) -> tuple[ElementTree.Element, dict[str, str]]:
    with server.client() as client:
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/xml"
        again = client.get(path, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
    return ElementTree.fromstring(response.content), dict(response.headers)


def test_datex2_table(standards: Server) -> None:
    root, _ = _xml(standards, "/v1/parking/datex2/table")
    assert root.tag == f"{{{NS['d2']}}}payload"
    assert root.get(XSI_TYPE) == "prk:ParkingTablePublication"
    assert "DATEX II v3.7" in (root.get("profileName") or "")
    places = {e.get("id"): e for e in root.iterfind(".//prk:hierarchyElementGeneral", NS)}
    garage = places["garage"]
    assert garage.findtext("fac:name/com:values/com:value", namespaces=NS) == "Garage & <Co>"
    assert garage.findtext(".//loc:latitude", namespaces=NS) == "56.15"
    assert garage.findtext("prk:supply/prk:quantity", namespaces=NS) == "100"
    assert garage.findtext(".//fac:telephoneNumber", namespaces=NS) == "+45 89 40 20 00"
    area = places["garage.disabled"]
    assert area.get(XSI_TYPE) == "prk:SpecificArea"
    assert area.find("prk:parentId", NS).get("id") == "garage"  # type: ignore[union-attr]
    assert area.findtext(".//fac:userGroup", namespaces=NS) == "personsWithDisabilities"
    assert places["kerb.motorcycle"].findtext(".//com:vehicleType", namespaces=NS) == "motorcycle"
    days = garage.findall(".//com:applicableDay", NS)
    assert len(days) == 7  # 24/7: every day of the coming week


def test_datex2_status_closed_is_never_full(standards: Server) -> None:
    root, headers = _xml(standards, "/v1/parking/datex2/status")
    assert root.get(XSI_TYPE) == "prk:ParkingStatusPublication"
    assert headers["cache-control"].startswith("public, max-age=5")
    status = {
        e.find("fac:reference", NS).get("id"): e  # type: ignore[union-attr]
        for e in root.iterfind("prk:parkingStatusInformation", NS)
    }
    for closed in ("market", "night"):
        element = status[closed]
        assert element.findtext("fac:openingStatus", namespaces=NS) == "closed"
        assert element.find("prk:status", NS) is None  # no "full", no "spacesAvailable"
        assert element.find(".//prk:numberOfVacantSpaces", NS) is None
        assert element.findtext(".//prk:parkingNotAllowed", namespaces=NS) == "true"
    assert status["market"].findtext("fac:regularOperatingHoursInForce", namespaces=NS) == "false"
    assert status["kerb"].findtext("prk:status", namespaces=NS) == "full"
    assert status["garage"].findtext(".//prk:numberOfVacantSpaces", namespaces=NS) == "60"
    assert status["garage.disabled"].findtext(".//prk:numberOfVacantSpaces", namespaces=NS) == "1"
    assert status["old"].findtext("prk:parkingFault", namespaces=NS) == "communicationsFailure"


@NEEDS_PARKAPI
def test_parkapi_v1_is_valid_and_says_closed(standards: Server) -> None:
    schema = json.loads((SCHEMAS / "offenesdresden-ParkAPI/schema/city_schema.json").read_text())
    with standards.client() as client:
        document = client.get("/v1/parking/parkapi/v1").json()
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)
    lots = {lot["id"]: lot for lot in document["lots"]}
    assert lots["market"]["state"] == "closed" and "free" not in lots["market"]
    assert lots["kerb"] == lots["kerb"] | {"state": "open", "free": 0, "total": 3}
    assert lots["old"]["state"] == "nodata"
    assert lots["garage"]["coords"] == {"lat": 56.15, "lng": 10.21}


@NEEDS_PARKAPI
def test_parkapi_v3_names_and_opening_status(standards: Server) -> None:
    schema = json.loads((SCHEMAS / "ParkAPI2-sources/docs/schema/parking-site.json").read_text())
    # The early v3 schema mistypes realtime_opening_status as a date-time; v3 says
    # OPEN/CLOSED/UNKNOWN, so that one property is checked against v3's enum instead.
    schema["properties"]["realtime_opening_status"] = {"enum": ["OPEN", "CLOSED", "UNKNOWN"]}
    with standards.client() as client:
        items = client.get("/v1/parking/parkapi/v3/parking-sites").json()["items"]
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for item in items:
        validator.validate(item)
    sites = {item["original_uid"]: item for item in items}
    assert sites["market"]["realtime_opening_status"] == "CLOSED"
    assert "realtime_free_capacity" not in sites["market"]
    assert sites["garage"]["realtime_free_capacity_disabled"] == 1
    assert sites["garage"]["capacity_charging"] == 4
    assert "realtime_free_capacity_charging" not in sites["garage"]
    assert sites["garage"]["max_height"] == 210
    assert sites["kerb"]["realtime_free_capacity"] == 0


def test_a_closed_lot_is_never_full_anywhere(standards: Server) -> None:
    """Every representation of the two closed lots says closed and no free count of 0."""
    with standards.client() as client:
        for path in ("/v1/parking/lots/market", "/v1/parking/lots/night"):
            lot = client.get(path).json()
            assert lot["status"] == "closed" and lot["available"] is None
            entity = client.get(path, headers={"Accept": "application/ld+json"}).json()
            assert "full" not in entity.get("status", []) and "availableSpotNumber" not in entity
        stream = client.get("/v1/parking/lots/market/forecast").json()
        assert stream["capacity"] == 2


def test_a_wrong_city_country_stops_the_feeds_at_start(settings: Settings) -> None:
    """A typo in city.country would make every lot with opening hours fail later: refuse it
    when the service starts, naming the setting."""
    wrong = with_overrides(settings, city={"country": "XX"})
    with pytest.raises(ConfigError, match=r"city\.country 'XX'"):
        create_app(wrong)
