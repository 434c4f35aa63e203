"""Chart builders: pure functions from DataFrames to Altair charts and pydeck maps.

Altair is untyped, so each builder names its result's type once on assignment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import altair as alt
import pandas as pd
import pydeck as pdk

from dashboard.basemap import area_outlines

WEEKDAYS: Final = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
GREY: Final = [150, 150, 150, 160]
# Strong, distinct hues: the default blues are hard to tell apart for a few series.
PALETTE: Final = alt.Scale(scheme="tableau10")


def ramp(value: float | None, *, good_high: bool) -> list[int]:
    """Return an RGBA colour from green (good) through amber to red (bad) for a 0..1 value."""
    if value is None or pd.isna(value):
        return GREY
    bad = 1.0 - value if good_high else value
    bad = min(max(float(bad), 0.0), 1.0)
    red = int(255 * min(1.0, 2 * bad))
    green = int(255 * min(1.0, 2 * (1 - bad)))
    return [red, green, 60, 200]


AREA_FILL: Final = [120, 140, 170, 28]
AREA_LINE: Final = [90, 100, 120, 160]


def city_map(
    lots_now: pd.DataFrame,
    segments_now: pd.DataFrame,
    alerts: pd.DataFrame | None = None,
    *,
    map_style: str | None = "light",
) -> pdk.Deck:
    """Map lots coloured by occupancy and segments by speed relative to free flow; places
    with active alerts get a ring in their most severe alert's colour.

    Underneath, each area's outline and name from the registry: the base that stays when the
    tile server (`map_style`, a MapLibre style URL or a Carto name) cannot be reached.
    """
    lots = lots_now.assign(
        color=[ramp(v, good_high=False) for v in lots_now["occupancy"]],
        radius=(lots_now["capacity"].astype(float) ** 0.5) * 8 + 20,
        label=[_lot_label(r) for r in lots_now.itertuples()],
    )
    paths = segments_now.assign(
        path=[_coordinates(c) for c in segments_now["coordinates"]],
        color=[ramp(v, good_high=True) for v in segments_now["speed_ratio"]],
        label=[_segment_label(r) for r in segments_now.itertuples()],
    )[["path", "color", "label", "area"]]
    areas = area_outlines(lots, paths)
    layers = [
        pdk.Layer("PolygonLayer", areas, id="areas", get_polygon="outline",
                  get_fill_color=AREA_FILL, get_line_color=AREA_LINE, line_width_min_pixels=1,
                  stroked=True, filled=True),
        pdk.Layer("TextLayer", areas, id="area-names", get_position=["lon", "lat"],
                  get_text="area", get_size=13, get_color=[70, 80, 100],
                  get_text_anchor='"middle"', get_alignment_baseline='"bottom"'),
        pdk.Layer("PathLayer", paths[["path", "color", "label"]], get_path="path",
                  get_color="color", width_min_pixels=4, pickable=True),
        pdk.Layer("ScatterplotLayer", lots[["lon", "lat", "color", "radius", "label"]],
                  get_position=["lon", "lat"], get_fill_color="color", get_radius="radius",
                  pickable=True, stroked=True, get_line_color=[40, 40, 40],
                  line_width_min_pixels=1),
    ]  # fmt: skip
    if alerts is not None and not alerts.empty:
        layers.append(_alert_layer(alerts))
    view = _view(lots, paths)
    return pdk.Deck(layers=layers, initial_view_state=view, tooltip={"text": "{label}"},
                    map_style=map_style)  # fmt: skip


ALERT_COLOURS = {"critical": [200, 0, 0], "warning": [240, 130, 0], "info": [30, 100, 220]}


def _alert_layer(alerts: pd.DataFrame) -> pdk.Layer:
    placed = alerts.dropna(subset=["lon", "lat"])
    rings = placed.assign(
        color=[ALERT_COLOURS.get(s, [120, 120, 120]) for s in placed["severity"]],
        # around a lot's own circle (same size rule as city_map), or a road's middle
        radius=[(float(c) ** 0.5) * 8 + 55 if pd.notna(c) else 60.0 for c in placed["capacity"]],
        label=[f"{n} alert(s): {s}" for n, s in placed[["alerts", "summary"]].itertuples(
            index=False)],
    )[["lon", "lat", "color", "radius", "label"]]  # fmt: skip
    return pdk.Layer("ScatterplotLayer", rings, id="alerts", get_position=["lon", "lat"],
                     get_radius="radius", radius_min_pixels=9, filled=False, stroked=True,
                     get_line_color="color", line_width_min_pixels=3, pickable=True)  # fmt: skip


def _coordinates(raw: Any) -> list[list[float]]:
    points = json.loads(raw) if isinstance(raw, str) else raw
    return [[float(lon), float(lat)] for lon, lat in points]


def _lot_label(row: Any) -> str:
    if pd.isna(row.occupancy):
        return f"{row.name}: no data"
    return f"{row.name}: {row.occupancy:.0%} of {row.capacity} spaces"


def _segment_label(row: Any) -> str:
    if pd.isna(row.mean_speed):
        return f"{row.name}: no data"
    return f"{row.name}: {row.mean_speed:.0f} km/h (limit {row.speed_limit_kmh:.0f})"


def _view(lots: pd.DataFrame, paths: pd.DataFrame) -> pdk.ViewState:
    lons = list(lots["lon"]) + [p[0] for path in paths["path"] for p in path]
    lats = list(lots["lat"]) + [p[1] for path in paths["path"] for p in path]
    if not lons:
        return pdk.ViewState(latitude=0, longitude=0, zoom=1)
    return pdk.ViewState(
        latitude=(min(lats) + max(lats)) / 2, longitude=(min(lons) + max(lons)) / 2, zoom=12
    )


UTC_SCALE: Final = alt.Scale(type="utc")


def wall_clock(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Return the frame with a zone-aware time column as its wall-clock time labelled UTC.

    Vega draws times in the browser's zone; the city's local time, labelled UTC and drawn on
    a UTC scale, shows the same hours on every planner's screen.
    """
    times = pd.to_datetime(frame[column])
    if times.dt.tz is not None:
        times = times.dt.tz_localize(None)
    return frame.assign(**{column: times.dt.tz_localize("UTC")})


def time_axis(times: pd.Series, zone: str) -> alt.Axis:
    """Return a time axis whose labels fit the span shown: hours for a day, dates beyond."""
    span = (times.max() - times.min()) if len(times) else pd.Timedelta(0)
    if span <= pd.Timedelta(days=2):
        label = "%a %H:%M"
    elif span <= pd.Timedelta(days=16):
        label = "%a %d %b"
    else:
        label = "%d %b"
    return alt.Axis(format=label, title=f"{zone} time", labelOverlap=True)


def series_with_forecast(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    *,
    series: str,
    value: str,
    title: str,
    axis_format: str = "",
    names: Mapping[str, str] | None = None,
    zone: str = "",
) -> alt.LayerChart | alt.FacetChart:
    """Draw history as lines and the forecast as a dashed line in its 80% band.

    `forecast` has columns series, `at`, `yhat`, `lo80`, `hi80` (empty when there is none).
    Series are labelled with `names` (as the pickers name them); times are drawn as the
    city's wall-clock time (`zone`).
    """
    label = {key: (names or {}).get(key, key) for key in (*history[series], *forecast[series])}
    history = wall_clock(history.assign(shown=history[series].map(label)), "bucket")
    forecast = wall_clock(forecast.assign(shown=forecast[series].map(label)), "at")
    axis = alt.Axis(format=axis_format) if axis_format else alt.Axis()
    colour = alt.Color("shown:N", title=None, scale=PALETTE)
    x_axis = time_axis(pd.concat([history["bucket"], forecast["at"]]), zone)
    base = (
        alt.Chart(history)
        .mark_line()
        .encode(
            x=alt.X("bucket:T", title=None, scale=UTC_SCALE, axis=x_axis),
            y=alt.Y(f"{value}:Q", title=title, axis=axis),
            color=colour,
            tooltip=[alt.Tooltip("shown:N", title="name"),
                     alt.Tooltip("bucket:T", format="%a %d %b %H:%M", formatType="utc",
                                 title="time"), value],
        )
    )  # fmt: skip
    layers: list[alt.Chart] = [base]
    if not forecast.empty:
        band = (
            alt.Chart(forecast)
            .mark_area(opacity=0.25)
            .encode(x=alt.X("at:T", scale=UTC_SCALE), y="lo80:Q", y2="hi80:Q", color=colour)
        )
        line = (
            alt.Chart(forecast)
            .mark_line(strokeDash=[4, 3])
            .encode(x=alt.X("at:T", scale=UTC_SCALE), y="yhat:Q", color=colour)
        )
        layers = [band, base, line]
    chart: alt.LayerChart | alt.FacetChart = alt.layer(*layers).properties(height=280)
    return chart


def hour_of_week(frame: pd.DataFrame) -> alt.Chart:
    """Draw mean occupancy as a weekday by hour heatmap."""
    shown = frame.assign(day=[WEEKDAYS[int(d) - 1] for d in frame["weekday"]])
    chart: alt.Chart = alt.Chart(shown).mark_rect().encode(
        x=alt.X("hour:O", title="hour"),
        y=alt.Y("day:N", sort=WEEKDAYS, title=None),
        color=alt.Color("occupancy:Q", scale=alt.Scale(scheme="redyellowgreen", reverse=True,
                        domain=[0, 1]), legend=alt.Legend(format="%")),
        tooltip=["day", "hour", alt.Tooltip("occupancy:Q", format=".0%")],
    ).properties(height=220)  # fmt: skip
    return chart


def lot_comparison(frame: pd.DataFrame) -> alt.LayerChart | alt.FacetChart:
    """Compare lots by mean occupancy, with their peak as a tick."""
    order = list(frame.sort_values("mean_occupancy", ascending=False)["name"])
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("mean_occupancy:Q", title="mean occupancy", axis=alt.Axis(format="%")),
            y=alt.Y("name:N", sort=order, title=None),
        )
    )
    ticks = (
        alt.Chart(frame)
        .mark_tick(color="black", thickness=2)
        .encode(x="peak_occupancy:Q", y=alt.Y("name:N", sort=order))
    )
    chart: alt.LayerChart | alt.FacetChart = alt.layer(bars, ticks).properties(
        height=max(160, 40 * len(frame))
    )
    return chart


def peak_profile(frame: pd.DataFrame) -> alt.Chart:
    """Draw mean hourly flow by hour of day, weekdays against weekends."""
    chart: alt.Chart = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("hour:O", title="hour of day"),
        y=alt.Y("flow_vph:Q", title="vehicles per hour"),
        color=alt.Color("day_type:N", title=None),
        tooltip=["day_type", "hour", alt.Tooltip("flow_vph:Q", format=".0f")],
    ).properties(height=260)  # fmt: skip
    return chart


def fundamental_diagram(frame: pd.DataFrame) -> alt.Chart:
    """Scatter speed against flow for one segment: the fundamental diagram."""
    chart: alt.Chart = alt.Chart(frame).mark_circle(opacity=0.5).encode(
        x=alt.X("flow_vph:Q", title="flow (vehicles per hour)"),
        y=alt.Y("mean_speed:Q", title="mean speed (km/h)"),
        color=alt.Color("detector_occupancy:Q", title="occupancy %"),
        tooltip=[alt.Tooltip("bucket:T"), "flow_vph", "mean_speed"],
    ).properties(height=300)  # fmt: skip
    return chart


def backtest_errors(
    frame: pd.DataFrame, metric: str, name: str, unit: str, ahead: str = "minutes ahead"
) -> alt.Chart:
    """Draw a backtest error metric by horizon, one line per model.

    `frame` has `model`, `horizon` (in the unit `ahead` names), `ahead_text` and the metric.
    """
    title = name if metric in ("mase", "coverage80") else f"{name} ({unit})"
    axis = alt.Axis(format="%") if metric == "coverage80" else alt.Axis()
    chart: alt.Chart = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("horizon:Q", title=ahead),
        y=alt.Y(f"{metric}:Q", title=title, axis=axis),
        color=alt.Color("model:N", title=None),
        tooltip=["model", alt.Tooltip("ahead_text:N", title="ahead"),
                 alt.Tooltip(f"{metric}:Q", title=name, format=".2f")],
    ).properties(height=260)  # fmt: skip
    return chart


# Issue 13's goal for 80% bands: 75-85% pooled, at least 70% at every horizon step.
COVERAGE_TARGET: Final = (0.75, 0.85)
COVERAGE_FLOOR: Final = 0.70


def coverage_by_step(
    frame: pd.DataFrame, ahead: str = "minutes ahead"
) -> alt.LayerChart | alt.FacetChart:
    """Draw each model's 80% band coverage per horizon step over the calibrated range
    (75-85%, shaded) and the floor no step should fall below (70%, dashed)."""
    low, high = COVERAGE_TARGET
    target = alt.Chart(pd.DataFrame({"low": [low], "high": [high]})).mark_rect(
        opacity=0.15, color="green"
    ).encode(y="low:Q", y2="high:Q")  # fmt: skip
    floor = alt.Chart(pd.DataFrame({"floor": [COVERAGE_FLOOR]})).mark_rule(
        strokeDash=[4, 3], color="firebrick"
    ).encode(y="floor:Q")  # fmt: skip
    lines = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("horizon:Q", title=ahead),
        y=alt.Y("coverage80:Q", title="80% band coverage", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("model:N", title=None),
        tooltip=["model", alt.Tooltip("ahead_text:N", title="ahead"),
                 alt.Tooltip("coverage80:Q", title="coverage", format=".0%")],
    )  # fmt: skip
    chart: alt.LayerChart | alt.FacetChart = alt.layer(target, floor, lines).properties(height=260)
    return chart
