"""What the demo runs: real agents beside the simulator, never for the same devices; --speed."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from streetsense.demo import plan
from streetsense.demo.cli import parse_speed


def _city(speed: float = 1.0, agent_lots: int = 2, agent_segments: int = 1) -> plan.CityPlan:
    return plan.CityPlan(
        registry_path=Path("city.toml"), state_dir=Path("devices"), lots=4, segments=3, seed=7,
        history_s=3 * 86_400, speed=speed, agent_lots=agent_lots, agent_segments=agent_segments,
    )  # fmt: skip


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_agents_run_for_exactly_the_devices_the_simulator_leaves_out() -> None:
    steps = {step.name: step.argv for step in plan.service_steps(_city(), 1, 2)}
    devices, agents = steps["devices"], steps["agents"]
    assert devices[devices.index("simulate") + 1] == "run"
    assert agents[agents.index("simulate") + 1] == "agents"
    for name in ("--agent-lots", "--agent-segments", "--seed", "--lots", "--segments"):
        assert _option(devices, name) == _option(agents, name)
    assert (_option(agents, "--agent-lots"), _option(agents, "--agent-segments")) == ("2", "1")


def test_no_agents_asked_for_runs_the_simulator_alone() -> None:
    names = [step.name for step in plan.service_steps(_city(agent_lots=0, agent_segments=0), 1, 2)]
    assert "agents" not in names and "devices" in names


def test_speed_one_runs_live_in_real_time() -> None:
    city = _city()
    assert city.catch_up_s == 0
    live = {step.name: step.argv for step in plan.service_steps(city, 1, 2)}["devices"]
    assert "--catch-up" not in live and "--catch-up" not in plan.backfill_step(city).argv


def test_speed_compresses_the_recent_past_where_the_backfill_ends() -> None:
    city = _city(speed=31.0)
    assert city.catch_up_s == 3_600  # (31 - 1) x two wall minutes
    live = {step.name: step.argv for step in plan.service_steps(city, 1, 2)}["devices"]
    backfill = plan.backfill_step(city).argv
    for argv in (live, backfill):
        assert _option(argv, "--catch-up") == "3600s"
        assert _option(argv, "--speed") == "31"
    assert _city(speed=10_000.0).catch_up_s == 12 * 3_600


def test_speed_below_one_is_refused() -> None:
    assert parse_speed("60") == 60.0
    for text in ("0.5", "0", "-3", "fast", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
            parse_speed(text)


def test_an_operator_closes_a_lot_for_half_an_hour_as_the_city_goes_live() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    argv = plan.closure_step(_city(), now).argv
    assert argv[argv.index("registry") + 1 :][:2] == ["close", "lot-003"]
    assert _option(argv, "--until") == "2026-12-07T12:30:00+00:00"
    assert _option(argv, "--by") == "demo operator"


def test_the_alerts_service_runs_with_the_city() -> None:
    steps = {step.name: step.argv for step in plan.service_steps(_city(), 1, 2)}
    alerts = steps["alerts"]
    assert alerts[alerts.index("alerts") + 1] == "run"
