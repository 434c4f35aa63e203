"""A real agent refuses bad bundles that reach it over MQTT, keeps running its release, says
why in its status, and the fleet records the reason per device (real broker, service, store).

The attacker got bytes onto a release topic and a command naming them (the fleet's broker
credentials, or a tricked operator) but holds no release key: an unsigned bundle, one signed
by another key, one altered after signing, and an old release signed with the real key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from fleet.context import Fleet
from fleet.rollouts import start_rollout
from harness.dynsec_broker import DynsecBroker
from harness.edge import AgentProcess, wait_for
from harness.fleet_agents import allowlist_csv, release_slots, updatable_image
from harness.releases import (
    ReleaseKeys,
    altered,
    release_keys,
    signed_release,
    unsigned,
)
from ingest.service import IngestService
from store import fleet_rollouts
from store.fleet_rollouts import Release, Rollout
from streetsense import __version__ as FACTORY  # noqa: N812
from streetsense.config import Settings
from streetsense.release_bundle import sha256, unpack
from streetsense.signature import sign
from tests.fleet.conftest import BATCH, fleet_cli, needs_dynsec, serial_of

pytestmark = needs_dynsec
DEVICE = "gw-target"


@pytest.fixture
def agent(
    fleet: Fleet,
    fleet_settings: Settings,
    dynsec: DynsecBroker,
    batch_secret: Path,
    ingest: IngestService,
    keys: ReleaseKeys,
    tmp_path: Path,
) -> Iterator[tuple[AgentProcess, str]]:
    del fleet, ingest
    serial = serial_of(7)
    allow = allowlist_csv(tmp_path / "allow.csv", {serial: DEVICE})
    assert fleet_cli(fleet_settings, "allow", "load", str(allow)).returncode == 0
    config = updatable_image(tmp_path / "gw.toml", dynsec, serial, BATCH, batch_secret,
                             keys.public)  # fmt: skip
    process = AgentProcess(config).start()
    wait_for(lambda: process.state().get("acked", 0) > 0, 60, "the agent's confirmed readings")
    yield process, serial
    process.stop()


def _offer(fleet: Fleet, version: str, data: bytes) -> int:
    """Put bytes on a release topic as `version` and roll them out, past the fleet's checks."""
    fleet.link.publish(fleet.fleet_topics.release(version), data, retain=True)
    now = datetime.now(UTC)
    with fleet.conn.transaction():
        fleet_rollouts.save_release(fleet.conn, Release(version, sha256(data), len(data)), {},
                                    "attacker", now)  # fmt: skip
    plan = Rollout(0, version, "running", None, 1.0, 1, 30.0, 0.0, 0, 0, None, now,
                   "attacker", "")  # fmt: skip
    return start_rollout(fleet, plan)[0]


def _outcome(url: str, rollout_id: int) -> tuple[str, str]:
    def settled() -> tuple[str, str] | None:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT state, reason FROM fleet_rollout_devices WHERE rollout_id = %s "
                "AND device_id = %s AND state NOT IN ('waiting', 'commanded')",
                (rollout_id, DEVICE),
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    found: tuple[str, str] = wait_for(settled, 30, f"the device's answer to rollout {rollout_id}")
    return found


def _rollout_state(url: str, rollout_id: int) -> str | None:
    with psycopg.connect(url) as conn:
        found = fleet_rollouts.rollout(conn, rollout_id)
    return None if found is None else found.state


def test_unsigned_forged_tampered_and_older_bundles_are_refused_with_the_reason(
    fleet: Fleet,
    fleet_settings: Settings,
    agent: tuple[AgentProcess, str],
    keys: ReleaseKeys,
    tmp_path: Path,
) -> None:
    process, serial = agent
    url = fleet_settings.database.url
    good = signed_release(tmp_path, "0.3.0", keys)
    attacker = release_keys(tmp_path / "attacker", "attacker")
    agent_code = bytearray(unpack(good).agent)
    agent_code[100] ^= 0x01
    old_manifest = json.loads(unpack(good).manifest_bytes)
    old_manifest["version"] = "0.0.9"
    old_bytes = json.dumps(old_manifest).encode()
    cases = {
        # version offered -> (bundle, the refusal code the device must report)
        "0.3.1": (unsigned(good), "unsigned"),
        "0.3.2": (altered(good, signature=sign(unpack(good).manifest_bytes, attacker.private)),
                  "signature"),
        "0.3.3": (altered(good, agent=bytes(agent_code)), "tampered"),
        # an old release, validly signed, offered as if it were new
        "0.3.4": (altered(good, manifest=old_bytes, signature=sign(old_bytes, keys.private)),
                  "downgrade"),
    }  # fmt: skip
    for version, (bundle, code) in cases.items():
        rollout_id = _offer(fleet, version, bundle)
        state, reason = _outcome(url, rollout_id)
        assert (state, reason.split(":")[0]) == ("refused", code), (version, reason)
        said = f"release {version} refused"
        wait_for(lambda s=said: s in str(process.state()["fleet"]["update"]), 10,  # type: ignore[misc]
                 "the refusal in the agent's status")  # fmt: skip
        assert code in process.state()["fleet"]["update"]
        wait_for(lambda r=rollout_id: _rollout_state(url, r) == "failed", 10,  # type: ignore[misc]
                 "the refused release to stop its rollout")  # fmt: skip
    # the agent never left its release, never restarted, and its readings still flow
    state = process.state()
    assert state["fleet"]["release"] == FACTORY and state["link"] == "up"
    assert release_slots(tmp_path / "gw.toml", serial).get("trial") is None
    assert not list((tmp_path / serial / "releases").glob("*.pyz"))
    acked = state["acked"]
    wait_for(lambda: process.state()["acked"] > acked, 30, "readings confirmed after the attack")
