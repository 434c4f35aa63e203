"""Parking: occupancy with forecast, hour-of-week pattern, turnover, pressure, comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboard import access, charts, controls, data, lot_status, tables
from streetsense.errors import RegistryError
from streetsense.hours import OpeningStatus
from streetsense.lot_status import StatusOverride

PRESSURE = 0.85
AHEAD = timedelta(days=1)
WEEKS = timedelta(days=28)

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
        series="lot_id", value="occupancy", title="occupancy", axis_format="%", names=names,
        zone=zone,
    ),
    width="stretch",
)  # fmt: skip
missing = tables.without_forecast(
    lot_ids, ahead["series_id"], data.forecast_skips(url, "occupancy", lot_ids), names
)
if missing:
    st.caption(f"No forecast for {missing}.")

turnover_start = max(span.start, span.end - data.TURNOVER_WINDOW)
summary = tables.lot_summary(
    data.time_above(url, lot_ids, span.start, span.end, PRESSURE),
    data.turnover(url, lot_ids, turnover_start, span.end),
    lots_now,
)
st.subheader("Parking pressure and turnover")
st.dataframe(summary, hide_index=True, column_config=tables.LOT_SUMMARY_COLUMNS, placeholder="-")
st.caption(
    f"Time above {PRESSURE:.0%}: share of {tables.pressure_bucket(span.start, span.end)} "
    "buckets at or above it. Turnover (arrivals per sensed spot per day) and dwell come from spot "
    f"sensors over the last {(span.end - turnover_start) / timedelta(hours=1):.0f} h of the range."
)

heat, compare = st.columns(2)
with heat:
    st.subheader("Hour of week")
    # A range shorter than a week leaves most weekdays empty: the pattern is taken over the
    # four weeks to the range's end then, and the caption says so.
    week_start = min(span.start, span.end - WEEKS)
    st.altair_chart(
        charts.hour_of_week(data.hour_of_week(url, lot_ids, week_start, span.end, zone)),
        width="stretch",
    )
    if week_start < span.start:
        st.caption(f"Mean of each hour over the {WEEKS.days} days to the range's end "
                   f"({zone} time): a shorter range cannot fill every weekday.")  # fmt: skip
with compare:
    st.subheader("Comparison")
    st.altair_chart(charts.lot_comparison(summary), width="stretch")

# --- Opening status and spaces per category; an operator closes or opens a lot ---
st.subheader("Opening status and spaces")
now = datetime.now(UTC)
status = lot_status.status_table(
    data.lot_details(url, lot_ids), data.category_now(url, lot_ids), lots_now,
    data.live_counts(url, lot_ids), data.overrides(url), now, zone, settings.city.country,
)  # fmt: skip
st.dataframe(status, hide_index=True, column_config=lot_status.STATUS_COLUMNS)
for row in status.itertuples(index=False):
    if row.spaces:
        st.caption(f"{row.name}: {row.spaces}")
st.caption(
    "A closed lot shows no free count: it is closed, not full. Opening hours come from the "
    "registry (OpenStreetMap syntax, in the city's time zone); an operator's decision below "
    "overrides them until it ends or is cleared."
)

with st.expander("Close or open a lot (operators)"):
    target = st.selectbox(
        "Lot", lot_ids, format_func=lambda lot: names.get(lot, lot), key="override_lot"
    )
    action = st.radio(
        "Action", ["Close", "Open", "Clear override"], horizontal=True, key="override_action"
    )
    reason = st.text_input(
        "Reason (published with the status: no personal data)", key="override_reason"
    )
    hours = st.number_input(
        "For how many hours (0: until cleared)", 0.0, 24.0 * 366, 0.0, 0.5, key="override_hours"
    )
    actor = access.signed_in_as() or st.text_input("Your name (audited)", key="override_by")
    if st.button("Apply", key="override_apply"):
        try:
            if action == "Clear override":
                data.clear_override(url, target, actor, reason or "override cleared", now)
            else:
                decided = OpeningStatus.CLOSED if action == "Close" else OpeningStatus.OPEN
                until = now + timedelta(hours=hours) if hours else None
                data.set_override(url, StatusOverride(target, decided, reason, actor, now, until))
            st.success(f"{names.get(target, target)}: {action.lower()} recorded by {actor}")
        except RegistryError as exc:
            st.error(str(exc))
    st.dataframe(data.override_audit(url, 20), hide_index=True)
