"""Forecast quality: backtest errors per model, horizon and series; weak spots; chosen models."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data, tables

WEAK_SHOWN = 15
STREAMS = {"Parking occupancy": "occupancy", "Traffic flow": "flow"}

url, settings = data.page_context()
st.title("Forecast quality")
label = st.radio("Forecasts of", list(STREAMS), horizontal=True)
stream = STREAMS[label]

scores = data.backtests(url, stream)
if scores.empty:
    st.info(
        "No backtests stored yet for this stream: the analytics job stores them with each run "
        "(`streetsense analytics run`)."
    )
    st.stop()
pooled = tables.pooled_scores(scores)
best = pooled.iloc[0]
step_min = int(scores["step_seconds"].iloc[0]) // 60
unit = "spaces" if stream == "occupancy" else f"vehicles per {step_min} min"
first, second, third = st.columns(3)
first.metric("Best model", str(best["model"]), help="lowest MASE, then lowest MAE")
second.metric("Its MAE", f"{best['mae']:.1f} {unit}",
              help="mean absolute error: how far off a forecast is, on average")  # fmt: skip
third.metric("Its 80% band coverage", f"{best['coverage80']:.0%}", help="0.80 is calibrated")
st.caption(
    f"Rolling-origin backtest of the latest run, data up to "
    f"{scores['data_end'].iloc[0].tz_convert(settings.city.timezone):%Y-%m-%d %H:%M %Z}; "
    f"errors in {unit}, horizons of {step_min}-minute steps."
)
st.subheader("All models, pooled over series and horizon")
st.dataframe(pooled, hide_index=True, column_config=tables.score_columns(unit))
st.caption(
    "MASE below 1 beats the seasonal naive forecast (the same time last week). MAPE divides "
    "by what was observed, so a near-empty lot or a quiet road at night makes it huge: judge "
    "the models by MASE and MAE, not by MAPE."
)

by_step, weak = st.columns(2)
with by_step:
    st.subheader("Error by horizon")
    metric: str = st.selectbox("Metric", list(tables.METRIC_NAMES),
                               format_func=lambda key: tables.METRIC_NAMES[key])  # fmt: skip
    steps = scores[(scores["series_id"] == "") & (scores["step"] > 0)]
    steps = steps.assign(horizon_min=steps["step"] * step_min)
    st.altair_chart(charts.backtest_errors(steps, metric, tables.METRIC_NAMES[metric], unit),
                    width="stretch")  # fmt: skip
with weak:
    st.subheader("Weak spots")
    model = st.selectbox("Model", list(pooled["model"]))
    st.dataframe(
        tables.weak_series(scores, model, WEAK_SHOWN), hide_index=True,
        column_config=tables.score_columns(unit),
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
