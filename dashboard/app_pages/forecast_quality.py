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
first, second, third = st.columns(3)
first.metric("Best model", str(best["model"]), help="lowest MASE, then lowest MAE")
second.metric("Its MAE", f"{best['mae']:.2f}")
third.metric("Its 80% band coverage", f"{best['coverage80']:.0%}", help="0.80 is calibrated")
st.caption(
    f"Rolling-origin backtest of the latest run, data up to "
    f"{scores['data_end'].iloc[0].tz_convert(settings.city.timezone):%Y-%m-%d %H:%M %Z}."
)
st.subheader("All models, pooled over series and horizon")
st.dataframe(pooled, hide_index=True, column_config=tables.SCORE_COLUMNS)

by_step, weak = st.columns(2)
with by_step:
    st.subheader("Error by horizon")
    metric = st.selectbox("Metric", ["mae", "rmse", "mase", "coverage80"])
    steps = scores[(scores["series_id"] == "") & (scores["step"] > 0)].rename(
        columns={"step": "horizon"}
    )
    st.altair_chart(charts.backtest_errors(steps, metric), width="stretch")
with weak:
    st.subheader("Weak spots")
    model = st.selectbox("Model", list(pooled["model"]))
    st.dataframe(
        tables.weak_series(scores, model, WEAK_SHOWN), hide_index=True,
        column_config=tables.SCORE_COLUMNS,
    )  # fmt: skip
    st.caption("Series with the largest scaled error (MASE, else MAE) for this model.")

st.subheader("Model chosen per series")
chosen = data.chosen_models(url, stream)
counts = chosen.groupby("model").size().rename("series").reset_index()
left, right = st.columns([1, 2])
left.dataframe(counts, hide_index=True)
right.dataframe(chosen[["series_id", "model", "steps"]], hide_index=True)
