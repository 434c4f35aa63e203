"""Parking: occupancy with forecast, hour-of-week pattern, turnover, pressure, comparison."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from dashboard import charts, controls, data, tables

PRESSURE = 0.85
AHEAD = timedelta(days=1)

url, settings = data.page_context()
span = controls.time_range(settings.city.timezone)
st.title("Parking")

lots_now = data.lots_now(url)
search, area, kind = st.columns([2, 1, 1])
text = search.text_input("Search lots", placeholder="name or id", key="lot_search")
areas = area.multiselect("Area", sorted(a for a in lots_now["area"].unique() if a), key="lot_areas")
kinds = kind.multiselect("Kind", ["off_street", "on_street"], key="lot_kinds")
names = dict(zip(lots_now["lot_id"], lots_now["name"], strict=True))
candidates = tables.filter_places(lots_now, "lot_id", text, areas, kinds)
chosen = st.multiselect(
    "Lots", list(candidates["lot_id"]), default=list(candidates["lot_id"].head(3)),
    format_func=lambda lot: names.get(lot, lot),
    max_selections=12, key="lots",
)  # fmt: skip
if not chosen:
    st.info("Pick one or more lots to see their history.")
    st.stop()
lot_ids = tuple(sorted(chosen))
zone = settings.city.timezone

st.subheader("Occupancy")
history = data.occupancy(url, lot_ids, span.start, span.end, span.tier)
ahead = tables.forecast_as_occupancy(
    data.forecast(url, "occupancy", lot_ids, span.end - AHEAD, span.end + AHEAD), lots_now
)
st.altair_chart(
    charts.series_with_forecast(
        controls.local(history, ["bucket"], zone),
        controls.local(ahead.rename(columns={"series_id": "lot_id"}), ["at"], zone),
        series="lot_id", value="occupancy", title="occupancy", axis_format="%",
    ),
    width="stretch",
)  # fmt: skip
if ahead.empty:
    st.caption("No forecast stored yet for these lots.")

turnover_start = max(span.start, span.end - data.TURNOVER_WINDOW)
summary = tables.lot_summary(
    data.time_above(url, lot_ids, span.start, span.end, PRESSURE),
    data.turnover(url, lot_ids, turnover_start, span.end),
    lots_now,
)
st.subheader("Parking pressure and turnover")
st.dataframe(summary, hide_index=True, column_config=tables.LOT_SUMMARY_COLUMNS)
st.caption(
    f"Time above {PRESSURE:.0%}: share of {tables.pressure_bucket(span.start, span.end)} "
    "buckets at or above it. Turnover (arrivals per sensed spot per day) and dwell come from spot "
    f"sensors over the last {(span.end - turnover_start) / timedelta(hours=1):.0f} h of the range."
)

heat, compare = st.columns(2)
with heat:
    st.subheader("Hour of week")
    st.altair_chart(
        charts.hour_of_week(data.hour_of_week(url, lot_ids, span.start, span.end, zone)),
        width="stretch",
    )
with compare:
    st.subheader("Comparison")
    st.altair_chart(charts.lot_comparison(summary), width="stretch")
