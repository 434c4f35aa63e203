"""Sensors and devices: agent health, rejected messages with examples, data freshness."""

from __future__ import annotations

import streamlit as st

from dashboard import controls, data

SHOWN_DEVICES = 2_000
EXAMPLES = 20

url, settings = data.page_context()
span = controls.time_range(settings.city.timezone)
zone = settings.city.timezone
st.title("Sensors and devices")

counts = data.device_summary(url)
online, offline, never, battery, dropping = st.columns(5)
online.metric("Online", counts["online"])
offline.metric("Offline", counts["offline"])
never.metric("Never seen", counts["never_seen"])
battery.metric("Low battery", counts["low_battery"], help=f"below {data.LOW_BATTERY_V} V")
dropping.metric("Dropped readings", counts["dropping"], help="agents whose buffer overflowed")

st.subheader("Edge agents")
devices = controls.local(data.device_health(url, SHOWN_DEVICES), ["last_seen_at"], zone)
st.dataframe(
    devices, hide_index=True,
    column_config={
        "online": st.column_config.CheckboxColumn(),
        "battery_v": st.column_config.NumberColumn("battery (V)", format="%.2f"),
        "rssi_dbm": st.column_config.NumberColumn("signal (dBm)", format="%.0f"),
    },
)  # fmt: skip
st.caption(f"Offline and longest-silent first; at most {SHOWN_DEVICES:,} shown.")

st.subheader("Rejected messages")
reasons = controls.local(data.rejections(url, span.start, span.end), ["last_at"], zone)
if reasons.empty:
    st.success("No rejected messages in this range.")
else:
    st.dataframe(reasons, hide_index=True)
    reason = st.selectbox("Examples of", list(reasons["reason_code"]))
    examples = data.rejection_examples(url, reason, span.start, span.end, EXAMPLES)
    st.dataframe(controls.local(examples, ["received_at"], zone), hide_index=True)

st.subheader("Data freshness")
fresh = controls.local(data.freshness(url), ["latest", "sensors_heard"], zone)
stale_after = settings.feeds.stale_after_s
fresh["stale"] = fresh["age_s"].isna() | (fresh["age_s"] > stale_after)
st.metric("Stale lots and segments", int(fresh["stale"].sum()),
          help=f"no data, and no message from a lot's sensors, for {stale_after} s")  # fmt: skip
st.dataframe(
    fresh, hide_index=True,
    column_config={"age_s": st.column_config.NumberColumn("age (s)", format="%.0f")},
)  # fmt: skip
