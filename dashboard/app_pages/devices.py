"""Sensors and devices, for a field engineer: devices in trouble first, the agents, quarantine,
rejected messages with examples, data freshness."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import controls, data, fleet_view

SHOWN_DEVICES = 2_000
QUARANTINED = 50
EXAMPLES = 20

url, settings = data.page_context()
span = controls.time_range(settings.city.timezone)
zone = settings.city.timezone
st.title("Sensors and devices")

devices = fleet_view.with_troubles(
    controls.local(data.device_health(url, SHOWN_DEVICES), ["last_seen_at"], zone),
    data.LOW_BATTERY_V,
)
counts = data.device_summary(url)
trouble, online, offline, never, battery, dropping = st.columns(6)
trouble.metric(
    "In trouble", int((devices["trouble"] != "").sum()),
    help="offline, losing data, buffer growing, low battery or clock suspect",
)  # fmt: skip
online.metric("Online", counts["online"])
offline.metric("Offline", counts["offline"])
never.metric("Never seen", counts["never_seen"])
battery.metric("Low battery", counts["low_battery"], help=f"below {data.LOW_BATTERY_V} V")
dropping.metric("Dropped readings", counts["dropping"], help="agents whose buffer overflowed")

COLUMNS = {
    "device_id": st.column_config.TextColumn("device"),
    "trouble": st.column_config.TextColumn("trouble", width="medium"),
    "last_seen_at": controls.when("last seen"),
    "buffer_depth": st.column_config.NumberColumn("buffer", format="%.0f",
                                                  help="readings waiting for confirmation"),
    "buffer_dropped": st.column_config.NumberColumn("dropped", format="%.0f"),
    "battery_v": st.column_config.NumberColumn("battery (V)", format="%.2f"),
    "rssi_dbm": st.column_config.NumberColumn("signal (dBm)", format="%.0f"),
}  # fmt: skip
ORDER = ["device_id", "kind", "place", "trouble", "last_seen_at", "buffer_depth",
         "buffer_dropped", "battery_v", "rssi_dbm"]  # fmt: skip


def table(rows: pd.DataFrame, *, key: str) -> None:
    """Show devices with every row visible (no scrolling inside the table)."""
    st.dataframe(rows, hide_index=True, column_order=ORDER, column_config=COLUMNS,
                 height=fleet_view.rows_height(len(rows)), placeholder="-", key=key)  # fmt: skip


troubled = devices[devices["trouble"] != ""]
st.subheader("Devices in trouble")
if troubled.empty:
    st.success("Every device is online, with nothing dropped, waiting, low or suspect.")
else:
    table(troubled, key="troubled")
    st.caption("Worst first: never seen, offline, losing data, buffer growing, battery, clock.")

st.subheader("Edge agents")
agents = devices[devices["agent"]]
if agents.empty:
    st.info("No device reports agent health yet (streetsense-edge sends it every minute).")
else:
    table(agents, key="agents")
others = devices[~devices["agent"]]
with st.expander(f"Other devices ({len(others)}): no agent health (simulated or third-party)"):
    table(others, key="others")

st.subheader("Quarantine")
held = controls.local(data.quarantine(url, QUARANTINED), ["first_at", "last_at"], zone)
if held.empty:
    st.success("No message from an unknown device is waiting.")
else:
    st.dataframe(held, hide_index=True, placeholder="-",
                 column_config={"first_at": controls.when("first"),
                                "last_at": controls.when("last")})  # fmt: skip
    first = held["device_id"].iloc[0]
    st.caption("Messages of devices the registry does not know are kept whole. To take them in:")
    st.code(
        "# 1. add the device to the registry file (see deploy/registry.example.toml), then:\n"
        "streetsense registry load city.toml\n"
        "# 2. publish again what it sent while unknown:\n"
        f"streetsense ingest --replay-quarantine {first}",
        language="bash",
    )

st.subheader("Rejected messages")
reasons = controls.local(data.rejections(url, span.start, span.end), ["last_at"], zone)
if reasons.empty:
    st.success("No rejected messages in this range.")
else:
    st.dataframe(reasons, hide_index=True, column_config={"last_at": controls.when("last")})
    reason = st.selectbox("Examples of", list(reasons["reason_code"]))
    examples = data.rejection_examples(url, reason, span.start, span.end, EXAMPLES)
    st.dataframe(controls.local(examples, ["received_at"], zone), hide_index=True,
                 column_config={"received_at": controls.when("received")})  # fmt: skip

st.subheader("Data freshness")
fresh = controls.local(data.freshness(url), ["latest", "sensors_heard"], zone)
stale_after = settings.feeds.stale_after_s
fresh["stale"] = fresh["age_s"].isna() | (fresh["age_s"] > stale_after)
st.metric("Stale lots and segments", int(fresh["stale"].sum()),
          help=f"no data, and no message from a lot's sensors, for {stale_after} s")  # fmt: skip
st.dataframe(
    fresh, hide_index=True, placeholder="-",
    column_config={"age_s": st.column_config.NumberColumn("age (s)", format="%.0f"),
                   "latest": controls.when("latest"), "sensors_heard": controls.when("heard")},
)  # fmt: skip
