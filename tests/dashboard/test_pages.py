"""Every dashboard page under AppTest against a simulated city: the figures shown are the data's."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
import pyarrow as pa
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.controls import range_end
from harness import simcity
from store.lot_status import set_override
from streetsense.hours import OpeningStatus
from streetsense.lot_status import StatusOverride, lot_status
from tests.dashboard.conftest import City, query

Run = Callable[[str], AppTest]


def metrics(at: AppTest) -> dict[str, str]:
    """Return the metrics shown, label to value."""
    return {m.label: m.value for m in at.metric}


def number(text: str) -> float:
    """Parse a metric value such as '1,157' or '81%'."""
    return float(text.replace(",", "").rstrip("%"))


def test_city_now_kpis_and_map_show_what_the_rollups_and_device_state_say(
    app: Run, city: City
) -> None:
    # Closed lots (the stadium's garage closes at night; the fullest lot is closed by an
    # operator here) are neither free nor full.
    [(fullest_id,)] = query(city.url, "SELECT lot_id FROM lot_live ORDER BY occupancy DESC, "
                            "lot_id LIMIT 1")  # fmt: skip
    now = datetime.now(UTC)
    with psycopg.connect(city.url) as conn:
        set_override(conn, StatusOverride(fullest_id, OpeningStatus.CLOSED, "test", "t", now),
                     "cli")  # fmt: skip
    st.cache_data.clear()
    try:
        at = app("city_now")
    finally:
        query(city.url, "DELETE FROM lot_status_overrides RETURNING lot_id")
    shown = metrics(at)
    closed = [fullest_id] + [
        lot for lot, hours in query(city.url, "SELECT lot_id, opening_hours FROM lots")
        if lot_status(hours, None, now, simcity.TIMEZONE).status.value == "closed"
    ]  # fmt: skip
    [(free, full)] = query(
        city.url,
        "SELECT sum(greatest(capacity - occupied, 0)), count(*) FILTER (WHERE occupancy >= 0.9) "
        "FROM lot_live WHERE NOT (lot_id = ANY(%s))",
        (closed,),
    )
    [(congested,)] = query(
        city.url,
        "SELECT count(*) FROM segment_now n JOIN segments s USING (segment_id) "
        "WHERE n.mean_speed < 0.5 * s.speed_limit_kmh",
    )
    assert number(shown["Spaces free"]) == round(float(free))  # type: ignore[arg-type]
    assert number(shown["Lots above 90%"]) == full
    assert number(shown["Segments congested"]) == congested
    assert number(shown["Sensors offline"]) == len(city.filled.offline)
    [deck] = at.get("deck_gl_json_chart")
    layers = {
        layer["@@type"]: layer
        for layer in json.loads(deck.proto.json)["layers"]
        if layer.get("id") != "alerts"  # tests/dashboard/test_alerts_page.py checks those
    }
    [(lots, segments)] = query(
        city.url, "SELECT (SELECT count(*) FROM lots), (SELECT count(*) FROM segments)"
    )
    assert len(layers["ScatterplotLayer"]["data"]) == lots
    assert len(layers["PathLayer"]["data"]) == segments
    fullest = at.dataframe[0].value
    [(top_lot,)] = query(city.url, "SELECT name FROM lots JOIN lot_live USING (lot_id) "
                         "WHERE NOT (lot_id = ANY(%s)) ORDER BY occupancy DESC, lot_id LIMIT 1",
                         (closed,))  # fmt: skip
    assert fullest["name"].iloc[0] == top_lot
    assert str(fullest["observed_at"].dt.tz) == "Europe/Copenhagen"


def _arrivals_and_dwell(url: str, lot: str, end: datetime) -> tuple[int, float | None]:
    """Count 0 -> 1 changes per spot in the day before end, and the mean minutes to the next."""
    rows = query(
        url,
        "SELECT r.device_id, r.sub_id, r.observed_at, r.value FROM readings r "
        "JOIN spots s ON s.device_id = r.device_id AND s.sensor = r.sub_id "
        "WHERE s.lot_id = %s AND r.kind = 'occupied' AND r.observed_at >= %s "
        "AND r.observed_at < %s ORDER BY 1, 2, 3",
        (lot, end - timedelta(days=1), end),
    )
    per_spot: dict[tuple[object, object], list[tuple[datetime, float]]] = defaultdict(list)
    for device, sensor, at, value in rows:
        per_spot[(device, sensor)].append((at, value))  # type: ignore[arg-type]
    arrivals, dwells = 0, []
    for events in per_spot.values():
        changes = [events[0]] + [b for a, b in itertools.pairwise(events) if a[1] != b[1]]
        for index in range(1, len(changes)):
            if changes[index][1] == 1.0:
                arrivals += 1
                if index + 1 < len(changes):
                    dwells.append((changes[index + 1][0] - changes[index][0]).total_seconds() / 60)
    return arrivals, (sum(dwells) / len(dwells) if dwells else None)


def test_parking_summary_matches_rollups_and_raw_spot_events(app: Run, city: City) -> None:
    before = range_end(datetime.now(UTC))
    at = app("parking")
    street = [lot for (lot,) in query(city.url, "SELECT lot_id FROM lots WHERE kind = "
                                      "'on_street' ORDER BY lot_id")]  # fmt: skip
    garage = query(city.url, "SELECT lot_id FROM lots WHERE kind = 'off_street' LIMIT 1")[0][0]
    chosen = [*street[:2], garage]
    at.multiselect(key="lots").set_value(chosen).run()
    after = range_end(datetime.now(UTC))
    assert not at.exception
    summary = at.dataframe[0].value.set_index("lot_id")
    assert sorted(summary.index) == sorted(chosen)
    # Seven days cover all three simulated days, at hourly buckets.
    for lot, share, peak in query(
        city.url,
        "SELECT lot_id, avg((occupancy >= 0.85)::int)::float8, max(occupancy) FROM occupancy_1h "
        "WHERE lot_id = ANY(%s) GROUP BY lot_id",
        (chosen,),
    ):
        assert summary.loc[lot, "share_above"] == pytest.approx(share)
        assert summary.loc[lot, "peak_occupancy"] == pytest.approx(peak)
    for lot in street[:2]:
        # Turnover reads the last day of the range, which ends with the current 5 minutes.
        expected = {_arrivals_and_dwell(city.url, lot, end) for end in {before, after}}
        shown = (summary.loc[lot, "arrivals"], summary.loc[lot, "mean_dwell_min"])
        assert any(
            shown[0] == arrivals > 0 and shown[1] == pytest.approx(dwell)
            for arrivals, dwell in expected
        ), (shown, expected)
    assert summary.loc[garage, "arrivals"] == 0  # a garage counter has no spot events


def test_parking_search_and_kind_filter_narrow_the_lot_choice(app: Run, city: City) -> None:
    at = app("parking")
    at.multiselect(key="lot_kinds").set_value(["off_street"]).run()
    garages = dict(query(city.url, "SELECT lot_id, name FROM lots WHERE kind = 'off_street'"))
    # Options are shown by name.
    assert set(at.multiselect(key="lots").options) == set(garages.values())
    one = sorted(garages)[0]
    at.text_input(key="lot_search").input(one).run()
    assert at.multiselect(key="lots").options == [garages[one]]


def test_traffic_ranking_follows_the_shared_range_and_tier(app: Run, city: City) -> None:
    at = app("traffic")
    hourly = at.dataframe[-1].value.set_index("segment_id")  # the ranking, last
    for segment, vehicles, share in query(
        city.url,
        "SELECT f.segment_id, sum(f.vehicle_count), "
        "avg((f.mean_speed < 0.5 * s.speed_limit_kmh)::int)::float8 FROM flow_1h f "
        "JOIN segments s USING (segment_id) WHERE f.mean_speed IS NOT NULL GROUP BY 1",
    ):
        assert hourly.loc[segment, "vehicles"] == pytest.approx(vehicles)
        assert hourly.loc[segment, "share_congested"] == pytest.approx(share)
    before = range_end(datetime.now(UTC))
    at.selectbox(key="range").set_value("Last 24 hours").run()
    after = range_end(datetime.now(UTC))
    assert "data at 5m resolution" in " ".join(c.value for c in at.caption)
    shown = at.dataframe[-1].value.set_index("segment_id")["vehicles"].sum()
    expected = {
        float(query(city.url, "SELECT sum(vehicle_count) FROM flow_5m WHERE bucket >= %s "
                    "AND bucket < %s", (end - timedelta(days=1), end))[0][0])  # type: ignore[arg-type]
        for end in {before, after}
    }  # fmt: skip
    assert shown in expected


def test_the_time_range_is_shared_between_pages(app: Run) -> None:
    at = app("traffic")
    at.selectbox(key="range").set_value("Last 30 days").run()
    at.switch_page("app_pages/devices.py").run()
    assert at.selectbox(key="range").value == "Last 30 days"


def test_forecast_quality_shows_the_latest_backtest_and_chosen_models(app: Run, city: City) -> None:
    at = app("forecast_quality")
    pooled = at.dataframe[0].value
    rows = query(
        city.url,
        "SELECT b.model, b.mae, b.coverage80 FROM backtest_results b WHERE b.series_id = '' "
        "AND b.step = 0 AND b.run_id = (SELECT max(run_id) FROM forecast_runs "
        "WHERE stream = 'occupancy') ORDER BY b.mase NULLS LAST, b.mae, b.model",
    )
    assert list(pooled["model"]) == [r[0] for r in rows]
    assert list(pooled["mae"]) == pytest.approx([r[1] for r in rows])
    # a score a model lacks (MASE without a season's history) reads '-', not 'None'
    assert [at.dataframe[i].proto.placeholder for i in (0, 1, 4)] == ["-"] * 3
    shown = metrics(at)
    assert shown["Best model"] == rows[0][0]
    assert shown["Its MAE"] == f"{rows[0][1]:.1f} spaces"  # the unit of an occupancy error
    assert "judge the models by MASE and MAE, not by MAPE" in "\n".join(c.value for c in at.caption)
    counts = at.dataframe[2].value.set_index("model")["series"].to_dict()
    expected = dict(query(
        city.url,
        "SELECT model, count(DISTINCT series_id) FROM forecasts WHERE run_id = "
        "(SELECT max(run_id) FROM forecast_runs WHERE stream = 'occupancy') GROUP BY model",
    ))  # fmt: skip
    assert counts == expected
    # the data window judged, in the city's time, and the forecasts' step and reach
    run = query(city.url, "SELECT data_start, data_end, step_seconds, horizon FROM forecast_runs "
                "WHERE stream = 'occupancy' ORDER BY run_id DESC LIMIT 1")[0]  # fmt: skip
    zone = ZoneInfo("Europe/Copenhagen")
    caption = "\n".join(c.value for c in at.caption)
    assert f"fitted on the data from {run[0].astimezone(zone):%a %d %b %Y %H:%M}" in caption
    judged_from = run[1] - timedelta(seconds=run[2] * run[3])  # the job judges one origin
    assert (
        f"one origin: the forecasts from {judged_from.astimezone(zone):%a %d %b %H:%M} to "
        f"{run[1].astimezone(zone):%a %d %b %H:%M %Z}"
    ) in caption
    assert f"every {run[2] // 60} min up to {run[2] * run[3] // 3600} h ahead" in caption
    # coverage per step: one row per horizon step, in minutes and hours
    coverage = at.dataframe[4].value
    assert len(coverage) == run[3]
    assert coverage["ahead"].iloc[0] == f"{run[2] // 60} min" and coverage["ahead"].iloc[-1] == (
        f"{run[2] * run[3] // 3600} h"
    )
    per_step = dict(query(
        city.url,
        "SELECT b.step, b.coverage80 FROM backtest_results b WHERE b.series_id = '' AND b.step > 0 "
        "AND b.model = %s AND b.run_id = (SELECT max(run_id) FROM forecast_runs "
        "WHERE stream = 'occupancy')", (rows[0][0],),
    ))  # fmt: skip
    assert list(coverage[rows[0][0]]) == pytest.approx([per_step[k] for k in sorted(per_step)])

    at.radio(key="errors_in").set_value("% of capacity").run()
    assert not at.exception
    [(share,)] = query(
        city.url,
        "SELECT %s / (sum(l.capacity * b.points)::float8 / sum(b.points)) * 100 "
        "FROM backtest_results b JOIN lots l ON l.lot_id = b.series_id WHERE b.step = 0 "
        "AND b.model = %s AND b.run_id = (SELECT max(run_id) FROM forecast_runs "
        "WHERE stream = 'occupancy')", (rows[0][1], rows[0][0]),
    )  # fmt: skip
    assert metrics(at)["Its MAE"] == f"{share:.1f} % of capacity"

    at.radio[0].set_value("Traffic flow").run()
    assert not at.exception
    assert len(at.dataframe[2].value) >= 1
    [(flow_mae, step_s)] = query(
        city.url,
        "SELECT b.mae, r.step_seconds FROM backtest_results b JOIN forecast_runs r USING (run_id) "
        "WHERE b.series_id = '' AND b.step = 0 AND b.model = %s AND b.run_id = "
        "(SELECT max(run_id) FROM forecast_runs WHERE stream = 'flow')",
        (metrics(at)["Best model"],),
    )  # fmt: skip
    assert metrics(at)["Its MAE"] == f"{flow_mae * 3600 / step_s:.1f} vehicles/h"
    at.radio[0].set_value("Traffic speed").run()
    assert not at.exception
    assert metrics(at)["Its MAE"].endswith(" km/h")


def test_devices_page_counts_health_rejections_and_stale_data(app: Run, city: City) -> None:
    at = app("devices")
    shown = metrics(at)
    devices, offline = len(city.filled.devices), len(city.filled.offline)
    assert number(shown["Online"]) == devices - offline
    assert number(shown["Offline"]) == offline
    assert number(shown["Never seen"]) == 0
    assert number(shown["Low battery"]) == 1
    assert number(shown["Dropped readings"]) == 1
    # Devices in trouble first, worst first; then every device (no agent health in this city).
    troubled, others = at.dataframe[0].value, at.dataframe[1].value
    assert len(others) == devices
    assert number(shown["In trouble"]) == len(troubled) == offline + 2
    assert set(troubled["device_id"][:offline]) == set(city.filled.offline)
    said = dict(zip(troubled["device_id"], troubled["trouble"], strict=True))
    assert said[city.filled.devices[1]] == "battery low (3.10 V)"
    assert said[city.filled.devices[2]] == "dropped 12 readings at its cap"
    assert all(said[device] == "offline" for device in city.filled.offline)
    reasons = at.dataframe[2].value.set_index("reason_code")["messages"].to_dict()
    assert reasons == {"bad_payload": 2, "out_of_range": 1}
    examples = at.dataframe[3].value
    assert "{not json" in set(examples["payload"])
    [(stale,)] = query(
        city.url,
        # a lot counts as heard from while any of its online sensors sent anything recently
        "SELECT (SELECT count(*) FROM lots l LEFT JOIN lot_live n USING (lot_id) "
        "  WHERE n.observed_at IS NULL OR greatest(n.observed_at, ("
        "    SELECT max(s.last_seen_at) FROM device_state s WHERE s.online AND s.device_id IN ("
        "      SELECT device_id FROM spots WHERE lot_id = l.lot_id UNION "
        "      SELECT device_id FROM devices WHERE lot_id = l.lot_id)))"
        "    < now() - interval '900 seconds') + "
        "(SELECT count(*) FROM segments s LEFT JOIN segment_now n USING (segment_id) "
        "  WHERE n.bucket IS NULL OR n.bucket + interval '5 minutes' < now() - "
        "  interval '900 seconds')",
    )
    assert number(shown["Stale lots and segments"]) == stale


def test_export_offers_the_rows_behind_the_chart_in_both_formats(app: Run, city: City) -> None:
    at = app("export")
    lots = [lot for (lot,) in query(city.url, "SELECT lot_id FROM lots ORDER BY lot_id LIMIT 5")]
    [(rows,)] = query(city.url, "SELECT count(*) FROM occupancy_1h WHERE lot_id = ANY(%s)", (lots,))
    assert f"{rows:,} rows" in at.caption[0].value
    assert at.get("download_button")[0].proto.label == "Download occupancy_history.csv"
    at.radio(key="format").set_value("Parquet").run()
    assert at.get("download_button")[0].proto.label == "Download occupancy_history.parquet"
    at.selectbox(key="dataset").set_value("Rejected messages by reason").run()
    assert not at.exception
    assert "3 rows" not in at.caption[0].value  # two reasons, not three messages
    assert "2 rows" in at.caption[0].value


def test_login_is_required_when_an_oidc_provider_is_configured(city: City, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.dashboard.conftest import ENTRY

    monkeypatch.setenv("STREETSENSE_DATABASE_URL", city.url)
    at = AppTest.from_file(str(ENTRY), default_timeout=60)
    at.secrets["auth"] = {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "test-only",
        "client_id": "dashboard",
        "client_secret": "test-only",
        "server_metadata_url": "https://login.example.invalid/.well-known/openid-configuration",
    }
    at.run()
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric  # no figures before signing in


def chart_data(at: AppTest, index: int) -> dict[str, pd.DataFrame]:
    """Return the data sets of one Vega-Lite chart by their first column set."""
    proto = at.get("vega_lite_chart")[index].proto
    frames = [pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in proto.datasets]
    return {",".join(f.columns[:3]): f for f in frames}


def test_parking_history_carries_the_latest_forecast_and_its_band(app: Run, city: City) -> None:
    at = app("parking")
    chosen = sorted(at.multiselect(key="lots").value)
    data = chart_data(at, 0)
    forecast = data["lot_id,at,yhat"].sort_values(["lot_id", "at"]).reset_index(drop=True)
    rows = query(
        city.url,
        "SELECT f.series_id, f.yhat / l.capacity, f.lo80 / l.capacity, f.hi80 / l.capacity "
        "FROM forecasts f JOIN lots l ON l.lot_id = f.series_id WHERE f.run_id = "
        "(SELECT max(run_id) FROM forecast_runs WHERE stream = 'occupancy') "
        "AND f.series_id = ANY(%s) ORDER BY f.series_id, f.at",
        (chosen,),
    )
    live = dict(query(city.url, "SELECT lot_id, occupancy FROM lot_live WHERE lot_id = ANY(%s)",
                      (chosen,)))  # fmt: skip
    assert len(forecast) > 0 and set(forecast["lot_id"]) <= set(chosen)
    anchored = 0
    for lot, shown in forecast.groupby("lot_id"):
        stored = [r[1] for r in rows if r[0] == lot]
        if shown["anchored"].any():
            # starts from the live count, then as many stored steps as lie ahead of it
            anchored += 1
            assert shown["yhat"].iloc[0] == pytest.approx(min(live[lot], 1.0))
            assert len(shown) - 1 <= len(stored)
        else:
            assert list(shown["yhat"]) == pytest.approx([max(v, 0.0) for v in stored])
    assert anchored > 0  # the simulated lots report now
    assert (forecast["lo80"] <= forecast["yhat"]).all()
    assert (forecast["yhat"] <= forecast["hi80"]).all()
    assert forecast[["lo80", "yhat", "hi80"]].stack().between(0, 1).all()
    history = data["lot_id,bucket,occupied"]
    [(buckets,)] = query(
        city.url, "SELECT count(*) FROM occupancy_1h WHERE lot_id = ANY(%s)", (chosen,)
    )
    assert len(history) == buckets


def test_custom_dates_are_local_days_and_pick_their_tier(app: Run, city: City) -> None:
    at = app("parking")
    at.selectbox(key="range").set_value("Custom dates").run()
    today = datetime.now(UTC).astimezone(ZoneInfo("Europe/Copenhagen")).date()
    at.date_input(key="dates").set_value((today - timedelta(days=1), today)).run()
    assert not at.exception
    # Two local days read the 5-minute tier; the chart holds exactly those buckets.
    assert "data at 5m resolution" in " ".join(c.value for c in at.caption)
    chosen = sorted(at.multiselect(key="lots").value)
    zone = ZoneInfo("Europe/Copenhagen")
    start = datetime.combine(today - timedelta(days=1), datetime.min.time(), zone)
    [(buckets,)] = query(
        city.url,
        "SELECT count(*) FROM occupancy_5m WHERE lot_id = ANY(%s) AND bucket >= %s AND bucket < %s",
        (chosen, start, start + timedelta(days=2)),
    )
    assert len(chart_data(at, 0)["lot_id,bucket,occupied"]) == buckets > 0


def test_export_keeps_the_chosen_resolution_that_charts_would_coarsen(app: Run, city: City) -> None:
    at = app("export")
    at.selectbox(key="range").set_value("Last 365 days")
    at.selectbox(key="resolution").set_value("5 minutes").run()
    # The charts would read daily buckets for a year; the download keeps every 5 minutes.
    assert "data at 1d resolution" in " ".join(c.value for c in at.sidebar.caption)
    lots = [lot for (lot,) in query(city.url, "SELECT lot_id FROM lots ORDER BY lot_id LIMIT 5")]
    [(rows,)] = query(city.url, "SELECT count(*) FROM occupancy_5m WHERE lot_id = ANY(%s)", (lots,))
    assert f"{rows:,} rows" in at.caption[0].value


def test_parking_says_what_is_free_per_category_and_an_operator_can_close_a_lot(
    app: Run, city: City
) -> None:
    at = app("parking")
    street = [lot for (lot,) in query(city.url, "SELECT lot_id FROM lots WHERE kind = "
                                      "'on_street' ORDER BY lot_id")]  # fmt: skip
    lot = street[0]
    at.multiselect(key="lots").set_value([lot]).run()
    status = at.dataframe[1].value.set_index("lot_id")
    assert status.loc[lot, "status"] == "open"
    # the zone's first space is for disabled drivers: its sensor's latest state says it all
    (taken,) = query(
        city.url,
        "SELECT r.value FROM spots s JOIN LATERAL (SELECT value FROM readings WHERE "
        "device_id = s.device_id AND kind = 'occupied' AND sub_id = s.sensor ORDER BY "
        "observed_at DESC LIMIT 1) r ON true WHERE s.lot_id = %s AND s.category = 'disabled'",
        (lot,),
    )[0]
    free = 1 - int(taken)
    expected = f"{free} disabled {'space' if free == 1 else 'spaces'} free"
    assert expected in status.loc[lot, "spaces"]
    assert any(expected in caption.value for caption in at.caption)
    at.radio(key="override_action").set_value("Close").run()
    at.text_input(key="override_reason").input("burst water main").run()
    at.text_input(key="override_by").input("K. Planner").run()
    at.button(key="override_apply").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    closed = at.dataframe[1].value.set_index("lot_id")
    at.run()  # the table above was drawn before the button's action: a rerun shows it
    closed = at.dataframe[1].value.set_index("lot_id")
    assert closed.loc[lot, "status"] == "closed" and closed.loc[lot, "reason"] == "burst water main"
    assert closed.loc[lot, "free"] is None or closed.loc[lot, "free"] != closed.loc[lot, "free"]
    assert "disabled: closed" in closed.loc[lot, "spaces"]
    audit = query(
        city.url,
        "SELECT actor, via, status, reason FROM lot_status_audit "
        "WHERE via = 'dashboard' AND lot_id = %s",
        (lot,),
    )
    assert audit == [("K. Planner", "dashboard", "closed", "burst water main")]
    query(city.url, "DELETE FROM lot_status_overrides WHERE lot_id = %s RETURNING lot_id", (lot,))
