"""Fault 1 with several real edge agents and real ingest: the broker SIGKILLed mid-stream.

CI sizes (4 agents x 1,000 readings); bench/reliability_fleet.py runs 100,000.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.fleet import FleetRun, run_fleet
from streetsense.config import Settings
from streetsense.topics import Topics

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("ingest_online", [True, False], ids=["ingest-online", "ingest-offline"])
def test_broker_sigkill_with_real_agents_loses_and_doubles_nothing(
    ingest_online: bool,
    settings: Settings,
    topics: Topics,
    tmp_path: Path,
    report: Callable[..., None],
) -> None:
    run = FleetRun(agents=4, per_agent=1_000, ingest_online=ingest_online)
    figures = run_fleet(run, settings, topics, tmp_path)
    report(f"fleet_broker_kill_{'online' if ingest_online else 'offline'}", **figures)
    assert figures["sent"] == run.agents * run.per_agent
    assert 0 < figures["sent_before_kill"] < figures["sent"], "the kill was not mid-stream"
    assert (figures["stored"], figures["lost"], figures["duplicated"]) == (figures["sent"], 0, 0)
    assert figures["still_buffered"] == 0


def test_control_freeing_on_broker_ack_loses_readings(
    settings: Settings, topics: Topics, tmp_path: Path, report: Callable[..., None]
) -> None:
    """The same agents freeing readings on PUBACK lose what the killed broker held.

    A plain subscription, so that the loss is only the kill's: Mosquitto forgets shared
    subscriptions on restart (test_broker_sessions.py) and would drop the rest too.
    """
    run = FleetRun(agents=4, per_agent=1_000, confirm="broker", ingest_online=False,
                   shared_group="")  # fmt: skip
    figures = run_fleet(run, settings, topics, tmp_path)
    report("fleet_broker_kill_control", **figures)
    assert figures["sent"] == run.agents * run.per_agent
    assert figures["duplicated"] == 0
    assert figures["lost"] > 0, "freeing on the broker's acknowledgement should have lost data"
    assert figures["stored"] > 0  # what was published after the restart arrives
    assert figures["stored"] + figures["lost"] == figures["sent"]
