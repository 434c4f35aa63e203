"""Access to the planners' pages: OIDC login through `st.login` when `[auth]` is configured.

Without `[auth]` in `.streamlit/secrets.toml` the dashboard relies on its loopback bind (or a
reverse proxy that authenticates, see docs/dashboard.md): the public never reaches it.
"""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError


def login_configured() -> bool:
    """Tell whether an OIDC provider is configured in Streamlit's secrets."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return False


def logged_in() -> bool:
    """Tell whether the planner has signed in (the key is absent before any login)."""
    return bool(st.user.to_dict().get("is_logged_in", False))


def require_login() -> None:
    """Stop the page with a login button unless login is off or the planner is logged in."""
    if not login_configured() or logged_in():
        return
    st.title("streetsense for planners")
    st.write("Sign in with your organisation's account to see the planners' dashboard.")
    if st.button("Sign in"):
        st.login()
    st.stop()


def signed_in_as() -> str | None:
    """Return who is signed in (email, else name), or None without a login."""
    if not login_configured() or not logged_in():
        return None
    user = st.user.to_dict()
    found = user.get("email") or user.get("name")
    return str(found) if found else None
