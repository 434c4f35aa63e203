"""The fleet knows the config operators intend for each device and the one it runs: a device
that refuses its new config shows as drifting (real agent, broker, fleet service, store)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from fleet.context import Fleet
from harness.dynsec_broker import DynsecBroker
from harness.edge import AgentProcess, wait_for
from harness.fleet_agents import SITE, allowlist_csv, image_config
from ingest.service import IngestService
from store import fleet_devices
from streetsense.config import Settings
from streetsense.topics import Channel, Topics
from tests.fleet.conftest import BATCH, fleet_cli, needs_dynsec, serial_of

pytestmark = needs_dynsec


def _configs(url: str, device: str) -> tuple[str, str, bool] | None:
    with psycopg.connect(url) as conn:
        table = fleet_devices.fleet_view(conn, 10)
    rows = [dict(zip(table.columns, r, strict=True)) for r in table.rows]
    found = [r for r in rows if r["device_id"] == device]
    if not found:
        return None
    row = found[0]
    return row["config_version"], row["intended_config_version"], row["config_drift"]


def test_a_refused_config_shows_as_drift_and_an_applied_one_does_not(
    fleet: Fleet,
    fleet_settings: Settings,
    dynsec: DynsecBroker,
    batch_secret: Path,
    ingest: IngestService,
    topics: Topics,
    tmp_path: Path,
) -> None:
    del ingest
    serial = serial_of(3)
    allow = allowlist_csv(tmp_path / "allow.csv", {serial: "gw-cfg"})
    assert fleet_cli(fleet_settings, "allow", "load", str(allow)).returncode == 0
    agent = AgentProcess(image_config(tmp_path / "gw.toml", dynsec, serial, BATCH,
                                      batch_secret)).start()  # fmt: skip
    url = fleet_settings.database.url
    config_topic = topics.device(SITE, "gw-cfg", Channel.CONFIG)
    try:
        wait_for(lambda: agent.state().get("acked", 0) > 0, 60, "the enrolled agent's readings")
        good = {"version": 7, "parking": {"occupied_after_s": 20.0}}
        fleet.link.publish(config_topic, json.dumps(good).encode(), retain=True)
        assert wait_for(lambda: _configs(url, "gw-cfg") == ("7", "7", False), 30,
                        "config 7 intended and in force")  # fmt: skip
        bad = {"version": 8, "parking": {"occupied_after_s": -5}}
        fleet.link.publish(config_topic, json.dumps(bad).encode(), retain=True)
        assert wait_for(lambda: _configs(url, "gw-cfg") == ("7", "8", True), 30,
                        "config 8 intended, 7 still in force: drift")  # fmt: skip
        wait_for(lambda: agent.state()["config_version"] == 7, 10, "the agent's state: 7 in force")
    finally:
        agent.stop()
