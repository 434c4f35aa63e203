"""What the demo runs: the `streetsense` commands of every room, in order, with their settings.

The rooms own their commands; this module only knows their names and arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streetsense.demo.supervisor import ChildSpec, streetsense_command


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


def backfill_step(city: CityPlan) -> ChildSpec:
    """Publish the history through the normal ingest path, in accelerated time, then stop."""
    argv = streetsense_command(
        "simulate", "run", *_city_args(city), "--backfill", _seconds(city.history_s),
        "--duration", "0s",
    )  # fmt: skip
    return ChildSpec("backfill", argv)


def service_steps(city: CityPlan, feeds_port: int, dashboard_port: int) -> list[ChildSpec]:
    """Return the long-running services, in start order (they stop in reverse)."""
    live = streetsense_command("simulate", "run", *_city_args(city))
    return [
        ChildSpec("analytics", streetsense_command("analytics", "run")),
        ChildSpec("feeds", streetsense_command("feeds", "serve", "--port", str(feeds_port))),
        ChildSpec("dashboard", streetsense_command("dashboard", "--port", str(dashboard_port))),
        ChildSpec("devices", live),
    ]


def ingest_step() -> ChildSpec:
    """The ingest service: started before the backfill, which goes through it."""
    return ChildSpec("ingest", streetsense_command("ingest"))
