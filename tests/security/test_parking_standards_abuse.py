"""Abuse of the DATEX II and ParkAPI endpoints: hostile names from the registry cannot inject
markup, writes are refused, no one's name leaks from an override."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from xml.etree import ElementTree

import psycopg

from store.lot_status import set_override
from store.registry import store_registry
from streetsense.config import Settings
from streetsense.hours import OpeningStatus
from streetsense.lot_status import StatusOverride
from streetsense.registry import parse_registry
from tests.feeds.conftest import Server, counter, feeds_settings, write

HOSTILE = '</fac:name><d2:payload>"]]><!--&amp;<script>alert(1)</script>'
PATHS = (
    "/v1/parking/datex2/table", "/v1/parking/datex2/status", "/v1/parking/parkapi/v1",
    "/v1/parking/parkapi/v3/parking-sites",
)  # fmt: skip


def _city(db: psycopg.Connection) -> None:
    store_registry(db, parse_registry({
        "site": [{"id": "c"}],
        "lot": [{"id": "l1", "site": "c", "name": HOSTILE, "kind": "off_street", "capacity": 9,
                 "lat": 1, "lon": 2, "operator": HOSTILE, "fee": HOSTILE,
                 "opening_hours": 'Mo-Su 00:00-24:00 "<b>&"'}],
        "device": [{"id": "gate-secret-id", "site": "c", "kind": "counter", "lot": "l1"}],
    }), "tests")  # fmt: skip
    write(db, [counter("gate-secret-id", 3, datetime.now(UTC))])
    set_override(
        db,
        StatusOverride("l1", OpeningStatus.CLOSED, "works", "Jane Operator", datetime.now(UTC)),
        "dashboard",
    )
    db.commit()


def test_hostile_names_stay_text(
    db: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    _city(db)
    server = start_server(feeds_settings(settings))
    with server.client() as client:
        for path in PATHS[:2]:
            root = ElementTree.fromstring(client.get(path).content)  # well-formed
            texts = [e.text for e in root.iter() if e.text]
            assert HOSTILE in texts or path.endswith("status")
            assert len(root) > 2 and root.tag.endswith("payload")
        for path in PATHS:
            body = client.get(path).text
            assert "gate-secret-id" not in body and "Jane Operator" not in body
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                refused = client.request(method, path, content=b"<x/>")
                assert refused.status_code == 405
            junk = client.get(path + "?format=%3Cx%3E&lot=" + "a" * 5000)
            assert junk.status_code in (200, 414, 431)
        v1 = client.get(PATHS[2]).json()["lots"][0]
        assert v1["name"] == HOSTILE and v1["state"] == "closed"
