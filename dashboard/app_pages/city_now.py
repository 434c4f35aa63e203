"""City now: the map of lots and roads and the four figures a planner checks first."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, controls, data, lot_status
from streetsense.errors import ServiceUnavailableError

REFRESH_S = 30
FULL_AT = 0.9

url, settings = data.page_context()
zone = settings.city.timezone
st.title(f"{settings.city.name}: now")


@st.fragment(run_every=REFRESH_S)
def now_view() -> None:
    """Re-run alone every REFRESH_S seconds; a fragment keeps its errors to itself."""
    try:
        render_now()
    except ServiceUnavailableError as exc:
        st.error(str(exc), icon=":material/cloud_off:")


def render_now() -> None:
    """Render the KPIs, the map and the lists."""
    kpis = data.city_kpis(url)
    closed = data.closed_lots(url, zone, settings.city.country)
    lots_now = lot_status.without_closed(data.lots_now(url), closed)
    segments_now = data.segments_now(url)
    spaces, full, congested, offline = st.columns(4)
    free_now, full_now = lot_status.parking_kpis(lots_now, closed, FULL_AT)
    spaces.metric("Spaces free", f"{free_now:,}", help="in the open lots")
    full.metric(
        "Lots above 90%", f"{full_now}",
        help=f"of the open lots reporting now ({len(closed)} closed: closed is not full)",
    )  # fmt: skip
    congested.metric(
        "Segments congested", f"{int(kpis['segments_congested'])}",
        help="speed below half the speed limit in the latest 5 minutes",
    )  # fmt: skip
    offline.metric(
        "Sensors offline", f"{int(kpis['devices_offline'])}",
        help=f"of {int(kpis['devices'])} active devices, including never seen",
    )  # fmt: skip
    alerts = data.alerts_on_map(url)
    st.pydeck_chart(charts.city_map(lots_now, segments_now, alerts), height=480)
    st.caption(
        "Lots: green empty to red full (grey: no data, or closed), live from each sensor's "
        "newest reading, counted as the open feeds count them. Roads: green at the speed limit "
        "to red at standstill, from the latest complete 5-minute interval the analytics job has "
        f"rolled up (every {settings.analytics.interval_s // 60} min). Rings: active alerts "
        f"({len(alerts)} places; see Alerts). This view re-reads all of it every {REFRESH_S} s."
    )
    fullest, slowest = st.columns(2)
    with fullest:
        st.subheader("Fullest lots")
        shown = controls.local(lots_now[lots_now["occupancy"].notna()], ["observed_at"], zone)
        st.dataframe(
            shown[["name", "area", "capacity", "occupied", "occupancy", "observed_at"]].head(15),
            hide_index=True,
            column_config={
                "occupancy": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                             max_value=1),
                "occupied": st.column_config.NumberColumn(format="%.0f"),
            },
        )  # fmt: skip
    with slowest:
        st.subheader("Slowest roads")
        shown = controls.local(segments_now, ["bucket"], zone)
        st.dataframe(
            shown[["name", "mean_speed", "speed_limit_kmh", "vehicle_count", "bucket"]].head(15),
            hide_index=True,
            column_config={"mean_speed": st.column_config.NumberColumn(format="%.0f km/h")},
        )


now_view()
