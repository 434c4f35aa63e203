"""Build and sign release bundles of the edge agent (`streetsense fleet release ...`).

The agent is packed as a zipapp of the `edge` and `streetsense` packages (sources only,
sorted, fixed times: the same tree gives the same bytes) with `edge/_release.txt` naming the
version; paho-mqtt stays the device's, at the versions the manifest requires.
"""

from __future__ import annotations

import io
import platform
import tomllib
import zipfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Final

import streetsense
from streetsense import signature
from streetsense.errors import ConfigError
from streetsense.fleet_protocol import is_valid_version
from streetsense.release_bundle import Bundle, BundleRefusedError, Manifest, pack, sha256, unpack

PACKAGES: Final = ("edge", "streetsense")
RELEASE_MARK: Final = "edge/_release.txt"
MAIN: Final = b"import sys\nfrom edge.cli import main\n\nsys.exit(main())\n"
FIXED_TIME: Final = (2020, 1, 1, 0, 0, 0)
DEFAULT_REQUIRES: Final = {"python": ">=3.11", "paho-mqtt": ">=2.1,<3"}


def default_source() -> Path:
    """Return the folder holding the installed `edge` and `streetsense` packages."""
    return Path(streetsense.__file__).resolve().parent.parent


def zipapp_bytes(source: Path, version: str) -> bytes:
    """Return the agent's zipapp built from `source` (which holds edge/ and streetsense/).

    Raises:
        ConfigError: a package is missing from `source`.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _add(archive, "__main__.py", MAIN)
        for package in PACKAGES:
            folder = source / package
            if not (folder / "__init__.py").is_file():
                raise ConfigError(f"{folder} is not the {package} package: pass --source")
            for path in sorted(folder.rglob("*")):
                if (
                    path.is_file()
                    and path.suffix in (".py", ".typed")
                    and "__pycache__" not in (path.parts)
                ):
                    _add(archive, path.relative_to(source).as_posix(), path.read_bytes())
        _add(archive, RELEASE_MARK, version.encode() + b"\n")
    return out.getvalue()


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def requirements(source: Path) -> dict[str, str]:
    """Return what the agent needs, from the edge extra of `source`'s pyproject.toml if any."""
    requires = dict(DEFAULT_REQUIRES)
    project = source / "pyproject.toml"
    if project.is_file():
        data = tomllib.loads(project.read_text(encoding="utf-8"))
        python = data.get("project", {}).get("requires-python")
        if isinstance(python, str):
            requires["python"] = python
        for line in data.get("project", {}).get("optional-dependencies", {}).get("edge", []):
            name, _, spec = str(line).partition(">")
            if name.strip() == "paho-mqtt":
                requires["paho-mqtt"] = ">" + spec
    return requires


def build(
    version: str, source: Path, config: Path | None = None, notes: str = ""
) -> tuple[Manifest, bytes]:
    """Return an unsigned bundle of the agent in `source` as release `version`.

    Raises:
        ConfigError: the version or a file is wrong; names it.
    """
    if not is_valid_version(version):
        raise ConfigError(f"release version {version!r} must be 1 to 4 dot-separated numbers")
    config_path = config or source / "deploy" / "edge" / "agent.example.toml"
    try:
        config_bytes = config_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the default config {config_path}: {exc}") from exc
    agent = zipapp_bytes(source, version)
    manifest = Manifest(
        version=version,
        agent_sha256=sha256(agent),
        agent_bytes=len(agent),
        config_sha256=sha256(config_bytes),
        config_bytes=len(config_bytes),
        requires=requirements(source),
        built_with={"python": platform.python_version(), "paho-mqtt": _installed("paho-mqtt")},
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        notes=notes[:500],
    )
    return manifest, pack(Bundle(manifest.encode(), None, agent, config_bytes))


def sign(data: bytes, private_key: Path) -> bytes:
    """Return the bundle signed with the city's release key (any earlier signature replaced).

    Raises:
        BundleRefusedError: not a bundle.
        ConfigError: the key cannot sign.
    """
    bundle = unpack(data)
    Manifest.decode(bundle.manifest_bytes)
    signed = signature.sign(bundle.manifest_bytes, private_key)
    return pack(Bundle(bundle.manifest_bytes, signed, bundle.agent, bundle.config))


def read(path: Path) -> bytes:
    """Return a bundle file's bytes.

    Raises:
        ConfigError: it cannot be read.
    """
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the bundle {path}: {exc}") from exc


def _installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


__all__ = ["BundleRefusedError", "build", "default_source", "read", "sign"]
