"""Alerts: rules as data, their evaluation and lifecycle, delivery through an outbox."""
