"""Forecast quality: backtest errors per model, horizon and series; weak spots; chosen models."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data

url, settings = data.page_context()
st.title("Forecast quality")

backtests = data.backtests(url)
if backtests.empty:
    st.info(
        "No backtests stored yet. The analytics job stores them as it runs "
        "(`streetsense analytics run`)."
    )
    st.stop()
st.altair_chart(charts.backtest_errors(backtests, "mae"), width="stretch")
