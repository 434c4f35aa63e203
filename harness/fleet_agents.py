"""The fleet for tests and benchmarks: the fleet service in a thread, device images that enrol
themselves, and a small city registry for them to go into."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from fleet.context import Fleet
from fleet.service import FleetService, open_fleet
from harness.dynsec_broker import DynsecBroker
from harness.edge import write_toml
from streetsense.config import Settings
from streetsense.lifecycle import StopSignal

SITE = "central"
LOT = "lot-1"
SEGMENT = "seg-1"


def load_city(database_url: str, capacity: int = 5_000) -> None:
    """Put one site, one lot and one segment in the registry (what allow-lists point at)."""
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO sites VALUES (%s, 'Central') ON CONFLICT DO NOTHING", (SITE,))
        conn.execute(
            "INSERT INTO lots (lot_id, site_id, name, kind, capacity, lat, lon) "
            "VALUES (%s, %s, 'Lot 1', 'off_street', %s, 56.15, 10.2) ON CONFLICT DO NOTHING",
            (LOT, SITE, capacity),
        )
        conn.execute(
            "INSERT INTO segments (segment_id, site_id, name, coordinates, speed_limit_kmh, "
            "capacity_vph) VALUES (%s, %s, 'Seg 1', '[[10.2, 56.15], [10.21, 56.16]]', 50, 1800) "
            "ON CONFLICT DO NOTHING",
            (SEGMENT, SITE),
        )


def allowlist_csv(path: Path, serials: dict[str, str], spots_per_device: int = 0) -> Path:
    """Write an allow-list placing each serial (-> device id) as a parking gateway of lot-1."""
    lines = ["serial,device,site,kind,lot,spots"]
    for serial, device in serials.items():
        spots = ";".join(f"{device}-S{n}=S{n}" for n in range(1, spots_per_device + 1))
        lines.append(f"{serial},{device},{SITE},parking,{LOT},{spots}")
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def fleet_service(settings: Settings) -> Iterator[Fleet]:
    """Run the fleet service in a thread; yield a Fleet of its own for the test's commands."""
    stop = StopSignal()
    served = open_fleet(settings, "test-fleet-service")
    thread = threading.Thread(target=FleetService(served, stop).run, name="fleet", daemon=True)
    thread.start()
    mine = open_fleet(settings, "test-fleet")
    try:
        yield mine
    finally:
        stop.stop()
        thread.join(30)
        for fleet in (mine, served):
            fleet.link.stop()
            fleet.conn.close()
        assert not thread.is_alive(), "the fleet service did not stop within 30 s"


def image_config(
    path: Path,
    broker: DynsecBroker,
    serial: str,
    batch: str,
    secret_file: Path,
    **sections: dict[str, Any],
) -> Path:
    """Write the config a device image carries: broker, batch, bootstrap secret; no identity."""
    folder = path.parent / serial
    folder.mkdir(parents=True, exist_ok=True)
    values: dict[str, dict[str, Any]] = {
        "mqtt": {
            "url": broker.url,
            "topic_prefix": broker.topics.prefix,
            "keepalive_s": 4,
            "backoff_min_s": 0.2,
            "backoff_max_s": 1.0,
        },
        "buffer": {"path": str(folder / "buffer.sqlite"), "resend_timeout_s": 2.0},
        "driver": {"kind": "simulated", "spots": 0, "lanes": 0, "lamp": True, "event_rate": 5.0},
        "status": {"heartbeat_s": 1.0},
        "fleet": {
            "batch": batch,
            "bootstrap_secret_file": str(secret_file),
            "serial": serial,
            "state_dir": str(folder / "credentials"),
            "topic_prefix": broker.fleet_topics.root,
            "enrol_retry_s": 1.0,
        },
    }
    if broker.tls:
        values["mqtt"]["ca_file"] = str(broker.ca_file)
    return write_toml(path, values, sections)


def updatable_image(
    path: Path,
    broker: DynsecBroker,
    serial: str,
    batch: str,
    secret_file: Path,
    release_public_key: Path,
    **sections: dict[str, Any],
) -> Path:
    """Write a device image's config that takes signed updates (run under the launcher)."""
    folder = path.parent / serial
    fleet = {"release_key_file": str(release_public_key), "releases_dir": str(folder / "releases")}
    fleet.update(sections.pop("fleet", {}))
    return image_config(path, broker, serial, batch, secret_file, fleet=fleet, **sections)


def release_slots(path: Path, serial: str) -> dict[str, Any]:
    """Return a device's release slots as its launcher keeps them (nothing installed: {})."""
    import json

    slots = path.parent / serial / "releases" / "slots.json"
    return dict(json.loads(slots.read_text())) if slots.exists() else {}
