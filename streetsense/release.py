"""Signed release bundles of the edge agent: their format, signing and verification.

A bundle is a zip file of exactly these members:

- `manifest.json`: `{"format": 1, "version": "1.4.0", "created_at": "...", "files":
  {"agent.pyz": {"sha256": ..., "size": ...}, "default.toml": {...}}}`;
- `manifest.sig`: the Ed25519 signature (64 bytes) of `manifest.json`'s bytes, made with the
  city's release key;
- the files the manifest names: `agent.pyz` (a zipapp of the agent with its pinned
  dependencies) and `default.toml` (the release's default settings).

Signatures are made and checked with the system's `openssl` (1.1.1 or newer, `pkeyutl
-rawin`), so a device needs nothing beyond Python and paho-mqtt: every Debian, Ubuntu and
Raspberry Pi OS image has it. Standard library only: the edge agent uses this module too.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from streetsense.errors import StreetsenseError
from streetsense.fleet_protocol import is_valid_version, version_key

FORMAT: Final = 1
MANIFEST: Final = "manifest.json"
SIGNATURE: Final = "manifest.sig"
FILES: Final = ("agent.pyz", "default.toml")
# One MQTT message on a broker with max_packet_size 1 MB (deploy/mosquitto/*.conf).
MAX_BUNDLE_BYTES: Final = 1_000_000
MAX_FILE_BYTES: Final = 4_000_000  # unpacked: a zip bomb stops here
OPENSSL_TIMEOUT_S: Final = 30.0


class BundleError(StreetsenseError):
    """A bundle is refused; `code` says why in one word (unsigned, bad_signature, downgrade...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Bundle:
    """A verified bundle: its version, manifest and files."""

    version: str
    manifest: Mapping[str, object]
    files: Mapping[str, bytes]
    sha256: str  # of the whole bundle, as commands name it


def openssl() -> str:
    """Return the path of the system's openssl.

    Raises:
        BundleError: there is none (code no_openssl).
    """
    found = shutil.which("openssl")
    if found is None:
        raise BundleError(
            "no_openssl",
            "the system's `openssl` (1.1.1 or newer) checks release signatures and is not "
            "installed: apt-get install openssl",
        )
    return found


def _run(arguments: list[str], what: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            [openssl(), *arguments], capture_output=True, timeout=OPENSSL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BundleError("no_openssl", f"openssl could not {what}: {exc}") from exc


def make_key_pair(private_path: Path, public_path: Path) -> None:
    """Make an Ed25519 release key pair (private key mode 600).

    Raises:
        BundleError: openssl failed.
    """
    private_path.touch(mode=0o600, exist_ok=False)
    private_path.chmod(0o600)
    made = _run(["genpkey", "-algorithm", "ed25519", "-out", str(private_path)], "make a key")
    if made.returncode != 0:
        private_path.unlink(missing_ok=True)
        raise BundleError("no_openssl", f"openssl genpkey failed: {_said(made)}")
    public = _run(
        ["pkey", "-in", str(private_path), "-pubout", "-out", str(public_path)], "export a key"
    )
    if public.returncode != 0:
        raise BundleError("no_openssl", f"openssl pkey failed: {_said(public)}")


def sign(message: bytes, private_key: Path) -> bytes:
    """Return the Ed25519 signature of `message`.

    Raises:
        BundleError: the key cannot be used (code bad_key).
    """
    with tempfile.TemporaryDirectory(prefix="streetsense-sign-") as folder:
        source, signature = Path(folder) / "message", Path(folder) / "signature"
        source.write_bytes(message)
        done = _run(
            ["pkeyutl", "-sign", "-rawin", "-inkey", str(private_key), "-in", str(source),
             "-out", str(signature)],
            "sign",
        )  # fmt: skip
        if done.returncode != 0:
            raise BundleError(
                "bad_key",
                f"cannot sign with {private_key}: {_said(done)}; give the city's Ed25519 "
                "release key (streetsense fleet release keygen makes one)",
            )
        return signature.read_bytes()


def verify(message: bytes, signature: bytes, public_key: Path) -> bool:
    """Tell whether `signature` is the release key's signature of `message`.

    Raises:
        BundleError: the public key cannot be read (code bad_key), or no openssl.
    """
    if not public_key.is_file():
        raise BundleError(
            "bad_key", f"the release public key {public_key} does not exist; install the city's"
        )
    with tempfile.TemporaryDirectory(prefix="streetsense-verify-") as folder:
        source, signed = Path(folder) / "message", Path(folder) / "signature"
        source.write_bytes(message)
        signed.write_bytes(signature)
        done = _run(
            ["pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", str(public_key),
             "-in", str(source), "-sigfile", str(signed)],
            "verify",
        )  # fmt: skip
    said = _said(done)
    if done.returncode != 0 and ("unable to load" in said.lower() or "could not" in said.lower()):
        raise BundleError("bad_key", f"cannot read the release public key {public_key}: {said}")
    return done.returncode == 0


def build(version: str, files: Mapping[str, bytes], private_key: Path) -> bytes:
    """Return a signed bundle of `files` (agent.pyz, default.toml) as `version`.

    Raises:
        BundleError: a wrong version, file set or size, or the key cannot sign.
    """
    if not is_valid_version(version):
        raise BundleError("bad_manifest", f"{version!r} is not a version like 1.4.0")
    if set(files) != set(FILES):
        raise BundleError("bad_manifest", f"a bundle holds exactly {', '.join(FILES)}")
    manifest = {
        "format": FORMAT,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(files.items())
        },
    }
    manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, manifest_bytes)
        archive.writestr(SIGNATURE, sign(manifest_bytes, private_key))
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
    bundle = out.getvalue()
    if len(bundle) > MAX_BUNDLE_BYTES:
        raise BundleError(
            "too_large",
            f"the bundle is {len(bundle):,} bytes; at most {MAX_BUNDLE_BYTES:,} travel as one "
            "MQTT message: leave out what the agent does not need",
        )
    return bundle


def check_bundle(data: bytes, public_key: Path, installed: str | None = None) -> Bundle:
    """Verify a bundle: signed by the release key, untampered, newer than `installed`.

    Raises:
        BundleError: refused; `code` and the message say why (too_large, not_a_bundle,
            unsigned, bad_signature, bad_manifest, tampered, downgrade, bad_key, no_openssl).
    """
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(
            "too_large", f"{len(data):,} bytes; a bundle is at most {MAX_BUNDLE_BYTES:,}"
        )
    members = _members(data)
    if SIGNATURE not in members:
        raise BundleError("unsigned", "the bundle carries no signature (manifest.sig): refused")
    if MANIFEST not in members:
        raise BundleError("bad_manifest", "the bundle has no manifest.json: refused")
    if not verify(members[MANIFEST], members[SIGNATURE], public_key):
        raise BundleError(
            "bad_signature",
            "the manifest's signature does not verify with the city's release key: the bundle "
            "was altered or signed with another key; refused",
        )
    manifest = _manifest(members[MANIFEST])
    version = str(manifest["version"])
    if installed is not None and version_key(version) <= version_key(installed):
        raise BundleError(
            "downgrade",
            f"release {version} is not newer than the installed {installed}: refused (a signed "
            "older release may carry fixed flaws)",
        )
    listed = manifest["files"]
    assert isinstance(listed, dict)
    extra = set(members) - set(listed) - {MANIFEST, SIGNATURE}
    if extra:
        raise BundleError("tampered", f"members not in the signed manifest: {sorted(extra)}")
    for name, facts in listed.items():
        data_of = members.get(name)
        if data_of is None or hashlib.sha256(data_of).hexdigest() != facts["sha256"]:
            raise BundleError("tampered", f"{name} does not match its signed digest: refused")
    return Bundle(
        version, manifest, {n: members[n] for n in listed}, hashlib.sha256(data).hexdigest()
    )


def _members(data: bytes) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise BundleError("not_a_bundle", f"not a release bundle (zip): {exc}") from exc
    members: dict[str, bytes] = {}
    with archive:
        infos = archive.infolist()
        if len(infos) > len(FILES) + 2:
            raise BundleError("tampered", f"{len(infos)} members; a bundle has {len(FILES) + 2}")
        for info in infos:
            name = info.filename
            if "/" in name or "\\" in name or name.startswith(".") or info.is_dir():
                raise BundleError("tampered", f"member {name[:80]!r} is not a plain file name")
            if info.file_size > MAX_FILE_BYTES or name in members:
                raise BundleError("tampered", f"member {name[:80]!r} is too large or repeated")
            try:
                members[name] = archive.read(info)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise BundleError("not_a_bundle", f"cannot unpack {name!r}: {exc}") from exc
    return members


def _manifest(raw: bytes) -> dict[str, object]:
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError("bad_manifest", f"manifest.json is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError("bad_manifest", f"manifest.json is not a format {FORMAT} manifest")
    version = manifest.get("version")
    if not isinstance(version, str) or not is_valid_version(version):
        raise BundleError("bad_manifest", "manifest.json names no valid version")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != set(FILES):
        raise BundleError("bad_manifest", f"manifest.json must list exactly {', '.join(FILES)}")
    for name, facts in files.items():
        if not isinstance(facts, dict) or not isinstance(facts.get("sha256"), str):
            raise BundleError("bad_manifest", f"manifest.json gives no digest for {name}")
    return manifest


def _said(done: subprocess.CompletedProcess[bytes]) -> str:
    text = (done.stderr or done.stdout).decode(errors="replace").strip()
    return text.splitlines()[0][:300] if text else f"exit code {done.returncode}"
