"""Sensors and devices, for a field engineer: devices in trouble first, the agents, quarantine,
rejected messages with examples, data freshness; then the fleet: enrolled devices' releases,
config and credentials, pending enrolments, rollouts, actions and their audit log."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import access, controls, data, fleet_view

SHOWN_DEVICES = 2_000
QUARANTINED = 50
EXAMPLES = 20
EXPIRY_WARN_DAYS = 7
AUDITED = 50

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

# --- The fleet: enrolments, releases and credentials per device, rollouts, actions ---
st.header("Fleet")
fleet = controls.local(
    data.fleet_devices_view(url, SHOWN_DEVICES),
    ["expires_at", "last_seen_at", "last_report_at", "enrolled_at", "revoked_at"], zone,
)  # fmt: skip
pending = controls.local(data.pending_enrolments(url, SHOWN_DEVICES), ["last_at"], zone)
launched = data.rollouts(url, 20)
under_way = launched[launched["state"] == "running"]
soon = fleet_view.expiring(fleet, pd.Timestamp.now(tz="UTC"), EXPIRY_WARN_DAYS)
enrolled_n, pending_n, rollout_n, expiring_n, revoked_n, drift_n = st.columns(6)
enrolled_n.metric("Enrolled devices", len(fleet))
pending_n.metric("Pending enrolments", int((pending["state"] == "pending").sum()))
rollout_n.metric(
    "Rollout", "none" if under_way.empty else f"{under_way['version'].iloc[0]} wave "
    f"{under_way['wave'].iloc[0]}", help="the rollout under way, and its wave (0: canary)",
)  # fmt: skip
expiring_n.metric("Credentials expiring", len(soon), help=f"within {EXPIRY_WARN_DAYS} days")
revoked_n.metric("Revoked", int((fleet["state"] == "revoked").sum()))
drifting = int(fleet["config_drift"].fillna(False).astype(bool).sum())
drift_n.metric("Config drift", drifting, help="the config in force is not the one published")

sites_col, states_col = st.columns(2)
sites = sites_col.multiselect("Sites", sorted(fleet["site_id"].dropna().unique()))
states = states_col.multiselect("States", list(fleet_view.FLEET_STATES))
chosen = fleet_view.filter_fleet(fleet, sites, states)
chosen = chosen.assign(rollout=[fleet_view.rollout_label(r) for r in chosen.itertuples()])
st.dataframe(
    chosen, hide_index=True, placeholder="-", height=fleet_view.rows_height(min(len(chosen), 30)),
    column_order=["device_id", "site_id", "place", "state", "version", "config_version",
                  "intended_config_version", "config_drift", "rollout", "generation",
                  "expires_at", "last_seen_at", "buffer_depth"],
    column_config={"device_id": "device", "site_id": "site", "version": "release",
                   "config_version": "config in force",
                   "intended_config_version": "config intended", "config_drift": "drift",
                   "generation": "password gen.",
                   "expires_at": controls.when("password expires"),
                   "last_seen_at": controls.when("last seen"),
                   "buffer_depth": st.column_config.NumberColumn("buffer", format="%.0f")},
    key="fleet",
)  # fmt: skip


def who(form_key: str) -> str:
    """Return who acts: the signed-in account, else the name typed in the form."""
    signed = access.signed_in_as()
    typed = st.text_input("Your name", value=signed or "", disabled=bool(signed),
                          max_chars=200, key=f"{form_key}-by")  # fmt: skip
    return (signed or typed).strip()


def queue(action: str, subject: str, by: str, args: dict[str, object]) -> None:
    """Queue an action for the fleet service, or say what is missing."""
    if not by:
        st.error("Say who decides: fill in your name.")
        return
    action_id = data.queue_fleet_action(url, action, subject, by, args)
    st.success(f"{action} {subject} queued (#{action_id}): the fleet service carries it out.")


st.subheader("Pending enrolments")
waiting = pending[pending["state"] == "pending"]
if waiting.empty:
    st.success("No serial waits for approval.")
else:
    st.dataframe(waiting, hide_index=True, placeholder="-", key="pending",
                 column_order=["serial", "batch_id", "hardware", "agent_version", "last_at",
                               "requests", "conflicts", "allow_listed"],
                 column_config={"last_at": controls.when("last asked")})  # fmt: skip
    with st.form("enrolment", clear_on_submit=True):
        serial = st.selectbox("Serial", list(waiting["serial"]), key="enrolment-serial")
        decision = st.radio("Decision", ["approve", "refuse"], horizontal=True, key="decision")
        st.caption("A serial not on the allow-list needs its place to be approved:")
        device_col, site_col, kind_col, place_col = st.columns(4)
        place = {
            "device": device_col.text_input("Device id"),
            "site": site_col.text_input("Site"),
            "kind": kind_col.selectbox("Kind", ["", "parking", "counter", "traffic", "light"]),
            "lot": place_col.text_input("Lot (or segment below)"),
            "segment": place_col.text_input("Segment"),
        }
        reason = st.text_input("Reason (refusals)")
        by = who("enrolment")
        if st.form_submit_button("Queue decision", key="enrolment-submit"):
            args: dict[str, object] = {k: v for k, v in place.items() if v}
            if decision == "refuse":
                args = {"reason": reason}
            queue(decision, str(serial), by, args)

st.subheader("Rollouts")
if launched.empty:
    st.info("No rollout yet: `streetsense fleet rollout start VERSION` starts one.")
else:
    st.dataframe(controls.local(launched, ["started_at", "ended_at"], zone), hide_index=True,
                 placeholder="-", key="rollouts",
                 column_config={"started_at": controls.when("started"),
                                "ended_at": controls.when("ended")})  # fmt: skip
    picked = st.selectbox("Progress of rollout", list(launched["rollout_id"]))
    st.dataframe(controls.local(data.rollout_progress(url, int(picked)),
                                ["commanded_at", "changed_at"], zone),
                 hide_index=True, placeholder="-", key="progress",
                 column_config={"commanded_at": controls.when("commanded"),
                                "changed_at": controls.when("changed")})  # fmt: skip
    if not under_way.empty:
        with st.form("stop-rollout", clear_on_submit=True):
            why = st.text_input("Why stop it", max_chars=500)
            by = who("stop-rollout")
            if st.form_submit_button(f"Stop the rollout of {under_way['version'].iloc[0]}"):
                queue("stop-rollout", str(under_way["version"].iloc[0]), by, {"reason": why})

st.subheader("Device actions")
with st.form("device-action", clear_on_submit=True):
    device = st.selectbox("Device", list(fleet["device_id"]), key="action-device")
    action = st.radio("Action", ["revoke", "rotate"], horizontal=True, key="action",
                      help="revoke: the broker refuses it from now on (stolen, broken); "
                           "rotate: it replaces its password now")  # fmt: skip
    reason = st.text_input("Reason (required to revoke)", max_chars=500, key="action-reason")
    by = who("device-action")
    if st.form_submit_button("Queue action", key="action-submit") and device is not None:
        if action == "revoke" and not reason.strip():
            st.error("Say why the device is revoked: it goes into the audit log.")
        else:
            queue(action, str(device), by, {"reason": reason} if action == "revoke" else {})

with st.expander("Audit log and queued actions"):
    st.dataframe(controls.local(data.fleet_audit(url, AUDITED), ["at"], zone), hide_index=True,
                 key="audit", column_config={"at": controls.when("at")})  # fmt: skip
    st.dataframe(controls.local(data.fleet_actions(url, AUDITED), ["requested_at", "done_at"],
                                zone), hide_index=True, placeholder="-", key="actions")  # fmt: skip
