"""Forecast quality: backtest errors per model, horizon and series; weak spots; chosen models."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data, tables

WEAK_SHOWN = 15
STREAMS = {"Parking occupancy": "occupancy", "Traffic flow": "flow", "Traffic speed": "speed"}
SHARE = "% of capacity"

url, settings = data.page_context()
zone = settings.city.timezone
st.title("Forecast quality")
label = st.radio("Forecasts of", list(STREAMS), horizontal=True)
stream = STREAMS[label]

raw = data.backtests(url, stream)
if raw.empty:
    st.info(
        "No backtests stored yet for this stream: the analytics job stores them with each run "
        "(`streetsense analytics run`)."
    )
    st.stop()
capacities = None
if stream == "occupancy":
    errors_in = st.radio("Errors in", ["spaces", SHARE], horizontal=True, key="errors_in")
    if errors_in == SHARE:
        lots = data.lots(url)
        capacities = dict(zip(lots["lot_id"], lots["capacity"].astype(float), strict=True))
scores, unit = tables.scores_in_unit(raw, stream, capacities)
pooled = tables.pooled_scores(scores)
best = pooled.iloc[0]
step_min = int(scores["step_seconds"].iloc[0]) // 60
horizon_min = int(scores["horizon"].iloc[0]) * step_min
divisor, ahead = tables.horizon_scale(horizon_min)
first, second, third = st.columns(3)
first.metric("Best model", str(best["model"]), help="lowest MASE, then lowest MAE")
second.metric("Its MAE", f"{best['mae']:.1f} {unit}",
              help="mean absolute error: how far off a forecast is, on average")  # fmt: skip
third.metric(
    "Its 80% band coverage",
    f"{best['coverage80']:.0%}",
    help="0.80 is calibrated; 75-85% pooled and at least 70% at every step is the aim",
)
start, end = (scores[c].iloc[0].tz_convert(zone) for c in ("data_start", "data_end"))
first_origin = end - pd.Timedelta(minutes=horizon_min)
origins = tables.origins_judged(scores)
judged = (
    f"one origin: the forecasts from {first_origin:%a %d %b %H:%M} to {end:%a %d %b %H:%M %Z} "
    if origins == 1
    else f"{origins} origins per series, the last at {first_origin:%a %d %b %H:%M}, scored up "
    f"to {end:%a %d %b %H:%M %Z} "
)
st.caption(
    f"Rolling-origin backtest of the latest run, judged on {judged}against what was "
    f"observed; models fitted on the data from {start:%a %d %b %Y %H:%M} "
    f"({(end - start).total_seconds() / 86_400:.0f} days). Forecasts every "
    f"{tables.horizon_text(step_min)} up to {tables.horizon_text(horizon_min)} ahead; errors "
    f"in {unit}; 'points' counts the forecasts each model was scored on."
)
if origins == 1:
    st.caption(
        "One origin judges one stretch of the day: `streetsense forecast backtest` judges the "
        "same models from origins at every time of day over 14 days (docs/forecasting.md)."
    )
st.subheader("All models, pooled over series and horizon")
# a score a model has none of (MASE without a season's history, MAPE of zeros) shows as '-'
st.dataframe(pooled, hide_index=True, column_config=tables.score_columns(unit), placeholder="-")
st.caption(
    "MASE below 1 beats the seasonal naive forecast (the same time last week). MAPE divides "
    "by what was observed, so a near-empty lot or a quiet road at night makes it huge: judge "
    "the models by MASE and MAE, not by MAPE."
)

steps = scores[(scores["series_id"] == "") & (scores["step"] > 0)]
steps = steps.assign(minutes=steps["step"] * step_min)
steps = steps.assign(horizon=steps["minutes"] / divisor,
                     ahead_text=[tables.horizon_text(m) for m in steps["minutes"]])  # fmt: skip
by_step, coverage = st.columns(2)
with by_step:
    st.subheader("Error by horizon")
    metric: str = st.selectbox("Metric", [m for m in tables.METRIC_NAMES if m != "coverage80"],
                               format_func=lambda key: tables.METRIC_NAMES[key])  # fmt: skip
    st.altair_chart(
        charts.backtest_errors(steps, metric, tables.METRIC_NAMES[metric], unit, ahead),
        width="stretch",
    )
with coverage:
    st.subheader("80% band coverage by horizon")
    st.altair_chart(charts.coverage_by_step(steps, ahead), width="stretch")
    st.caption("Shaded: 75-85%, a calibrated band; dashed: 70%, below which a step's band is "
               "too narrow to trust.")  # fmt: skip

st.subheader("Weak spots")
model = st.selectbox("Model", list(pooled["model"]))
st.dataframe(
    tables.weak_series(scores, model, WEAK_SHOWN), hide_index=True,
    column_config=tables.score_columns(unit), placeholder="-",
)  # fmt: skip
st.caption("Series with the largest scaled error (MASE, else MAE) for this model.")

st.subheader("Model chosen per series")
chosen = data.chosen_models(url, stream)
counts = chosen.groupby("model").size().rename("series").reset_index()
left, right = st.columns([1, 2])
left.dataframe(counts, hide_index=True)
right.dataframe(
    chosen.assign(ahead_h=chosen["steps"] * step_min / 60)[["series_id", "model", "ahead_h"]],
    hide_index=True,
    column_config={"ahead_h": st.column_config.NumberColumn("forecast ahead (h)", format="%g")},
)
with st.expander("80% band coverage per step, every model"):
    st.dataframe(
        tables.coverage_per_step(steps), hide_index=True, placeholder="-",
        column_config={m: st.column_config.NumberColumn(m, format="percent")
                       for m in steps["model"].unique()},
    )  # fmt: skip
