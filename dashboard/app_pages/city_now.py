"""City now: the map of lots and roads and the four figures a planner checks first."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, controls, data
from streetsense.errors import ServiceUnavailableError

REFRESH_S = 30

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
    lots_now = data.lots_now(url)
    segments_now = data.segments_now(url)
    spaces, full, congested, offline = st.columns(4)
    spaces.metric("Spaces free", f"{round(kpis['spaces_free']):,}")
    full.metric("Lots above 90%", f"{int(kpis['lots_full'])}", help="of the lots reporting now")
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
        "Lots: green empty to red full (grey: no data). Roads: green at the speed limit to "
        f"red at standstill. Rings: active alerts ({len(alerts)} places; see Alerts). "
        f"Refreshed every {REFRESH_S} s."
    )
    fullest, slowest = st.columns(2)
    with fullest:
        st.subheader("Fullest lots")
        shown = controls.local(lots_now, ["observed_at"], zone)
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
