"""Traffic: flow and speed with forecast, peak hours, congestion ranking, fundamental diagram."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, controls, data, tables

RANKED = 20
AHEAD = timedelta(hours=6)

url, settings = data.page_context()
span = controls.time_range(settings.city.timezone)
zone = settings.city.timezone
st.title("Traffic")

segments_now = data.segments_now(url)
search, area = st.columns([2, 1])
text = search.text_input("Search roads", placeholder="name or id", key="segment_search")
areas = area.multiselect(
    "Area", sorted(a for a in segments_now["area"].unique() if a), key="segment_areas"
)
candidates = tables.filter_places(segments_now, "segment_id", text, areas, [])
names = dict(zip(segments_now["segment_id"], segments_now["name"], strict=True))
chosen = st.multiselect(
    "Road segments", list(candidates["segment_id"]),
    default=list(candidates["segment_id"].head(3)), max_selections=12,
    format_func=lambda segment: names.get(segment, segment), key="segments",
)  # fmt: skip
if not chosen:
    st.info("Pick one or more road segments to see their traffic.")
    st.stop()
segment_ids = tuple(sorted(chosen))

history = controls.local(data.flow(url, segment_ids, span.start, span.end, span.tier), ["bucket"],
                         zone)  # fmt: skip


def ahead_of(stream: str) -> pd.DataFrame:
    """Return a stream's forecast of the chosen segments around the end of the range."""
    frame = data.forecast(url, stream, segment_ids, span.end - AHEAD, span.end + AHEAD)
    return controls.local(frame.rename(columns={"series_id": "segment_id"}), ["at"], zone)


flow_ahead, speed_ahead = ahead_of("flow"), ahead_of("speed")
PANELS = (("Flow", "flow_vph", "vehicles per hour", flow_ahead),
          ("Speed", "mean_speed", "mean speed (km/h)", speed_ahead))  # fmt: skip
for column, (label, value, title, ahead) in zip(st.columns(2), PANELS, strict=True):
    with column:
        st.subheader(label)
        st.altair_chart(
            charts.series_with_forecast(history, ahead, series="segment_id", value=value,
                                        title=title, names=names, zone=zone),
            width="stretch",
        )  # fmt: skip
st.subheader("The last hours and the forecast")
# Over a week the forecast's few hours are a sliver at the chart's edge: here they get the
# width they need, beside the 5-minute history that leads into them.
recent = controls.local(data.flow(url, segment_ids, span.end - AHEAD, span.end, "5m"),
                        ["bucket"], zone)  # fmt: skip
for column, (_label, value, title, ahead) in zip(st.columns(2), PANELS, strict=True):
    with column:
        st.altair_chart(
            charts.series_with_forecast(recent, ahead[ahead["at"] >= span.end - AHEAD],
                                        series="segment_id", value=value, title=title,
                                        names=names, zone=zone),
            width="stretch",
        )  # fmt: skip
for stream, ahead in (("flow", flow_ahead), ("speed", speed_ahead)):
    missing = tables.without_forecast(
        segment_ids, ahead["segment_id"], data.forecast_skips(url, stream, segment_ids), names
    )
    if missing:
        st.caption(f"No {stream} forecast for {missing}.")
if flow_ahead.empty and speed_ahead.empty:
    st.caption("No forecast stored yet for these segments.")
else:
    st.caption(
        "Dashed: the latest forecast; shaded: its 80% band. It starts from each road's latest "
        "5-minute interval: the forecast is shifted to agree with it, the difference fading "
        "as the road's own departures from its usual pattern do. The table: speed in km/h and "
        "flow in vehicles per hour expected ahead, the 80% band in brackets."
    )
    st.dataframe(
        tables.traffic_ahead(flow_ahead, speed_ahead, names), hide_index=True,
        column_config=tables.TRAFFIC_AHEAD_COLUMNS,
    )  # fmt: skip

profile, diagram = st.columns(2)
with profile:
    st.subheader("Peak hours")
    peaks = data.peak_profile(url, segment_ids, span.start, span.end, zone)
    st.altair_chart(charts.peak_profile(peaks), width="stretch")
with diagram:
    st.subheader("Speed against flow")
    one = st.selectbox(
        "Segment", segment_ids, format_func=lambda segment: names.get(segment, segment)
    )
    st.altair_chart(
        charts.fundamental_diagram(history[history["segment_id"] == one]),
        width="stretch",
    )

st.subheader("Congestion ranking")
ranking = data.congestion(url, span.start, span.end, span.tier, RANKED)
st.dataframe(
    ranking, hide_index=True,
    column_config={
        "share_congested": st.column_config.ProgressColumn("time congested", format="percent",
                                                           min_value=0, max_value=1),
        "mean_speed_ratio": st.column_config.NumberColumn("speed / limit", format="%.2f"),
        "vehicles": st.column_config.NumberColumn(format="%.0f"),
    },
)  # fmt: skip
st.caption("Congested: mean speed below half the speed limit in a bucket.")
