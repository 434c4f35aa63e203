"""The example agent configuration shipped for field engineers stays valid."""

from __future__ import annotations

from pathlib import Path

from edge.config import load_config, validate

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "edge" / "agent.example.toml"


def test_the_shipped_example_loads_and_validates() -> None:
    config = load_config(EXAMPLE, environ={})
    validate(config)
    assert config.mqtt.protocol == "5"
    assert config.mqtt.url.startswith("mqtts://")


def test_the_shipped_example_trusts_only_signed_confirmations() -> None:
    # a forged ack must not delete data on any shipped configuration (issue 14)
    config = load_config(EXAMPLE, environ={})
    assert config.device.confirm_key_file
