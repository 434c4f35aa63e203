"""Ed25519 signatures with the system's `openssl` (3.0 or newer), the one module that runs it.

A device has Python and paho, and, on every Linux image we know of, OpenSSL's command line
tool: verifying with it adds no Python dependency to the edge agent (docs/edge.md says why
this beat an optional `cryptography` extra). Keys are PEM files as `openssl genpkey
-algorithm ed25519` writes them; signatures are the raw 64 bytes (`pkeyutl -rawin`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from streetsense.errors import ConfigError

SIGNATURE_BYTES: Final = 64
OPENSSL_TIMEOUT_S: Final = 30.0


def openssl() -> str:
    """Return the path of the `openssl` program.

    Raises:
        ConfigError: there is none; names the package to install.
    """
    found = shutil.which("openssl")
    if found is None:
        raise ConfigError(
            "the `openssl` program is missing: release signatures are checked with it; "
            "install it (apt-get install openssl)"
        )
    return found


def _run(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            [openssl(), *args], capture_output=True, timeout=OPENSSL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot run openssl {args[0]}: {exc}") from exc


def generate_key(private_path: Path, public_path: Path) -> None:
    """Make an Ed25519 key pair: the private key (mode 600) and its public key.

    Raises:
        ConfigError: a file exists already, or openssl failed.
    """
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(f"{path} exists: a release key is never overwritten")
    private_path.touch(mode=0o600)
    done = _run(["genpkey", "-algorithm", "ed25519", "-out", str(private_path)])
    if done.returncode != 0:
        private_path.unlink(missing_ok=True)
        raise ConfigError(f"openssl genpkey failed: {done.stderr.decode(errors='replace')}")
    public_key(private_path, public_path)


def public_key(private_path: Path, public_path: Path) -> None:
    """Write the public key of a private key.

    Raises:
        ConfigError: the private key cannot be read.
    """
    done = _run(["pkey", "-in", str(private_path), "-pubout", "-out", str(public_path)])
    if done.returncode != 0:
        raise ConfigError(
            f"cannot read the release key {private_path}: {done.stderr.decode(errors='replace')}"
        )


def sign(data: bytes, private_path: Path) -> bytes:
    """Return the Ed25519 signature of `data`.

    Raises:
        ConfigError: the private key cannot be read or is not an Ed25519 key.
    """
    with tempfile.TemporaryDirectory(prefix="streetsense-sign-") as folder:
        message = Path(folder) / "message"
        message.write_bytes(data)
        out = Path(folder) / "signature"
        done = _run(["pkeyutl", "-sign", "-inkey", str(private_path), "-rawin",
                     "-in", str(message), "-out", str(out)])  # fmt: skip
        if done.returncode != 0 or not out.exists():
            raise ConfigError(
                f"cannot sign with {private_path} (an Ed25519 private key in PEM, from "
                f"`streetsense fleet release key`): {done.stderr.decode(errors='replace')}"
            )
        signature = out.read_bytes()
    if len(signature) != SIGNATURE_BYTES:
        raise ConfigError(f"{private_path} is not an Ed25519 key (signature of {len(signature)} B)")
    return signature


def verify(data: bytes, signature: bytes, public_path: Path) -> bool:
    """Tell whether `signature` is the Ed25519 signature of `data` by the key's owner.

    Raises:
        ConfigError: the public key file cannot be read (a device set-up fault, not a bad
            bundle).
    """
    if not public_path.is_file():
        raise ConfigError(
            f"the release public key {public_path} is missing: set fleet.release_key_file to "
            "the city's release.pub"
        )
    if len(signature) != SIGNATURE_BYTES:
        return False
    with tempfile.TemporaryDirectory(prefix="streetsense-verify-") as folder:
        message = Path(folder) / "message"
        message.write_bytes(data)
        sigfile = Path(folder) / "signature"
        sigfile.write_bytes(signature)
        done = _run(["pkeyutl", "-verify", "-pubin", "-inkey", str(public_path), "-rawin",
                     "-in", str(message), "-sigfile", str(sigfile)])  # fmt: skip
    if done.returncode == 0:
        return True
    text = (done.stdout + done.stderr).decode(errors="replace")
    if "Signature Verification Failure" in text:
        return False
    raise ConfigError(f"cannot check a signature with {public_path}: {text.strip()[:300]}")


def public_key_problem(public_path: Path) -> str | None:
    """Return why `public_path` cannot check release signatures here, or None when it can."""
    if not public_path.is_file():
        return f"the release public key {public_path} is missing"
    try:
        done = _run(["pkey", "-pubin", "-in", str(public_path), "-noout", "-text"])
    except ConfigError as exc:
        return str(exc)
    text = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        return f"{public_path} is not a public key openssl reads"
    if "ED25519" not in text.upper():
        return f"{public_path} is not an Ed25519 key (`streetsense fleet release key` makes one)"
    return None
