"""The signed release bundle of the edge agent: its format, and every check a device makes.

A bundle is an uncompressed zip of four members:

| member | what |
|---|---|
| `manifest.json` | version, digests and sizes of the others, what the agent needs (Python, paho) |
| `manifest.sig` | Ed25519 signature of `manifest.json` by the city's release key (64 bytes) |
| `agent.pyz` | the agent as a zipapp (`edge` and `streetsense`; paho comes from the device) |
| `agent.toml` | the release's default config, for reference |

Only the manifest is signed; it pins the other members by SHA-256. A device refuses a bundle
that is oversize, malformed, unsigned, signed by another key, altered after signing, not newer
than what it runs, or needing what it lacks, and says which (`BundleRefusedError.code`).
Standard library and `openssl` only: the edge agent uses this module.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from streetsense import signature
from streetsense.errors import StreetsenseError
from streetsense.fleet_protocol import is_valid_version, version_key

FORMAT: Final = 1
MAX_BUNDLE_BYTES: Final = 8_000_000
MAX_MANIFEST_BYTES: Final = 16_000
MANIFEST: Final = "manifest.json"
SIGNATURE: Final = "manifest.sig"
AGENT: Final = "agent.pyz"
CONFIG: Final = "agent.toml"
MEMBERS: Final = frozenset((MANIFEST, SIGNATURE, AGENT, CONFIG))
_REQUIREMENT: Final = re.compile(r"(>=|<=|==|<|>)\s*(\d{1,6}(?:\.\d{1,6}){0,3})\Z")
REFUSAL_CODES: Final = (
    "oversize", "malformed", "unsigned", "signature", "tampered", "downgrade", "mismatch",
    "requirements",
)  # fmt: skip


class BundleRefusedError(StreetsenseError):
    """A bundle failed a check; `code` is one of REFUSAL_CODES, the message says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a bundle says of itself (signed)."""

    version: str
    agent_sha256: str
    agent_bytes: int
    config_sha256: str
    config_bytes: int
    requires: Mapping[str, str] = field(default_factory=dict)
    built_with: Mapping[str, str] = field(default_factory=dict)
    built_at: str = ""
    notes: str = ""

    def encode(self) -> bytes:
        """Return the manifest's JSON (the bytes that are signed)."""
        body = {
            "format": FORMAT,
            "version": self.version,
            "agent": {"file": AGENT, "sha256": self.agent_sha256, "bytes": self.agent_bytes},
            "config": {"file": CONFIG, "sha256": self.config_sha256, "bytes": self.config_bytes},
            "requires": dict(self.requires),
            "built_with": dict(self.built_with),
            "built_at": self.built_at,
            "notes": self.notes,
        }
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """Parse a manifest.

        Raises:
            BundleRefusedError: malformed (code `malformed`).
        """
        try:
            body = json.loads(data)
            agent, config = body["agent"], body["config"]
            manifest = cls(
                version=_text(body["version"]),
                agent_sha256=_digest(agent["sha256"]),
                agent_bytes=_size(agent["bytes"]),
                config_sha256=_digest(config["sha256"]),
                config_bytes=_size(config["bytes"]),
                requires=_strings(body.get("requires", {})),
                built_with=_strings(body.get("built_with", {})),
                built_at=_text(body.get("built_at", "")),
                notes=_text(body.get("notes", "")),
            )
            fmt = body.get("format")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise _malformed(f"the manifest is not readable ({exc!r})") from None
        if fmt != FORMAT:
            raise _malformed(f"manifest format {fmt!r}; this agent reads {FORMAT}")
        if not is_valid_version(manifest.version):
            raise _malformed(f"version {manifest.version[:40]!r} is not a version")
        return manifest


@dataclass(frozen=True, slots=True)
class Bundle:
    """A bundle's members, read and bounded but not yet checked."""

    manifest_bytes: bytes
    signature: bytes | None
    agent: bytes
    config: bytes


def sha256(data: bytes) -> str:
    """Return the hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def pack(bundle: Bundle) -> bytes:
    """Return a bundle's bytes (members stored: the zipapp is compressed already)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(MANIFEST, bundle.manifest_bytes)
        if bundle.signature is not None:
            archive.writestr(SIGNATURE, bundle.signature)
        archive.writestr(AGENT, bundle.agent)
        archive.writestr(CONFIG, bundle.config)
    return out.getvalue()


def unpack(data: bytes) -> Bundle:
    """Read a bundle's members, bounded (no member is trusted for its size).

    Raises:
        BundleRefusedError: oversize or not a bundle.
    """
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleRefusedError("oversize", f"{len(data)} bytes, more than {MAX_BUNDLE_BYTES}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if len(names) != len(set(names)) or not set(names) <= MEMBERS:
                raise BundleRefusedError("malformed", f"unexpected members {sorted(names)[:8]}")
            if sum(info.file_size for info in infos) > MAX_BUNDLE_BYTES:
                raise BundleRefusedError("oversize", "its members unpack to more than the bound")
            read: dict[str, bytes] = {name: archive.read(name) for name in names}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise BundleRefusedError("malformed", f"not a release bundle (zip): {exc}") from None
    missing = sorted({MANIFEST, AGENT, CONFIG} - read.keys())
    if missing:
        raise BundleRefusedError("malformed", f"missing {', '.join(missing)}")
    if len(read[MANIFEST]) > MAX_MANIFEST_BYTES:
        raise BundleRefusedError("oversize", f"the manifest is over {MAX_MANIFEST_BYTES} bytes")
    return Bundle(read[MANIFEST], read.get(SIGNATURE), read[AGENT], read[CONFIG])


def check(
    data: bytes,
    public_key: Path,
    running: str,
    *,
    installed: Callable[[str], str | None] | None = None,
) -> tuple[Manifest, Bundle]:
    """Return a bundle's manifest and members once every check passed, in the order a
    device makes them: bounds, signature, digests, version newer than `running`, needs.

    Args:
        data: the bundle's bytes.
        public_key: the city's release public key (PEM).
        running: the version this agent runs.
        installed: the installed version of a requirement (`python`, `paho-mqtt`), or None.

    Raises:
        BundleRefusedError: a check failed; `code` says which.
        ConfigError: the public key is missing or unreadable (a set-up fault).
    """
    bundle = unpack(data)
    if bundle.signature is None:
        raise BundleRefusedError("unsigned", "the bundle carries no signature (manifest.sig)")
    if not signature.verify(bundle.manifest_bytes, bundle.signature, public_key):
        raise BundleRefusedError(
            "signature", "the manifest's signature does not verify with the city's release key"
        )
    manifest = Manifest.decode(bundle.manifest_bytes)
    for name, member, digest, size in (
        (AGENT, bundle.agent, manifest.agent_sha256, manifest.agent_bytes),
        (CONFIG, bundle.config, manifest.config_sha256, manifest.config_bytes),
    ):
        if len(member) != size or sha256(member) != digest:
            raise BundleRefusedError("tampered", f"{name} is not the file the manifest signed")
    if version_key(manifest.version) <= version_key(running):
        raise BundleRefusedError(
            "downgrade", f"release {manifest.version} is not newer than {running}, which runs"
        )
    unmet = unmet_requirements(manifest.requires, installed or (lambda _name: None))
    if unmet:
        raise BundleRefusedError("requirements", "; ".join(unmet))
    return manifest, bundle


def unmet_requirements(
    requires: Mapping[str, str], installed: Callable[[str], str | None]
) -> list[str]:
    """Return what of `requires` ({"paho-mqtt": ">=2.1,<3"}) this device does not meet."""
    unmet = []
    for name, spec in sorted(requires.items()):
        have = installed(name)
        if have is None:
            unmet.append(f"needs {name} {spec}; none installed")
            continue
        if not satisfies(have, spec):
            unmet.append(f"needs {name} {spec}; {have} installed")
    return unmet


def satisfies(version: str, spec: str) -> bool:
    """Tell whether `version` meets every comparison of `spec` (">=2.1,<3"); numbers only."""
    match = re.match(r"\d{1,6}(\.\d{1,6}){0,3}", version)
    if match is None:
        return False
    have = version_key(match.group(0))
    for part in filter(None, (p.strip() for p in spec.split(","))):
        found = _REQUIREMENT.match(part)
        if found is None:
            return False
        want = version_key(found.group(2))
        ok = {">=": have >= want, "<=": have <= want, "==": have == want, "<": have < want,
              ">": have > want}[found.group(1)]  # fmt: skip
        if not ok:
            return False
    return True


def _malformed(reason: str) -> BundleRefusedError:
    return BundleRefusedError("malformed", reason)


def _text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 2_000:
        raise ValueError("not text")
    return value


def _digest(value: Any) -> str:
    if not isinstance(value, str) or re.fullmatch(r"[0-9a-f]{64}", value) is None:
        raise ValueError("not a SHA-256")
    return value


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BUNDLE_BYTES:
        raise ValueError("not a size")
    return value


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > 16:
        raise ValueError("not a small object")
    return {_text(k): _text(v) for k, v in value.items()}
