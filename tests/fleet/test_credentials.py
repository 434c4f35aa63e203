"""A device's own credentials: rotated under load without losing or duplicating a reading,
revoked within seconds, expired when never rotated."""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest

from fleet.batches import create_batch
from fleet.context import Fleet
from harness.dynsec_broker import DynsecBroker
from harness.edge import AgentProcess, report, wait_for
from harness.fleet import replay_file
from harness.fleet_agents import allowlist_csv, fleet_service, image_config
from harness.mqtt import close_client
from ingest.service import IngestService
from streetsense.config import Settings, with_overrides
from tests.fleet.conftest import BATCH, fleet_cli, needs_dynsec, serial_of

pytestmark = needs_dynsec


def _stored(url: str) -> dict[str, tuple[int, int, int, int]]:
    """Return device -> (rows, distinct seqs, lowest seq, highest seq) of lamp readings."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT device_id, count(*), count(DISTINCT seq), min(seq), max(seq) FROM readings "
            "WHERE kind = 'lamp_power' GROUP BY device_id"
        ).fetchall()
    return {str(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}


def _rows(url: str, device: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM readings WHERE device_id = %s", (device,))
        return int(row.fetchone()[0])  # type: ignore[index]


def _generations(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT device_id, generation FROM fleet_devices").fetchall())


def _refused(broker: DynsecBroker, user: str, password: str) -> bool:
    """Tell whether the broker refuses `user` with `password`."""
    outcome: list[bool] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    client.on_connect = lambda _c, _u, _f, code, _p: outcome.append(code.is_failure)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        wait_for(lambda: outcome, 10, f"the broker's answer to {user}")
    finally:
        close_client(client)
    return outcome[0]


@pytest.mark.slow
def test_rotation_under_load_loses_and_duplicates_nothing(
    settings: Settings,
    dynsec: DynsecBroker,
    fleet_city: str,
    ingest: IngestService,
    tmp_path: Path,
) -> None:
    """Four agents stream 1,500 readings each while their passwords rotate every 3 s."""
    del ingest, fleet_city
    fleet_settings = with_overrides(
        dynsec.settings(settings, "fleet"),
        fleet={"credential_lifetime_s": 10, "rotate_share": 0.3},
    )
    agents_n, per_agent = 4, 1_500
    serials = {serial_of(n): f"gw-{n}" for n in range(agents_n)}
    agents: list[AgentProcess] = []
    with fleet_service(fleet_settings) as fleet:
        secret = tmp_path / "b1.secret"
        create_batch(fleet, BATCH, "test", secret)
        loaded = fleet_cli(
            fleet_settings, "allow", "load", str(allowlist_csv(tmp_path / "allow.csv", serials))
        )
        assert loaded.returncode == 0, loaded.stderr
        started = time.monotonic()
        first_passwords = {}
        try:
            for serial, device in serials.items():
                events = replay_file(tmp_path / f"{device}.events", per_agent, spacing_ms=10)
                config = image_config(
                    tmp_path / f"{device}.toml",
                    dynsec,
                    serial,
                    BATCH,
                    secret,
                    driver={"kind": "replay", "path": str(events), "retime": True},
                    buffer={"resend_timeout_s": 3.0, "drain_rate": 2_000.0},
                )
                agents.append(AgentProcess(config).start())
            for agent, serial in zip(agents, serials, strict=True):
                wait_for(lambda a=agent: a.state().get("device"), 60, "enrolment")  # type: ignore[misc]
                first_passwords[serial] = (
                    tmp_path / serial / "credentials" / "password"
                ).read_text()
            wait_for(
                lambda: all(
                    a.state().get("acked", 0) >= a.state().get("first_seq", 0) + per_agent - 1
                    for a in agents
                ),
                180,
                "every reading of every agent to be confirmed",
            )
            states = [a.state() for a in agents]
        finally:
            for agent in agents:
                agent.stop()
    url = fleet_settings.database.url
    stored = _stored(url)
    generations = _generations(url)
    rotations = sum(g - 1 for g in generations.values())
    report(
        "rotation under load",
        agents=agents_n,
        readings=agents_n * per_agent,
        rotations=rotations,
        wall_s=round(time.monotonic() - started, 1),
        resent=sum(int(s["resent"]) for s in states),
    )
    for state in states:
        rows, distinct, low, high = stored[state["device"]]
        # every reading stored once: no gap, no second copy
        assert (rows, distinct) == (per_agent, per_agent), state["device"]
        assert (low, high) == (state["first_seq"], state["first_seq"] + per_agent - 1)
    assert all(g >= 3 for g in generations.values()), generations
    for serial, device in serials.items():
        assert _refused(dynsec, device, first_passwords[serial].strip()), device


def test_a_revoked_device_is_refused_within_5_s_and_its_confirmed_data_stay(
    fleet: Fleet,
    fleet_settings: Settings,
    dynsec: DynsecBroker,
    batch_secret: Path,
    ingest: IngestService,
    tmp_path: Path,
) -> None:
    del fleet, ingest
    serial = serial_of(7)
    allow = allowlist_csv(tmp_path / "allow.csv", {serial: "gw-stolen"})
    assert fleet_cli(fleet_settings, "allow", "load", str(allow)).returncode == 0
    config = image_config(tmp_path / "gw.toml", dynsec, serial, BATCH, batch_secret)
    agent = AgentProcess(config).start()
    url = fleet_settings.database.url
    try:
        wait_for(lambda: agent.state().get("acked", 0) > 0, 60, "confirmed readings")
        before = _rows(url, "gw-stolen")
        asked = time.monotonic()
        revoked = fleet_cli(fleet_settings, "revoke", "gw-stolen", "--reason", "stolen from pole 7")
        assert revoked.returncode == 0, revoked.stderr
        wait_for(lambda: agent.state().get("link") == "down", 5, "the broker to drop the device")
        dropped_s = time.monotonic() - asked
        wait_for(
            lambda: agent.state()["fleet"]["refusals"] >= 2,
            30,
            "the device's reconnections to be refused",
        )
        held = _rows(url, "gw-stolen")
        wait_for(lambda: agent.state()["fleet"]["refusals"] >= 3, 30, "a third refusal")
        state = agent.state()
    finally:
        agent.stop()
    report("revocation", dropped_s=round(dropped_s, 2))
    assert _rows(url, "gw-stolen") == held >= before > 0  # confirmed data stay; nothing new
    assert "not authori" in state["link_error"] or "bad user name" in state["link_error"]
    with psycopg.connect(url) as conn:
        active = conn.execute("SELECT active FROM devices WHERE device_id = 'gw-stolen'").fetchone()
        enrolment = conn.execute(
            "SELECT state FROM fleet_enrolments WHERE serial = %s", (serial,)
        ).fetchone()
    assert active == (False,) and enrolment == ("revoked",)
    audit = fleet_cli(fleet_settings, "audit", "--subject", "gw-stolen", "--json")
    assert "stolen from pole 7" in audit.stdout and '"actor": "tester"' in audit.stdout
