"""Pure DataFrame shaping shared by pages: filters, summaries and their column formats."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import pandas as pd
import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

LOT_SUMMARY_COLUMNS: Final = {
    "occupancy_now": st.column_config.NumberColumn("now", format="percent"),
    "mean_occupancy": st.column_config.NumberColumn("mean", format="percent"),
    "peak_occupancy": st.column_config.NumberColumn("peak", format="percent"),
    "share_above": st.column_config.NumberColumn("time above 85%", format="percent"),
    "turnover_per_spot_day": st.column_config.NumberColumn("turnover /spot/day", format="%.2f"),
    "mean_dwell_min": st.column_config.NumberColumn("mean dwell (min)", format="%.0f"),
}


def filter_places(
    frame: pd.DataFrame, id_column: str, text: str, areas: list[str], kinds: list[str]
) -> pd.DataFrame:
    """Return the rows whose id or name contains text, in the given areas and kinds."""
    keep = pd.Series(True, index=frame.index)
    needle = text.strip().lower()
    if needle:
        keep &= frame[id_column].str.lower().str.contains(needle, regex=False) | frame[
            "name"
        ].str.lower().str.contains(needle, regex=False)
    if areas:
        keep &= frame["area"].isin(areas)
    if kinds and "kind" in frame:
        keep &= frame["kind"].isin(kinds)
    return frame[keep]


def share_column(label: str, help: str | None = None) -> ColumnConfig:
    """Return the column format of a 0-100 share drawn as a bar with a whole percentage."""
    return st.column_config.ProgressColumn(
        label, format="%.0f%%", min_value=0, max_value=100, help=help
    )


def fullest_lots(lots_now: pd.DataFrame) -> pd.DataFrame:
    """Return the open lots reporting now, fullest first: name, spaces taken, share full, as of.

    A closed lot has no occupancy (closed is not full) and is left out.
    """
    reporting = lots_now.dropna(subset=["occupancy"]).sort_values(
        ["occupancy", "name"], ascending=[False, True]
    )
    return pd.DataFrame({
        "name": reporting["name"],
        "taken": [f"{o:,.0f} / {c:,}" for o, c in zip(reporting["occupied"],
                                                      reporting["capacity"], strict=True)],
        "full": (reporting["occupancy"].clip(0, 1) * 100).round(),
        "observed_at": reporting["observed_at"],
    })  # fmt: skip


def slowest_roads(segments_now: pd.DataFrame) -> pd.DataFrame:
    """Return the segments with data, slowest against their speed limit first (what is shown)."""
    known = segments_now.dropna(subset=["speed_ratio"]).sort_values(["speed_ratio", "name"])
    return pd.DataFrame({
        "name": known["name"],
        "of_limit": (known["speed_ratio"] * 100).round(),
        "speed": [f"{v:.0f} / {limit:.0f} km/h" for v, limit in zip(known["mean_speed"],
                                                                 known["speed_limit_kmh"],
                                                                 strict=True)],
        "bucket": known["bucket"],
    })  # fmt: skip


def lot_summary(
    pressure: pd.DataFrame, turnover: pd.DataFrame, lots_now: pd.DataFrame
) -> pd.DataFrame:
    """Join per-lot pressure, turnover and current occupancy into one row per lot."""
    now = lots_now[["lot_id", "name", "capacity", "occupancy"]].rename(
        columns={"occupancy": "occupancy_now"}
    )
    summary = now.merge(pressure, on="lot_id", how="inner")
    summary = summary.merge(
        turnover[["lot_id", "spots", "arrivals", "turnover_per_spot_day", "mean_dwell_min"]],
        on="lot_id",
        how="left",
    )
    columns = ["lot_id", "name", "capacity", "occupancy_now", "mean_occupancy",
               "peak_occupancy", "share_above", "spots", "arrivals",
               "turnover_per_spot_day", "mean_dwell_min"]  # fmt: skip
    return summary[columns].sort_values("lot_id").reset_index(drop=True)


def pressure_bucket(start: datetime, end: datetime) -> str:
    """Name the bucket size `time_above` counts in for a range (as the store chooses it)."""
    return "5-minute" if end - start <= timedelta(days=2) else "hourly"


def forecast_as_occupancy(forecast: pd.DataFrame, lots_now: pd.DataFrame) -> pd.DataFrame:
    """Return an occupied-spaces forecast as occupancy shares of each lot's capacity."""
    capacity = forecast["series_id"].map(
        dict(zip(lots_now["lot_id"], lots_now["capacity"], strict=True))
    )
    shares = forecast.copy()
    for column in ("yhat", "lo80", "hi80"):
        shares[column] = (forecast[column] / capacity).clip(lower=0.0)
    return shares


METRIC_NAMES: Final = {"mae": "MAE", "rmse": "RMSE", "mase": "MASE",
                       "coverage80": "80% band coverage"}  # fmt: skip


def without_forecast(
    series_ids: tuple[str, ...],
    forecast_ids: pd.Series,
    skips: pd.DataFrame,
    names: dict[str, str],
) -> str | None:
    """Return a sentence naming the series without a forecast and why (the analytics job's
    reason when it left one out), or None when every series has one."""
    reasons = dict(zip(skips["series_id"], skips["detail"], strict=True)) if len(skips) else {}
    shown = set(forecast_ids)
    missing = [
        f"{names.get(one, one)} ({reasons.get(one, 'none stored yet')})"
        for one in series_ids if one not in shown
    ]  # fmt: skip
    return "; ".join(missing) if missing else None


def score_columns(unit: str) -> dict[str, ColumnConfig]:
    """Return the backtest score columns, errors labelled with their unit."""
    return {
        "mae": st.column_config.NumberColumn(f"MAE ({unit})", format="%.2f"),
        "rmse": st.column_config.NumberColumn(f"RMSE ({unit})", format="%.2f"),
        "mape": st.column_config.NumberColumn(
            "MAPE (%)", format="%.0f", help="percent of what was observed: huge near zero"
        ),
        "mase": st.column_config.NumberColumn("MASE", format="%.2f", help="below 1 beats naive"),
        "coverage80": st.column_config.NumberColumn("80% coverage", format="percent"),
    }


_SCORES: Final = ["mae", "rmse", "mape", "mase", "coverage80", "points"]


def pooled_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Return one pooled row per model, best first (lowest MASE, then MAE)."""
    pooled = scores[(scores["series_id"] == "") & (scores["step"] == 0)]
    ranked = pooled.sort_values(["mase", "mae", "model"], na_position="last")
    return ranked[["model", *_SCORES]].reset_index(drop=True)


def weak_series(scores: pd.DataFrame, model: str, limit: int) -> pd.DataFrame:
    """Return a model's series with the largest errors, worst first."""
    rows = scores[(scores["model"] == model) & (scores["series_id"] != "") & (scores["step"] == 0)]
    key = "mase" if rows["mase"].notna().any() else "mae"
    worst = rows.sort_values(key, ascending=False, na_position="last").head(limit)
    return worst[["series_id", *_SCORES]].reset_index(drop=True)


AHEAD_MIN: Final = (15, 30, 60)
TRAFFIC_AHEAD_COLUMNS: Final = {
    "road": st.column_config.TextColumn("road"),
    **{f"speed_{m}": st.column_config.TextColumn(f"speed +{m} min") for m in AHEAD_MIN},
    **{f"flow_{m}": st.column_config.TextColumn(f"flow +{m} min") for m in AHEAD_MIN},
}


def traffic_ahead(flow: pd.DataFrame, speed: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Return per segment the speed and flow expected 15, 30 and 60 minutes after the
    forecast's first point, each as 'value (80% band)'."""
    segments = sorted(set(flow["segment_id"]) | set(speed["segment_id"]))
    rows = []
    for segment in segments:
        row = {"road": names.get(segment, segment)}
        for prefix, frame in (("speed", speed), ("flow", flow)):
            own = frame[frame["segment_id"] == segment].sort_values("at")
            for minutes in AHEAD_MIN:
                row[f"{prefix}_{minutes}"] = _ahead_text(own, minutes)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(TRAFFIC_AHEAD_COLUMNS))


def _ahead_text(frame: pd.DataFrame, minutes: int) -> str:
    """Return 'value (low-high)' of the first point at least `minutes` after the first one."""
    if frame.empty:
        return "-"
    target = frame["at"].iloc[0] + pd.Timedelta(minutes=minutes)
    later = frame[frame["at"] >= target]
    if later.empty:
        return "-"
    point = later.iloc[0]
    return f"{point['yhat']:.0f} ({point['lo80']:.0f}-{point['hi80']:.0f})"


PER_HOUR_S: Final = 3600


def scores_in_unit(
    scores: pd.DataFrame, stream: str, capacities: dict[str, float] | None = None
) -> tuple[pd.DataFrame, str]:
    """Return backtest scores with MAE and RMSE in the unit a planner reads, and that unit.

    Flow errors are per hour (the job counts vehicles per step); speed errors are km/h;
    occupancy errors are spaces, or with `capacities` a share of capacity in %: a lot's own
    errors over its capacity, pooled ones over the mean capacity of the lots scored (weighted
    by their points), so that pooled rows and those per horizon step stay comparable.
    """
    shown = scores.copy()
    errors = ["mae", "rmse"]
    if stream == "flow":
        per_hour = PER_HOUR_S / shown["step_seconds"].astype(float)
        shown[errors] = shown[errors].mul(per_hour, axis=0)
        return shown, "vehicles/h"
    if stream == "speed":
        return shown, "km/h"
    if capacities is None:
        return shown, "spaces"
    own = shown["series_id"].map(capacities).astype(float)
    per_series = shown[(shown["series_id"] != "") & (shown["step"] == 0)]
    weights = per_series.assign(capacity=per_series["series_id"].map(capacities).astype(float))
    weights = weights.dropna(subset=["capacity"])
    mean_capacity = (weights["capacity"] * weights["points"]).groupby(
        weights["model"]
    ).sum() / weights["points"].groupby(weights["model"]).sum()
    pooled = shown["model"].map(mean_capacity).astype(float)
    divisor = own.where(shown["series_id"] != "", pooled)
    shown[errors] = shown[errors].div(divisor, axis=0) * 100
    return shown, "% of capacity"


def horizon_scale(max_minutes: float) -> tuple[float, str]:
    """Return the divisor from minutes and the axis title for horizons up to `max_minutes`:
    minutes up to two hours, hours beyond."""
    return (1.0, "minutes ahead") if max_minutes <= 120 else (60.0, "hours ahead")


def horizon_text(minutes: float) -> str:
    """Return a horizon as a planner says it: '15 min', '1 h', '2 h 30 min'."""
    hours, rest = divmod(round(minutes), 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" if not rest else f"{hours} h {rest} min"


def coverage_per_step(steps: pd.DataFrame) -> pd.DataFrame:
    """Return 80% band coverage per horizon step (rows) and model (columns)."""
    table = steps.pivot_table(index="minutes", columns="model", values="coverage80")
    table.index = [horizon_text(m) for m in table.index]
    return table.rename_axis("ahead").reset_index()


def origins_judged(scores: pd.DataFrame) -> int:
    """Return how many forecast origins per series a backtest scored, from its point counts:
    the busiest horizon step's points over the series scored (at least 1)."""
    steps = scores[(scores["series_id"] == "") & (scores["step"] > 0)]
    series = scores.loc[(scores["series_id"] != "") & (scores["step"] == 0), "series_id"].nunique()
    if steps.empty or not series:
        return 1
    busiest = float(steps["points"].max())
    return max(1, round(busiest / int(series)))
