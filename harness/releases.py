"""Release bundles for tests and benchmarks: good ones from this checkout, broken ones from a
patched copy of it (a release that crashes on start, or that cannot reach the broker)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fleet.bundles import build, sign
from streetsense.release_bundle import Bundle, Manifest, pack, unpack
from streetsense.signature import generate_key

REPO: Final = Path(__file__).resolve().parents[1]
# What each broken release changes in the agent's code: the text replaced, and by what.
BREAKAGES: Final = {
    "crash": (
        Path("edge/start.py"),
        "    config = load_config(path)\n",
        "    raise RuntimeError('a broken release: it crashes on start')\n",
    ),
    # connects and reports in, but takes no confirmation: its readings never count as sent
    "no-confirm": (
        Path("edge/agent.py"),
        "        if not payload:\n            return  # the retained ack cleared\n",
        "        return  # a broken release: it ignores every confirmation\n",
    ),
    # runs well until a marker file appears, then crashes on every start (a late fault)
    "crash-on-mark": (
        Path("edge/start.py"),
        "    config = load_config(path)\n",
        "    if os.path.exists(os.environ.get('STREETSENSE_TEST_CRASH_MARK', '/nonexistent')):\n"
        "        raise RuntimeError('a release that crashes since its marker appeared')\n"
        "    config = load_config(path)\n",
    ),
    "no-connect": (
        Path("edge/link.py"),
        "endpoint.host, endpoint.port, ping_interval",
        "endpoint.host, 1, ping_interval",  # nothing listens on port 1
    ),
}


@dataclass(frozen=True, slots=True)
class ReleaseKeys:
    """A release key pair in PEM files."""

    private: Path
    public: Path


def release_keys(folder: Path, name: str = "release") -> ReleaseKeys:
    """Make a release key pair in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = ReleaseKeys(folder / f"{name}.key", folder / f"{name}.pub")
    generate_key(keys.private, keys.public)
    return keys


def source_copy(folder: Path, breakage: str | None = None) -> Path:
    """Copy this checkout's agent (edge, streetsense, the example config), broken if asked."""
    for package in ("edge", "streetsense"):
        shutil.copytree(REPO / package, folder / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (folder / "deploy" / "edge").mkdir(parents=True)
    shutil.copy(REPO / "deploy/edge/agent.example.toml", folder / "deploy/edge")
    shutil.copy(REPO / "pyproject.toml", folder)
    if breakage is not None:
        path, old, new = BREAKAGES[breakage]
        text = (folder / path).read_text()
        assert old in text, f"{path} no longer holds what the {breakage} release changes"
        (folder / path).write_text(text.replace(old, new, 1))
    return folder


def signed_release(
    folder: Path, version: str, keys: ReleaseKeys, breakage: str | None = None
) -> bytes:
    """Return a signed bundle of this checkout as `version` (broken if asked)."""
    source = REPO if breakage is None else source_copy(folder / f"src-{version}", breakage)
    _manifest, data = build(version, source)
    return sign(data, keys.private)


def altered(data: bytes, **members: bytes) -> bytes:
    """Return a bundle with some members replaced, its signature kept (a tampered bundle)."""
    bundle = unpack(data)
    return pack(
        Bundle(
            members.get("manifest", bundle.manifest_bytes),
            members.get("signature", bundle.signature),
            members.get("agent", bundle.agent),
            members.get("config", bundle.config),
        )
    )


def unsigned(data: bytes) -> bytes:
    """Return a bundle without its signature."""
    bundle = unpack(data)
    return pack(Bundle(bundle.manifest_bytes, None, bundle.agent, bundle.config))


def manifest_of(data: bytes) -> Manifest:
    """Return a bundle's manifest."""
    return Manifest.decode(unpack(data).manifest_bytes)
