"""Zero-touch enrolment with real agents, the real fleet service, broker and database."""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg

from fleet.context import Fleet
from harness.dynsec_broker import DynsecBroker
from harness.edge import AgentProcess, wait_for
from harness.fleet_agents import LOT, SITE, allowlist_csv, image_config
from ingest.service import IngestService
from streetsense.config import Settings
from tests.fleet.conftest import BATCH, fleet_cli, needs_dynsec, serial_of

pytestmark = needs_dynsec


def _enrolment(url: str, serial: str) -> tuple[str, str | None, int] | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT state, device_id, conflicts FROM fleet_enrolments WHERE serial = %s",
            (serial,),
        ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def test_an_allow_listed_device_enrols_and_its_readings_are_confirmed(
    fleet: Fleet,
    fleet_settings: Settings,
    dynsec: DynsecBroker,
    batch_secret: Path,
    ingest: IngestService,
    tmp_path: Path,
) -> None:
    del ingest
    serial = serial_of(1)
    allow = allowlist_csv(tmp_path / "allow.csv", {serial: "gw-1"}, spots_per_device=2)
    loaded = fleet_cli(fleet_settings, "allow", "load", str(allow))
    assert loaded.returncode == 0, loaded.stderr
    config = image_config(tmp_path / "gw.toml", dynsec, serial, BATCH, batch_secret)
    agent = AgentProcess(config).start()
    try:
        state = wait_for(
            lambda: (s := agent.state()).get("acked", 0) > 0 and s,
            60,
            "the enrolled agent's first confirmed readings",
        )
        assert state["device"] == "gw-1" and state["site"] == SITE
        assert state["fleet"]["generation"] == 1 and state["fleet"]["serial"] == serial
    finally:
        agent.stop()
    url = fleet_settings.database.url
    assert _enrolment(url, serial) == ("enrolled", "gw-1", 0)
    with psycopg.connect(url) as conn:
        registered = conn.execute(
            "SELECT site_id, kind, lot_id, registered_by, active FROM devices "
            "WHERE device_id = 'gw-1'"
        ).fetchone()
        spots = conn.execute(
            "SELECT spot_id, sensor FROM spots WHERE device_id = 'gw-1' ORDER BY spot_id"
        ).fetchall()
        actions = [
            row[0] for row in conn.execute("SELECT action FROM fleet_audit ORDER BY audit_id")
        ]
        # the database holds no password, only its fingerprint and life
        dumped = str(conn.execute("SELECT * FROM fleet_enrolments").fetchall()) + str(
            conn.execute("SELECT * FROM fleet_devices").fetchall()
        )
    assert registered == (SITE, "parking", LOT, "fleet", True)
    assert spots == [("gw-1-S1", "S1"), ("gw-1-S2", "S2")]
    assert actions == ["create batch", "allow-list", "enrol request", "enrol"]
    credentials = tmp_path / serial / "credentials"
    password = (credentials / "password").read_text().strip()
    assert password not in dumped
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o700
    for name in ("password", "identity.json", "confirm.key"):
        assert stat.S_IMODE((credentials / name).stat().st_mode) == 0o600, name
    # the bootstrap secret went to the broker once, at enrolment, and to no file of the device's
    secret = batch_secret.read_text().strip()
    assert all(secret not in p.read_text() for p in credentials.iterdir())


def test_an_unknown_serial_waits_until_an_operator_approves_it(
    fleet: Fleet,
    fleet_settings: Settings,
    dynsec: DynsecBroker,
    batch_secret: Path,
    tmp_path: Path,
) -> None:
    del fleet
    serial = serial_of(2)
    config = image_config(tmp_path / "gw.toml", dynsec, serial, BATCH, batch_secret)
    agent = AgentProcess(config).start()
    url = fleet_settings.database.url
    try:
        wait_for(
            lambda: "pending" in str(agent.state().get("enrolment")),
            30,
            "the agent to say it waits for approval",
        )
        status = agent.state()
        assert not status.get("device")
        assert _enrolment(url, serial) == ("pending", None, 0)
        listed = fleet_cli(fleet_settings, "pending", "--json")
        assert serial in listed.stdout and '"allow_listed": false' in listed.stdout
        approved = fleet_cli(
            fleet_settings,
            "approve",
            serial,
            "--device",
            "gw-late",
            "--site",
            SITE,
            "--kind",
            "parking",
            "--lot",
            LOT,
            "--spot",
            "late-A1=A1",
        )
        assert approved.returncode == 0, approved.stderr
        wait_for(
            lambda: agent.state().get("device") == "gw-late",
            30,
            "the approved agent to run as gw-late",
        )
    finally:
        agent.stop()
    assert _enrolment(url, serial) == ("enrolled", "gw-late", 0)
    audit = fleet_cli(fleet_settings, "audit", "--subject", serial, "--json")
    assert '"actor": "tester"' in audit.stdout and '"action": "approve"' in audit.stdout


def test_a_refused_serial_gets_nothing_and_is_told_why(
    fleet: Fleet,
    fleet_settings: Settings,
    dynsec: DynsecBroker,
    batch_secret: Path,
    tmp_path: Path,
) -> None:
    del fleet
    serial = serial_of(3)
    config = image_config(tmp_path / "gw.toml", dynsec, serial, BATCH, batch_secret)
    agent = AgentProcess(config).start()
    try:
        wait_for(lambda: "pending" in str(agent.state().get("enrolment")), 30, "a pending agent")
        refused = fleet_cli(fleet_settings, "refuse", serial, "--reason", "not ours")
        assert refused.returncode == 0, refused.stderr
        wait_for(
            lambda: "refused: not ours" in str(agent.state().get("enrolment")),
            30,
            "the agent to say it was refused, and why",
        )
    finally:
        agent.stop()
    assert not (tmp_path / serial / "credentials" / "identity.json").exists()
    approve_again = fleet_cli(fleet_settings, "reset", serial)
    assert approve_again.returncode == 0, approve_again.stderr
    assert _enrolment(fleet_settings.database.url, serial) is None
