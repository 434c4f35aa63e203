"""Store-and-forward against the real broker, with a peer playing ingest's confirmation role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.edge import (
    AgentProcess,
    IngestPeer,
    agent_config,
    missing_and_duplicates,
    report,
    wait_for,
)
from streetsense.topics import Topics


@pytest.fixture
def peer(broker: str, topics: Topics) -> Iterator[IngestPeer]:
    """Return a connected peer that confirms like ingest."""
    instance = IngestPeer(broker, topics).start()
    yield instance
    instance.stop()


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    """Collect agent processes and stop any left running."""
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.kill()


def test_readings_leave_the_buffer_only_on_ingest_confirmation(
    broker: str, topics: Topics, tmp_path: Path, peer: IngestPeer, agents: list[AgentProcess]
) -> None:
    peer.acking = False
    agent = AgentProcess(agent_config(tmp_path / "agent.toml", broker, topics))
    agents.append(agent.start())
    peer.start_seq["gw-1"] = agent.state()["first_seq"]
    wait_for(lambda: len(peer.log("gw-1").counts) >= 100, 20, "100 readings at the peer")
    # The broker acknowledged every pack, yet nothing left the buffer.
    state = wait_for(lambda: agent.state()["published"] >= 100 and agent.state(), 10, "state")
    assert state["buffer_depth"] == state["next_seq"] - state["first_seq"]
    assert state["acked"] == 0

    peer.acking = True
    peer.ack_now("central", "gw-1")
    wait_for(lambda: agent.state()["acked"] >= state["next_seq"] - 1, 20, "the ack to arrive")
    agent.stop()
    final = agent.state()
    assert final["running"] is False
    log = peer.log("gw-1")
    missing, twice = missing_and_duplicates(log, final["first_seq"], final["acked"])
    assert missing == []
    assert twice == 0
    assert final["buffer_depth"] == final["next_seq"] - 1 - final["acked"]


def test_health_heartbeat_reports_the_buffer(
    broker: str, topics: Topics, tmp_path: Path, peer: IngestPeer, agents: list[AgentProcess]
) -> None:
    agent = AgentProcess(agent_config(tmp_path / "agent.toml", broker, topics))
    agents.append(agent.start())
    beats = wait_for(
        lambda: [s for s in peer.log("gw-1").status if "uptime" in s], 20, "a health heartbeat"
    )
    health = beats[-1]
    assert {"uptime", "buffer_depth", "buffer_dropped", "cpu", "memory"} <= set(health)
    assert health["buffer_dropped"] == 0


def test_buffer_cap_drops_the_oldest_counts_and_reports_them(
    broker: str, topics: Topics, tmp_path: Path, peer: IngestPeer, agents: list[AgentProcess]
) -> None:
    peer.deaf = True  # nothing is confirmed: the buffer fills to its cap
    config = agent_config(
        tmp_path / "agent.toml",
        broker,
        topics,
        buffer={"cap_bytes": 12_000, "resend_timeout_s": 1.0},
        driver={"event_rate": 200.0},
    )
    agent = AgentProcess(config)
    agents.append(agent.start())
    first = agent.state()["first_seq"]
    peer.start_seq["gw-1"] = first
    dropped = wait_for(lambda: agent.state()["buffer_dropped"] > 300, 30, "drops at the cap")
    state = agent.state()
    assert state["buffer_bytes"] <= 12_000

    peer.deaf = False
    log = peer.log("gw-1")
    wait_for(lambda: log.floor is not None, 20, "a pack carrying seq_floor")
    health = wait_for(
        lambda: [h for h in log.status if h.get("buffer_dropped", 0) >= dropped], 20, "drop report"
    )
    # Re-sends back off while nothing is confirmed (up to 16 timeouts): allow for that.
    floor = log.floor
    wait_for(lambda: agent.state()["acked"] >= floor + 200, 40, "confirmations past the floor")
    agent.stop()
    final = agent.state()
    assert log.floor is not None and log.floor > first
    # Everything below the floor that the peer lacks was dropped, oldest first, and counted;
    # everything from the floor on arrived.
    missing, twice = missing_and_duplicates(log, first, final["acked"])
    assert all(seq < log.floor for seq in missing)
    assert len(missing) <= final["buffer_dropped"]
    assert final["acked"] >= log.floor
    assert twice == 0
    report(
        "buffer cap",
        accepted=final["next_seq"] - first,
        dropped=final["buffer_dropped"],
        floor_above_first=log.floor - first,
        reported=health[-1]["buffer_dropped"],
    )


def test_invalid_remote_config_is_rejected_reported_and_the_old_one_kept(
    broker: str, topics: Topics, tmp_path: Path, peer: IngestPeer, agents: list[AgentProcess]
) -> None:
    config = agent_config(tmp_path / "agent.toml", broker, topics, parking={"free_after_s": 60.0})
    agent = AgentProcess(config)
    agents.append(agent.start())
    wait_for(lambda: agent.state()["link"] == "up", 20, "the link")

    peer.publish_config("central", "gw-1", {"version": 7, "parking": {"free_after_s": -5}})
    reply = wait_for(lambda: peer.replies, 20, "a config reply")[-1]
    assert reply["applied"] is False
    assert reply["version"] == 7
    assert "free_after_s" in reply["error"]
    assert agent.state()["tunables"]["parking"]["free_after_s"] == 60.0

    peer.publish_config("central", "gw-1", {"version": 8, "wifi": {"ssid": "x"}})
    wait_for(lambda: len(peer.replies) >= 2, 20, "a second reply")
    assert peer.replies[-1]["applied"] is False

    peer.publish_config("central", "gw-1", {"version": 9, "parking": {"free_after_s": 20}})
    wait_for(lambda: len(peer.replies) >= 3, 20, "a third reply")
    assert peer.replies[-1] == {"applied": True, "version": 9, "error": None}
    state = wait_for(lambda: agent.state()["config_version"] == 9 and agent.state(), 10, "state")
    assert state["tunables"]["parking"]["free_after_s"] == 20
