"""The planners' Streamlit dashboard."""
