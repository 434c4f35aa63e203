"""constraints.txt pins every dependency pyproject.toml declares, within its declared range."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            assert pinned, f"constraints.txt: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = Version(pinned)
    return pins


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    pins = _pins()
    wrong = {}
    for extra, requirements in extras.items():
        for text in requirements:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            if name == "streetsense":
                continue
            if name not in pins:
                wrong[f"{extra}: {text}"] = "not in constraints.txt: run scripts/lock"
            elif not requirement.specifier.contains(pins[name], prereleases=True):
                wrong[f"{extra}: {text}"] = f"constraints.txt pins {pins[name]}: run scripts/lock"
    assert wrong == {}


def test_the_installed_paho_is_the_pinned_one() -> None:
    # ingest's fast path depends on paho's internals: the tests must run on the pinned release
    assert Version(version("paho-mqtt")) == _pins()["paho-mqtt"], "run scripts/setup"
