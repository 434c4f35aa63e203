"""City now: the map of lots and roads and the four figures a planner checks first."""

from __future__ import annotations

from urllib.parse import urlsplit

import streamlit as st

from dashboard import basemap, charts, controls, data, lot_status, tables
from streetsense.errors import ServiceUnavailableError

REFRESH_S = 30
FULL_AT = 0.9

url, settings = data.page_context()
zone = settings.city.timezone
st.title(f"{settings.city.name}: now")
st.caption(f"Times in {zone} (the city's time zone, setting city.timezone).")


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
    style = basemap.style_url(settings.dashboard.map_style)
    st.pydeck_chart(charts.city_map(lots_now, segments_now, alerts, map_style=style), height=480)
    if style is None or not data.map_style_answers(style):
        st.caption(base_map_note(style))
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
        st.dataframe(
            tables.fullest_lots(controls.local(lots_now, ["observed_at"], zone)).head(15),
            hide_index=True,
            column_config={
                "name": st.column_config.TextColumn("lot"),
                "taken": st.column_config.TextColumn("taken", help="occupied of all spaces"),
                "full": tables.share_column("full"),
                "observed_at": controls.when("as of"),
            },
        )
    with slowest:
        st.subheader("Slowest roads")
        st.dataframe(
            tables.slowest_roads(controls.local(segments_now, ["bucket"], zone)).head(15),
            hide_index=True,
            column_config={
                "name": st.column_config.TextColumn("road"),
                "of_limit": tables.share_column(
                    "of limit", help="mean speed over the speed limit: the list's order"
                ),
                "speed": st.column_config.TextColumn("speed", help="mean speed / speed limit"),
                "bucket": controls.when("5 min from"),
            },
        )


def base_map_note(style: str | None) -> str:
    """Say why the map may have no streets under it, and which setting gives it some."""
    where = "No base map is set" if style is None else (
        f"The base map ({urlsplit(style).hostname}) did not answer from the dashboard's host: "
        "if your browser cannot reach it either, the map shows only what the registry knows"
    )  # fmt: skip
    return (
        f"{where} (area outlines, roads, lots). For streets underneath, set dashboard.map_style "
        "(STREETSENSE_DASHBOARD_MAP_STYLE) to a MapLibre style your planners' browsers reach, "
        "e.g. your city's tile server's style.json."
    )


now_view()
