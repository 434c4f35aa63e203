"""Traffic: flow and speed with forecast, peak hours, congestion ranking, fundamental diagram."""

from __future__ import annotations

from datetime import timedelta

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
ahead = data.forecast(url, "flow", segment_ids, span.end - AHEAD, span.end + AHEAD)
ahead = controls.local(ahead.rename(columns={"series_id": "segment_id"}), ["at"], zone)
flow_chart, speed_chart = st.columns(2)
with flow_chart:
    st.subheader("Flow")
    st.altair_chart(
        charts.series_with_forecast(history, ahead, series="segment_id", value="flow_vph",
                                    title="vehicles per hour", names=names, zone=zone),
        width="stretch",
    )  # fmt: skip
with speed_chart:
    st.subheader("Speed")
    st.altair_chart(
        charts.series_with_forecast(history, ahead.iloc[0:0], series="segment_id",
                                    value="mean_speed", title="mean speed (km/h)", names=names,
                                    zone=zone),
        width="stretch",
    )  # fmt: skip
st.subheader("Flow: the last hours and the forecast")
# Over a week the forecast's few hours are a sliver at the chart's edge: here they get the
# width they need, beside the 5-minute history that leads into them.
recent = controls.local(data.flow(url, segment_ids, span.end - AHEAD, span.end, "5m"),
                        ["bucket"], zone)  # fmt: skip
st.altair_chart(
    charts.series_with_forecast(recent, ahead[ahead["at"] >= span.end - AHEAD],
                                series="segment_id", value="flow_vph",
                                title="vehicles per hour", names=names, zone=zone),
    width="stretch",
)  # fmt: skip
if ahead.empty:
    st.caption("No forecast stored yet for these segments.")
else:
    st.caption("Dashed: the latest forecast; shaded: its 80% band.")

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
