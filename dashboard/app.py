"""Entry file of the planners' dashboard: access check and navigation, nothing else."""

from __future__ import annotations

import streamlit as st

from dashboard import access
from streetsense.errors import ConfigError, ServiceUnavailableError

st.set_page_config(page_title="streetsense", page_icon=":material/local_parking:", layout="wide")
access.require_login()
navigation = st.navigation(
    [
        st.Page("app_pages/city_now.py", title="City now", icon=":material/map:", default=True),
        st.Page("app_pages/parking.py", title="Parking", icon=":material/local_parking:"),
        st.Page("app_pages/traffic.py", title="Traffic", icon=":material/traffic:"),
        st.Page("app_pages/forecast_quality.py", title="Forecast quality",
                icon=":material/query_stats:"),
        st.Page("app_pages/devices.py", title="Sensors and devices", icon=":material/sensors:"),
        st.Page("app_pages/alerts.py", title="Alerts", icon=":material/notifications:"),
        st.Page("app_pages/export.py", title="Export", icon=":material/download:"),
    ]
)  # fmt: skip
if access.login_configured() and access.logged_in():
    st.sidebar.button("Sign out", on_click=st.logout)
try:
    navigation.run()
except (ConfigError, ServiceUnavailableError) as exc:
    # Whatever page: say what is wrong and how to fix it, not a traceback.
    st.error(str(exc), icon=":material/cloud_off:")
