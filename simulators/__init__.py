"""Synthetic city and devices, fault scenarios, replay, load generation."""
