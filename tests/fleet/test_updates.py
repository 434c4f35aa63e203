"""Signed updates with A/B rollback and staged rollouts, with real agents under their launcher,
the real fleet service, Mosquitto with dynamic security, ingest and PostgreSQL.

Each agent is an image that enrols itself; its buffer's sequence numbers prove that nothing
is lost or stored twice while it switches releases (and back).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from fleet.context import Fleet
from fleet.rollouts import publish_release, start_rollout
from harness.dynsec_broker import DynsecBroker
from harness.edge import AgentProcess, report, wait_for
from harness.fleet_agents import allowlist_csv, release_slots, updatable_image
from harness.releases import ReleaseKeys, manifest_of, signed_release
from ingest.service import IngestService
from store import fleet_rollouts
from store.fleet_rollouts import Rollout
from streetsense import __version__ as FACTORY  # noqa: N812
from streetsense.config import Settings
from tests.fleet.conftest import BATCH, fleet_cli, needs_dynsec, serial_of

pytestmark = needs_dynsec
# The proof's fleet size, as the issue asks: 50 agents (100 processes with their launchers)
# take 2 min 50 s on this 2-core box, 4 min 15 s when other jobs load it to 35; a slower
# machine sets STREETSENSE_TEST_ROLLOUT_AGENTS lower (20 take 1 min 40 s). bench/RESULTS.md.
AGENTS = int(os.environ.get("STREETSENSE_TEST_ROLLOUT_AGENTS", "50"))
DEADLINE_S = 25.0  # a broken release's trial: the canaries must be back within it
# A good release's trial: many agents restarting at once on a loaded box start slowly, and a
# slow start is not a failure.
GOOD_DEADLINE_S = 120.0
RESTART_S = 30.0  # a release's start, connection and first report on a loaded box


@dataclass
class Devices:
    """Enrolled agents that take updates, with what the test needs to judge them."""

    agents: dict[str, AgentProcess]  # device id -> its agent
    serials: dict[str, str]  # device id -> serial
    folder: Path

    def states(self) -> dict[str, dict]:  # type: ignore[type-arg]
        return {device: agent.state() for device, agent in self.agents.items()}

    def releases(self) -> dict[str, str]:
        return {d: str(s.get("fleet", {}).get("release")) for d, s in self.states().items()}

    def slots(self, device: str) -> dict:  # type: ignore[type-arg]
        return release_slots(self.folder / "x.toml", self.serials[device])


def _enrol(
    fleet_settings: Settings,
    broker: DynsecBroker,
    secret: Path,
    keys: ReleaseKeys,
    folder: Path,
    count: int,
) -> Devices:
    serials = {serial_of(n): f"gw-{n:02d}" for n in range(count)}
    allow = allowlist_csv(folder / "allow.csv", serials)
    loaded = fleet_cli(fleet_settings, "allow", "load", str(allow))
    assert loaded.returncode == 0, loaded.stderr
    agents = {}
    for serial, device in serials.items():
        config = updatable_image(folder / f"{device}.toml", broker, serial, BATCH, secret,
                                 keys.public)  # fmt: skip
        agents[device] = AgentProcess(config).start()
    devices = Devices(agents, {d: s for s, d in serials.items()}, folder)
    wait_for(
        lambda: all(s.get("acked", 0) > 0 for s in devices.states().values()),
        120,
        f"{count} agents to enrol and get readings confirmed",
    )
    return devices


@pytest.fixture
def devices(
    fleet: Fleet,
    fleet_settings: Settings,
    dynsec: DynsecBroker,
    batch_secret: Path,
    ingest: IngestService,
    keys: ReleaseKeys,
    tmp_path: Path,
) -> Iterator[Devices]:
    del fleet, ingest
    enrolled = _enrol(fleet_settings, dynsec, batch_secret, keys, tmp_path, AGENTS)
    yield enrolled
    for agent in enrolled.agents.values():
        agent.stop()


def _publish(fleet: Fleet, data: bytes) -> str:
    manifest = manifest_of(data)
    publish_release(fleet, data, manifest, "tester")
    return manifest.version


def _roll_out(
    fleet: Fleet, version: str, *, canary: float, waves: int, soak_s: float, deadline_s: float
) -> int:
    from datetime import UTC, datetime

    plan = Rollout(0, version, "running", None, canary, waves, deadline_s, soak_s, 0, 0, None,
                   datetime.now(UTC), "tester", "")  # fmt: skip
    rollout_id, _count = start_rollout(fleet, plan)
    return rollout_id


def _ended(url: str, rollout_id: int, timeout: float) -> fleet_rollouts.Rollout:
    def ended() -> fleet_rollouts.Rollout | None:
        with psycopg.connect(url) as conn:
            found = fleet_rollouts.rollout(conn, rollout_id)
        return found if found is not None and found.state != "running" else None

    result: fleet_rollouts.Rollout = wait_for(ended, timeout, f"rollout {rollout_id} to end")
    return result


def _progress(url: str, rollout_id: int) -> dict[str, dict]:  # type: ignore[type-arg]
    with psycopg.connect(url) as conn:
        table = fleet_rollouts.progress(conn, rollout_id)
    return {row[0]: dict(zip(table.columns, row, strict=True)) for row in table.rows}


def _settled(url: str, rollout_id: int) -> dict[str, dict] | None:  # type: ignore[type-arg]
    """Return a rollout's progress once no device is still on trial, else None."""
    progress = _progress(url, rollout_id)
    settled = all(p["state"] not in ("commanded", "installing") for p in progress.values())
    return progress if settled else None


def _sequences(url: str) -> dict[str, tuple[int, int, int, int]]:
    """Return device -> (rows, distinct seqs, lowest seq, highest seq) stored."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT device_id, count(*), count(DISTINCT seq), min(seq), max(seq) FROM readings "
            "WHERE seq IS NOT NULL GROUP BY device_id"
        ).fetchall()
    return {str(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}


def _assert_nothing_lost_or_twice(devices: Devices, url: str) -> dict[str, int]:
    """Stop the agents once all they took is confirmed; check the store holds each seq once."""
    wait_for(
        lambda: all(s["acked"] >= s["next_seq"] - 1 - 20 for s in devices.states().values()),
        120,
        "the agents' buffers to drain",
    )
    for agent in devices.agents.values():
        agent.stop()
    states = devices.states()
    stored = _sequences(url)
    totals = {"readings": 0, "lost": 0, "twice": 0, "held": 0}
    for device, state in states.items():
        rows, distinct, low, high = stored[device]
        held = state["next_seq"] - 1 - state["acked"]
        # what is not confirmed is still held (some of it stored, its ack not yet back)
        assert state["buffer_depth"] == held, device
        assert low == state["first_seq"] and state["acked"] <= high < state["next_seq"], device
        totals["readings"] += distinct
        totals["lost"] += (high - low + 1) - distinct
        totals["twice"] += rows - distinct
        totals["held"] += held
    assert totals["lost"] == 0 and totals["twice"] == 0, totals
    return totals


@pytest.mark.slow
def test_a_broken_release_stops_at_the_canary_and_a_good_one_reaches_every_agent(
    fleet: Fleet, fleet_settings: Settings, devices: Devices, keys: ReleaseKeys, tmp_path: Path
) -> None:
    url = fleet_settings.database.url
    started = time.monotonic()
    canary = 0.1
    figures: dict[str, object] = {"agents": len(devices.agents)}
    for breakage, version in (("crash", "0.1.1"), ("no-connect", "0.1.2")):
        bundle = signed_release(tmp_path, version, keys, breakage)
        rollout_id = _roll_out(fleet, _publish(fleet, bundle), canary=canary, waves=2, soak_s=1,
                               deadline_s=DEADLINE_S)  # fmt: skip
        ended = _ended(url, rollout_id, DEADLINE_S * 3)
        assert ended.state == "failed", ended
        # the other canaries, on trial when the first failed, say how theirs ended too
        progress = wait_for(lambda r=rollout_id: _settled(url, r), DEADLINE_S * 3,  # type: ignore[misc]
                            "every canary's outcome")  # fmt: skip
        canaries = {d: p for d, p in progress.items() if p["wave"] == 0}
        assert len(canaries) == max(1, round(len(devices.agents) * canary + 0.49))
        assert all(p["state"] == "rolled_back" for p in canaries.values()), canaries
        others = [p for p in progress.values() if p["wave"] > 0]
        assert others and all(p["state"] == "skipped" and p["commanded_at"] is None
                              for p in others)  # fmt: skip
        # every canary switched back by itself within the deadline, and runs the factory release
        back_s = [(r["changed_at"] - r["commanded_at"]).total_seconds() for r in canaries.values()]
        figures[f"{breakage}_canaries"] = len(canaries)
        figures[f"{breakage}_back_within_s"] = round(max(back_s), 1)
        # the launcher switches back at the deadline; the figure adds the old release's
        # restart and its report reaching the fleet (seconds when many restart at once)
        assert max(back_s) < DEADLINE_S + RESTART_S, back_s
        for device in canaries:
            wait_for(lambda d=device: devices.releases()[d] == FACTORY, 30,  # type: ignore[misc]
                     f"{device} back on {FACTORY}")  # fmt: skip
            assert devices.slots(device)["trial"] is None
        reason = next(iter(canaries.values()))["reason"]
        expected = "exited with code 1" if breakage == "crash" else "no reading confirmed within"
        assert expected in reason, reason
    good = _publish(fleet, signed_release(tmp_path, "0.2.0", keys))
    good_started = time.monotonic()
    rollout_id = _roll_out(fleet, good, canary=canary, waves=3, soak_s=2,
                           deadline_s=GOOD_DEADLINE_S)  # fmt: skip
    ended = _ended(url, rollout_id, 400)
    assert ended.state == "done", ended
    figures["good_rollout_s"] = round(time.monotonic() - good_started, 1)
    wait_for(lambda: set(devices.releases().values()) == {good}, 30, "every agent on 0.2.0")
    assert all(devices.slots(d)["current"] == good and devices.slots(d)["previous"] == ""
               for d in devices.agents)  # fmt: skip
    status = fleet_cli(fleet_settings, "rollout", "status")
    assert f"of {good}: done" in status.stdout, status.stdout
    totals = _assert_nothing_lost_or_twice(devices, url)
    report("rollout proof", **figures, **totals, wall_s=round(time.monotonic() - started, 1))


@pytest.mark.slow
def test_a_release_that_connects_but_gets_nothing_confirmed_is_rolled_back_not_counted_updated(
    fleet: Fleet,
    fleet_settings: Settings,
    dynsec: DynsecBroker,
    batch_secret: Path,
    ingest: IngestService,
    keys: ReleaseKeys,
    tmp_path: Path,
) -> None:
    """It reports in as the new version, so only the confirmed reading may count as updated."""
    del ingest
    url = fleet_settings.database.url
    devices = _enrol(fleet_settings, dynsec, batch_secret, keys, tmp_path, 2)
    try:
        bundle = signed_release(tmp_path, "0.1.3", keys, "no-confirm")
        rollout_id = _roll_out(fleet, _publish(fleet, bundle), canary=1.0, waves=1, soak_s=1,
                               deadline_s=DEADLINE_S)  # fmt: skip
        assert _ended(url, rollout_id, DEADLINE_S * 3).state == "failed"
        progress = wait_for(lambda: _settled(url, rollout_id), DEADLINE_S * 3, "both outcomes")
        assert {p["state"] for p in progress.values()} == {"rolled_back"}, progress
        assert all("no reading confirmed within" in p["reason"] for p in progress.values())
        wait_for(lambda: set(devices.releases().values()) == {FACTORY}, 30, "both back")
        _assert_nothing_lost_or_twice(devices, url)
    finally:
        for agent in devices.agents.values():
            agent.stop()


@pytest.mark.slow
def test_a_proven_release_that_later_keeps_crashing_is_left_for_the_previous_one(
    fleet: Fleet,
    fleet_settings: Settings,
    dynsec: DynsecBroker,
    batch_secret: Path,
    ingest: IngestService,
    keys: ReleaseKeys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    del ingest
    url = fleet_settings.database.url
    mark = tmp_path / "crash-now"
    monkeypatch.setenv("STREETSENSE_TEST_CRASH_MARK", str(mark))
    devices = _enrol(fleet_settings, dynsec, batch_secret, keys, tmp_path, 1)
    [(device, agent)] = devices.agents.items()
    try:
        bundle = signed_release(tmp_path, "0.1.5", keys, "crash-on-mark")
        rollout_id = _roll_out(fleet, _publish(fleet, bundle), canary=1.0, waves=1, soak_s=1,
                               deadline_s=DEADLINE_S)  # fmt: skip
        assert _ended(url, rollout_id, DEADLINE_S * 3).state == "done"
        assert devices.slots(device)["current"] == "0.1.5"
        mark.touch()  # from now on the release crashes on start; then its process dies
        assert agent.process is not None
        child = Path(f"/proc/{agent.process.pid}/task/{agent.process.pid}/children").read_text()
        os.kill(int(child.split()[0]), 9)
        wait_for(lambda: devices.releases()[device] == FACTORY, 60, "back on the factory release")
        assert devices.slots(device) == {"current": "", "previous": "", "trial": None}
        wait_for(lambda: "release-fallback" in fleet_cli(fleet_settings, "audit", "--subject",
                                                          device, "--json").stdout,
                 30, "the fallback in the audit log")  # fmt: skip
        _assert_nothing_lost_or_twice(devices, url)
    finally:
        for process in devices.agents.values():
            process.stop()
