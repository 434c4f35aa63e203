"""Fault 1 at scale: real edge agents and real ingest through a broker killed with SIGKILL.

Shared by tests/reliability/test_broker_fleet.py (CI sizes) and bench/reliability_fleet.py
(100,000 readings). Each agent is a `streetsense-edge run` process replaying a file of its own,
so the number of readings is known in advance and every one must end up stored exactly once.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from harness.edge import AgentProcess, agent_config, ingest_secret, wait_for
from harness.ingest import IngestProcess, wait_log
from harness.ingest_services import persistent_mosquitto
from harness.nats import NatsCluster, NatsNode
from harness.services import TestBroker
from streetsense.config import Settings, with_overrides
from streetsense.topics import Topics

log = logging.getLogger(__name__)
FILE_START = 1_700_000_000.0  # shifted to "now" by the replay driver (retime)


@dataclass(frozen=True, slots=True)
class FleetRun:
    """One broker-kill scenario."""

    agents: int = 4
    per_agent: int = 1_000
    spacing_ms: int = 5  # file time between two readings of one agent
    confirm: str = "ingest"  # "broker": the control, readings freed on PUBACK
    ingest_online: bool = True
    ingests: int = 1
    partitioned: bool = False  # ingest i takes part i/ingests (ingest.partition), no $share
    # What is killed: "broker" (the whole broker, restarted once the agents read `restart_at`
    # of their files); "ingest-node" or "agents-node" (the cluster node ingest, or only
    # agents, are connected to; left dead: the clients must fail over to the others);
    # "ingest-process" (the second ingest process, SIGKILLed, restarted at `restart_at`)
    fault: str = "broker"
    kill_at: float = 0.3  # share of the readings the agents have read when the fault strikes
    restart_at: float = 0.5
    settle_timeout_s: float = 120.0
    shared_group: str | None = None  # None: the settings' own; "": a plain subscription


def replay_file(path: Path, count: int, spacing_ms: int) -> Path:
    """Write `count` lamp power readings, one every `spacing_ms` of file time."""
    lines = ["time,name,value"] + [
        f"{FILE_START + i * spacing_ms / 1000:.3f},lamp_power,{50 + i % 70}" for i in range(count)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_agents(
    run: FleetRun, broker: TestBroker, topics: Topics, workdir: Path, secret: bytes
) -> list[AgentProcess]:
    """Start one agent process per device, each replaying its own file."""
    agents = []
    for n in range(run.agents):
        device = f"gw-{n}"
        config = agent_config(
            workdir / f"{device}.toml",
            broker.url,
            topics,
            device=device,
            secret=secret,
            mqtt={"protocol": broker.protocol},
            buffer={"confirm": run.confirm, "resend_timeout_s": 3.0, "drain_rate": 5_000.0,
                    "max_inflight": 40},
            driver={"kind": "replay", "retime": True,
                    "path": str(replay_file(workdir / f"{device}.events", run.per_agent,
                                            run.spacing_ms))},
            status={"heartbeat_s": 5.0},
        )  # fmt: skip
        agents.append(AgentProcess(config).start())
    return agents


def stored_by_device(database_url: str) -> dict[str, tuple[int, int]]:
    """Return device -> (rows, distinct seqs) of the readings table."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT device_id, count(*), count(DISTINCT seq) FROM readings"
            " WHERE kind = 'lamp_power' GROUP BY device_id"
        ).fetchall()
    return {str(device): (int(n), int(distinct)) for device, n, distinct in rows}


def _all_accepted(agents: list[AgentProcess], per_agent: int) -> bool:
    return all(a.state()["next_seq"] - a.state()["first_seq"] >= per_agent for a in agents)


def _all_confirmed(agents: list[AgentProcess], per_agent: int) -> bool:
    for agent in agents:
        state = agent.state()
        if (
            state["next_seq"] - state["first_seq"] < per_agent
            or state["acked"] < state["next_seq"] - 1
        ):
            return False
    return True


def _row_count(database_url: str) -> int:
    return sum(rows for rows, _ in stored_by_device(database_url).values())


def _quiet(database_url: str, seconds: float, timeout: float) -> int:
    """Wait until the readings table stops growing for `seconds`; return its row count."""
    deadline = time.monotonic() + timeout
    last, since = _row_count(database_url), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _row_count(database_url)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            break
    return last


def _read(agents: list[AgentProcess]) -> int:
    """Return how many readings the agents have read from their files so far."""
    return sum(a.state()["next_seq"] - a.state()["first_seq"] for a in agents)


_CONNECTED = re.compile(r"connected to the broker at \S+://(\S+) ")


def ingest_node(log_path: Path) -> str:
    """Return host:port of the broker node an ingest process connected to last."""
    found = _CONNECTED.findall(log_path.read_text(errors="replace"))
    assert found, f"{log_path.name} names no broker connection"
    return str(found[-1])


def _victim(run: FleetRun, cluster: NatsCluster, ingest: str, agents: list[str]) -> NatsNode:
    """Return the node to kill: ingest's, or one that only agents use."""
    if run.fault == "ingest-node":
        return cluster.node_at(ingest)
    for node in cluster.nodes:
        if node.address != ingest and any(a.endswith(node.address) for a in agents):
            return node
    raise AssertionError(f"every agent shares ingest's node {ingest}: {agents}")


def _strike(
    run: FleetRun, broker: TestBroker, agents: list[AgentProcess], ingests: list[IngestProcess]
) -> dict[str, str]:
    """Inject the scenario's fault; return which node died and whose it was (node faults)."""
    total = run.agents * run.per_agent
    ingest = ingests[0]
    if run.fault in ("broker", "ingest-process"):
        victim: TestBroker | IngestProcess = broker if run.fault == "broker" else ingests[1]
        victim.kill()  # mid-stream: what it held in flight goes with it
        # the agents buffer while the broker is down; a dead ingest's part waits in its session
        wait_for(lambda: _read(agents) >= run.restart_at * total, run.settle_timeout_s,
                 f"the agents to read {run.restart_at:.0%} of their files")  # fmt: skip
        victim.start()
        if isinstance(victim, IngestProcess):
            assert wait_log(victim.log_path, "subscribed; ingesting", 30, occurrences=2)
        return {}
    assert isinstance(broker, NatsCluster), "a node fault needs a cluster"
    wait_for(lambda: all(a.state()["broker"] for a in agents), 30, "agents' links")
    ingest_at = ingest_node(ingest.log_path)
    node = _victim(run, broker, ingest_at, [a.state()["broker"] for a in agents])
    hosted = [a.config.stem for a in agents if a.state()["broker"].endswith(node.address)]
    if ingest_at == node.address:
        hosted.append("ingest")
    node.kill()  # left dead: its clients must find the other nodes
    return {"killed": node.address, "its_clients": ",".join(hosted)}


def _settle(run: FleetRun, agents: list[AgentProcess], database_url: str) -> None:
    """Wait until everything is confirmed (or, freed on PUBACK, until ingest stops storing)."""
    if run.confirm == "ingest":
        wait_for(lambda: _all_confirmed(agents, run.per_agent), run.settle_timeout_s,
                 "ingest to confirm every reading")  # fmt: skip
        _quiet(database_url, 1.0, 10.0)
    else:
        # Freed on PUBACK: nothing waits for ingest; wait until ingest stops storing.
        wait_for(lambda: all(a.state()["buffer_depth"] == 0 for a in agents),
                 run.settle_timeout_s, "the agents to empty their buffers")  # fmt: skip
        _quiet(database_url, 3.0, run.settle_timeout_s)


def _start_ingests(ingests: list[IngestProcess], online: bool) -> None:
    """Start ingest until it subscribed; stop it again when the scenario wants it offline."""
    for ingest in ingests:
        ingest.start()
        assert wait_log(ingest.log_path, "subscribed; ingesting", 30), "ingest did not start"
    if not online:
        for ingest in ingests:
            assert ingest.terminate() == 0  # its session stays; the broker queues for it


def run_fleet(
    run: FleetRun,
    settings: Settings,
    topics: Topics,
    workdir: Path,
    broker: TestBroker | None = None,
) -> dict[str, Any]:
    """Run the scenario; return its figures (sent, stored, lost, duplicated, recovery...).

    `broker`: a started broker (default: a private Mosquitto); a node fault needs a NatsCluster.
    """
    broker = broker or persistent_mosquitto(workdir / "broker").start()
    mqtt: dict[str, str] = {"url": broker.url, "protocol": broker.protocol}
    if broker.protocol != "5":
        mqtt["shared_group"] = ""  # no $share before MQTT 5
    if run.shared_group is not None:
        mqtt["shared_group"] = run.shared_group
    settings = with_overrides(settings, mqtt=mqtt, ingest={"auto_register": True})
    url = settings.database.url
    ingests = [
        IngestProcess(_part(settings, run, n), f"ingest-rel-{n}", workdir / f"ingest-{n}.log")
        for n in range(run.ingests)
    ]
    agents: list[AgentProcess] = []
    total = run.agents * run.per_agent
    moved: dict[str, str] = {}
    try:
        _start_ingests(ingests, run.ingest_online)
        if run.fault == "broker":
            # A clean restart writes the sessions to disk, as on a broker that has run a while.
            broker.stop()
            broker.start()
        started = time.monotonic()
        agents = start_agents(run, broker, topics, workdir, ingest_secret(url))
        wait_for(lambda: _read(agents) >= run.kill_at * total, run.settle_timeout_s,
                 f"the agents to read {run.kill_at:.0%} of their files")  # fmt: skip
        before_kill = _read(agents)
        moved = _strike(run, broker, agents, ingests)
        restarted = time.monotonic()
        wait_for(lambda: _all_accepted(agents, run.per_agent), run.settle_timeout_s,
                 "every agent to read its whole file")  # fmt: skip
        if not run.ingest_online:
            for ingest in ingests:
                ingest.start()
                assert wait_log(ingest.log_path, "subscribed; ingesting", 30, occurrences=2)
        _settle(run, agents, url)
        recovery = time.monotonic() - restarted
        states = [a.state() for a in agents]
        if moved:
            moved["ingest_now_at"] = ingest_node(ingests[0].log_path)
    finally:
        for agent in agents:
            agent.stop()
        for ingest in ingests:
            if ingest.alive():
                ingest.terminate()
        broker.stop()
    stored = stored_by_device(url)
    sent = sum(s["next_seq"] - s["first_seq"] for s in states)
    rows = sum(n for n, _ in stored.values())
    distinct = sum(d for _, d in stored.values())
    figures = {
        "agents": run.agents,
        "sent": sent,
        "sent_before_kill": before_kill,
        "stored": rows,
        "lost": sent - distinct,
        "duplicated": rows - distinct,
        "resent": sum(int(s["resent"]) for s in states),
        "still_buffered": sum(int(s["buffer_depth"]) for s in states),
        "recovery_s": round(recovery, 2),
        "wall_s": round(time.monotonic() - started, 2),
        **moved,
    }
    if run.partitioned:
        figures["written_by_part"] = [written(ingest.log_path) for ingest in ingests]
    log.info("fleet %s: %s", describe(run), figures)
    return figures


def _part(settings: Settings, run: FleetRun, n: int) -> Settings:
    """Return ingest n's settings: part n+1 of the run's ingests when partitioned."""
    if not run.partitioned:
        return settings
    return with_overrides(settings, ingest={"partition": f"{n + 1}/{run.ingests}"})


_STOPPED = re.compile(r"ingest stopped: \d+ messages, (\d+) readings written")


def written(log_path: Path) -> int:
    """Return the readings an ingest process wrote in its latest life (from its stop line)."""
    found = _STOPPED.findall(log_path.read_text(errors="replace"))
    return int(found[-1]) if found else -1


def describe(run: FleetRun) -> str:
    """Name a scenario for reports."""
    ingest = "online" if run.ingest_online else "offline"
    plain = ", plain subscription" if run.shared_group == "" else ""
    killed = {"broker": "broker", "ingest-node": "ingest's node", "agents-node": "agents' node",
              "ingest-process": "a partitioned ingest process"}  # fmt: skip
    return f"{killed[run.fault]} SIGKILL, ingest {ingest}{plain}, free on {run.confirm} ack"
