"""Alerts: what needs someone now (firing first), acknowledge with a note, history, per rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboard import access, controls, data

SHOWN = 500
HISTORY_DAYS = 30

url, settings = data.page_context()
zone = settings.city.timezone
st.title("Alerts")
# What the last acknowledgement did, shown once after the page re-ran with fresh tables.
flash = st.session_state.pop("alerts_flash", None)
if flash is not None:
    (st.success if flash[0] else st.warning)(flash[1])

active = data.active_alerts(url, SHOWN)
firing = active[active["state"] == "firing"]
total, critical, acked = st.columns(3)
total.metric("Firing", len(firing))
critical.metric("Critical", int((firing["severity"] == "critical").sum()))
acked.metric("Acknowledged", int((active["state"] == "acknowledged").sum()))

st.subheader("Active")
if active.empty:
    st.success("No active alerts.")
else:
    shown = controls.local(active, ["fired_at", "acked_at"], zone)
    st.dataframe(
        shown[["alert_id", "severity", "state", "rule", "summary", "area", "fired_at",
               "acked_by", "ack_note"]],
        hide_index=True,
    )  # fmt: skip
    st.caption(f"Firing first, then by severity and newest; at most {SHOWN} shown.")

if not firing.empty:
    st.subheader("Acknowledge")
    with st.form("acknowledge", clear_on_submit=True):
        labels = {
            int(r.alert_id): f"#{r.alert_id} {r.rule}: {r.summary}" for r in firing.itertuples()
        }
        chosen = st.selectbox("Alert", list(labels), format_func=labels.__getitem__)
        signed_in = access.login_configured() and access.logged_in()
        default_by = str(st.user.get("email", "")) if signed_in else ""
        by = st.text_input("Your name", value=default_by, disabled=signed_in, max_chars=200)
        note = st.text_area("Note", placeholder="what is being done about it", max_chars=2000)
        if st.form_submit_button("Acknowledge"):
            who = (default_by if signed_in else by).strip()
            if not who:
                st.error("Say who acknowledges: fill in your name.")
            elif chosen is not None:
                done = data.acknowledge(url, int(chosen), who, note.strip(), datetime.now(UTC))
                st.session_state["alerts_flash"] = (done, (
                    f"Alert #{chosen} acknowledged by {who}." if done
                    else f"Alert #{chosen} is no longer firing (acknowledged or resolved)."
                ))  # fmt: skip
                st.rerun()

since = datetime.now(UTC) - timedelta(days=HISTORY_DAYS)
st.subheader(f"Per rule, last {HISTORY_DAYS} days")
counts = data.alert_rule_counts(url, since)
if counts.empty:
    st.info("No alert has fired yet.")
else:
    st.dataframe(
        counts, hide_index=True,
        column_config={"mean_open_min": st.column_config.NumberColumn("mean minutes open",
                                                                      format="%.0f")},
    )  # fmt: skip

st.subheader("History")
history = data.alert_history(url, SHOWN, since)
if not history.empty:
    st.dataframe(
        controls.local(history, ["since", "fired_at", "resolved_at", "acked_at"], zone)[
            ["alert_id", "state", "severity", "rule", "summary", "area", "fired_at",
             "resolved_at", "acked_by", "ack_note"]
        ],
        hide_index=True,
    )  # fmt: skip
    picked = st.selectbox("Transitions of", list(history["alert_id"]), index=None,
                          placeholder="choose an alert")  # fmt: skip
    if picked is not None:
        st.dataframe(controls.local(data.alert_events(url, int(picked)), ["at"], zone),
                     hide_index=True)  # fmt: skip
