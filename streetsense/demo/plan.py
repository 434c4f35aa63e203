"""What the demo runs: the `streetsense` commands of every room, in order, with their settings.

The rooms own their commands; this module only knows their names and arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from streetsense.demo.supervisor import ChildSpec, streetsense_command

CATCH_UP_WALL_S: Final = 120.0
CLOSURE: Final = timedelta(minutes=30)
MAX_CATCH_UP_S: Final = 12 * 3_600


@dataclass(frozen=True, slots=True)
class CityPlan:
    """The generated city and how much history it gets."""

    registry_path: Path
    state_dir: Path
    lots: int
    segments: int
    seed: int
    history_s: float
    speed: float
    agent_lots: int = 0
    agent_segments: int = 0

    @property
    def catch_up_s(self) -> float:
        """How far back the live city starts, to play at `speed` until it reaches the present.

        Live readings may not run ahead of the real clock (ingest refuses the future), so a
        speed-up can only compress the recent past: about two wall minutes of it, at most 12 h.
        """
        if self.speed <= 1.0:
            return 0.0
        return float(min(round((self.speed - 1.0) * CATCH_UP_WALL_S), MAX_CATCH_UP_S))


def _seconds(seconds: float) -> str:
    return f"{max(0, round(seconds))}s"


def _city_args(city: CityPlan) -> list[str]:
    """The arguments that make `simulate` regenerate the same city (same seed, same sizes)."""
    return [
        "--seed", str(city.seed), "--lots", str(city.lots), "--segments", str(city.segments),
        "--registry", str(city.registry_path), "--state-dir", str(city.state_dir),
    ]  # fmt: skip


def migrate_step() -> ChildSpec:
    """Bring the schema up to date."""
    return ChildSpec("migrate", streetsense_command("db", "migrate"))


def city_step(city: CityPlan) -> ChildSpec:
    """Generate the city's registry file."""
    return ChildSpec("city", streetsense_command("simulate", "city", *_city_args(city)))


def registry_step(city: CityPlan) -> ChildSpec:
    """Load the registry into the store."""
    return ChildSpec("registry", streetsense_command("registry", "load", str(city.registry_path)))


def keys_step(city: CityPlan) -> ChildSpec:
    """Write every device's confirmation key where `simulate agents` looks for them."""
    argv = streetsense_command("registry", "key", "--all", "--out", str(agent_keys(city.state_dir)))
    return ChildSpec("keys", argv)


def agent_keys(state_dir: Path) -> Path:
    """Where `simulate agents --state-dir DIR` reads its devices' confirmation keys."""
    return state_dir / "agents" / "keys"


def backfill_step(city: CityPlan, span_s: float | None = None) -> ChildSpec:
    """Publish the history (or the last `span_s` of it) through the normal ingest path, in
    accelerated time, then stop."""
    span = city.history_s if span_s is None else min(span_s, city.history_s)
    argv = streetsense_command(
        "simulate", "run", *_city_args(city), "--backfill", _seconds(span),
        "--duration", "0s", *_catch_up_args(city),
    )  # fmt: skip
    return ChildSpec("backfill", argv)


def _catch_up_args(city: CityPlan) -> list[str]:
    """The arguments that end the backfill, and start the live city, `catch_up_s` ago."""
    if city.catch_up_s <= 0:
        return []
    return ["--catch-up", _seconds(city.catch_up_s), "--speed", f"{city.speed:g}"]


def _agent_args(city: CityPlan) -> list[str]:
    """The arguments that pick the devices real edge agents run for (the same in both)."""
    return ["--agent-lots", str(city.agent_lots), "--agent-segments", str(city.agent_segments)]


def service_steps(city: CityPlan, feeds_port: int, dashboard_port: int) -> list[ChildSpec]:
    """Return the long-running services, in start order (they stop in reverse)."""
    live = streetsense_command(
        "simulate", "run", *_city_args(city), *_agent_args(city), *_catch_up_args(city)
    )
    steps = [
        ChildSpec("analytics", streetsense_command("analytics", "run")),
        # the shipped default rules: the Alerts page and the map's rings show them
        ChildSpec("alerts", streetsense_command("alerts", "run")),
        ChildSpec("feeds", streetsense_command("feeds", "serve", "--port", str(feeds_port))),
        ChildSpec("dashboard", streetsense_command("dashboard", "--port", str(dashboard_port))),
        ChildSpec("devices", live),
    ]
    if city.agent_lots or city.agent_segments:
        # the same edge agent code a pole runs, for a few devices `simulate run` leaves out
        agents = streetsense_command("simulate", "agents", *_city_args(city), *_agent_args(city))
        steps.append(ChildSpec("agents", agents))
    return steps


def closure_step(city: CityPlan, now: datetime | None = None) -> ChildSpec:
    """An operator closes one kerbside zone for half an hour as the city goes live, so every
    page and feed shows a closure, and then its end."""
    lot = f"lot-{min(3, city.lots):03d}"
    until = (now or datetime.now(UTC)) + CLOSURE
    argv = streetsense_command(
        "registry", "close", lot, "--reason", "street event (demo closure)",
        "--by", "demo operator", "--until", until.isoformat(timespec="seconds"),
    )  # fmt: skip
    return ChildSpec("closure", argv)


def ingest_step() -> ChildSpec:
    """The ingest service: started before the backfill, which goes through it."""
    return ChildSpec("ingest", streetsense_command("ingest"))
