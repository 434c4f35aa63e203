"""The Alerts page and the alerts on the City now map, under AppTest on the simulated city:
active first, acknowledge with a note through the form, history and counts per rule."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from alerts.engine import run_once
from alerts.rules import parse_rules
from tests.dashboard.conftest import City, query

Run = Callable[[str], AppTest]
RULES = parse_rules(
    """
[[rule]]
name = "lot-in-use"
kind = "lot_occupancy"
above = 0.0
severity = "info"

[[rule]]
name = "device-offline"
kind = "device_offline"
after_min = 15
severity = "critical"
"""
)


@pytest.fixture
def alerts(city: City) -> Iterator[None]:
    """Evaluate the rules on the city now; remove every alert afterwards (the city is shared)."""
    with psycopg.connect(city.url, autocommit=True) as conn:
        run_once(conn, RULES, datetime.now(UTC), "UTC")
    yield
    with psycopg.connect(city.url, autocommit=True) as conn:
        conn.execute("DELETE FROM alert_outbox")
        conn.execute("DELETE FROM alerts")


def test_active_first_acknowledge_and_history(app: Run, city: City, alerts: None) -> None:
    [(firing,)] = query(city.url, "SELECT count(*) FROM alerts WHERE state = 'firing'")
    at = app("alerts")
    shown = {m.label: m.value for m in at.metric}
    assert int(shown["Firing"]) == firing > 0
    [(critical,)] = query(city.url, "SELECT count(*) FROM alerts WHERE severity = 'critical'")
    assert int(shown["Critical"]) == critical == len(city.filled.offline)
    active = at.dataframe[0].value
    assert list(active["state"].unique()) == ["firing"]
    assert active["rule"].iloc[0] == "device-offline"  # critical before info
    target = int(active["alert_id"].iloc[0])

    [alert_box] = [s for s in at.selectbox if s.label == "Alert"]
    alert_box.set_value(target)
    [name] = [t for t in at.text_input if t.label == "Your name"]
    name.input("ana")
    at.text_area[0].input("van on its way")
    [submit] = [b for b in at.button if b.label == "Acknowledge"]
    submit.click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"Alert #{target} acknowledged by ana" in s.value for s in at.success)
    [(state, by, note)] = query(
        city.url, "SELECT state, acked_by, ack_note FROM alerts WHERE alert_id = %s", (target,)
    )
    assert (state, by, note) == ("acknowledged", "ana", "van on its way")
    active = at.dataframe[0].value
    assert active["state"].iloc[-1] == "acknowledged"  # active first, acknowledged after
    per_rule = {r.rule: r for r in at.dataframe[1].value.itertuples()}
    assert per_rule["device-offline"].acknowledged == 1
    assert per_rule["lot-in-use"].fired == firing - critical


def test_city_now_map_rings_the_places_with_active_alerts(
    app: Run, city: City, alerts: None
) -> None:
    [(places,)] = query(
        city.url,
        "SELECT count(DISTINCT subject_id) FROM alerts WHERE subject_kind IN ('lot', 'segment') "
        "AND state = 'firing'",
    )
    at = app("city_now")
    [deck] = at.get("deck_gl_json_chart")
    layers = json.loads(deck.proto.json)["layers"]
    [rings] = [layer for layer in layers if layer.get("id") == "alerts"]
    assert len(rings["data"]) == places > 0
    assert any(f"Rings: active alerts ({places} places" in c.value for c in at.caption)
