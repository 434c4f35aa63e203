"""The device's own credentials on disk: identity, passwords, confirmation key.

One folder (`fleet.state_dir`, mode 700) holds, each file mode 600 and replaced atomically
(written beside, synced, renamed):

- `password`: the broker password in use (made here, at enrolment, never sent anywhere but to
  the fleet service);
- `password.next`: during a rotation, the password that replaces it;
- `identity.json`: device id, site, user name, serial, password generation and life;
- `confirm.key`: the key ingest's confirmations are checked with.

The bootstrap secret is read from the image for enrolment only; once an identity is here it is
never read or sent again.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final

from streetsense.confirm import parse_key
from streetsense.errors import ConfigError

log = logging.getLogger(__name__)
PASSWORD_FILE: Final = "password"  # noqa: S105 (a file name)
NEXT_PASSWORD_FILE: Final = "password.next"  # noqa: S105
IDENTITY: Final = "identity.json"
CONFIRM_KEY: Final = "confirm.key"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the fleet made this device, and the life of its password."""

    device: str
    site: str
    username: str
    serial: str
    batch: str
    generation: int = 1
    expires_at_ms: int = 0
    rotate_after_ms: int = 0


class CredentialStore:
    """Read and write the credentials folder; the only code that touches it."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._tried_next = False  # which password the link was last given

    def prepare(self) -> None:
        """Create the folder (mode 700), or tighten one others can read.

        Raises:
            ConfigError: it cannot be created; names the setting and the fix.
        """
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if stat.S_IMODE(self.folder.stat().st_mode) & 0o077:
                log.warning("%s was readable by others: tightened to mode 700", self.folder)
                self.folder.chmod(0o700)
        except OSError as exc:
            raise ConfigError(
                f"setting 'fleet.state_dir' = {str(self.folder)!r} cannot be made private "
                f"({exc.strerror}); give the agent's user a folder of its own"
            ) from exc

    def identity(self) -> Identity | None:
        """Return the identity enrolment gave, or None before it."""
        text = self._read(IDENTITY)
        if text is None:
            return None
        try:
            return Identity(**json.loads(text))
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"{self.folder / IDENTITY} is damaged ({exc}); the device must be reset and "
                "enrol again (streetsense fleet reset <serial>)"
            ) from exc

    def save_identity(self, identity: Identity) -> None:
        """Write the identity."""
        self._write(IDENTITY, json.dumps(asdict(identity), indent=1))

    def enrolment_password(self) -> str:
        """Return the password this device enrols with, made once and kept (a request sent
        again after a restart carries the same one)."""
        current = self._read(PASSWORD_FILE)
        if current:
            return current.strip()
        made = secrets.token_hex(32)
        self._write(PASSWORD_FILE, made)
        return made

    def password(self) -> str | None:
        """Return the password in use, or None."""
        text = self._read(PASSWORD_FILE)
        return text.strip() if text else None

    def next_password(self) -> str | None:
        """Return the password a rotation started, or None."""
        text = self._read(NEXT_PASSWORD_FILE)
        return text.strip() if text else None

    def begin_rotation(self) -> str:
        """Return the rotation's new password, made and kept durably before it is sent."""
        pending = self.next_password()
        if pending is None:
            pending = secrets.token_hex(32)
            self._write(NEXT_PASSWORD_FILE, pending)
        return pending

    def for_connect(self) -> str | None:
        """Return the password to try now: during a rotation the new one and the current one
        in turn (the fleet may or may not have switched yet), else the current one."""
        pending = self.next_password()
        self._tried_next = pending is not None and not self._tried_next
        return pending if self._tried_next else self.password()

    def connected(self) -> bool:
        """Note that the last password tried was accepted; True when that ended a rotation."""
        if not self._tried_next:
            return False
        pending = self.next_password()
        if pending is None:
            return False
        self._write(PASSWORD_FILE, pending)
        (self.folder / NEXT_PASSWORD_FILE).unlink(missing_ok=True)
        self._tried_next = False
        identity = self.identity()
        if identity is not None:
            # the rotation's new life comes with the next provisioning; until then none is due
            self.save_identity(
                replace(identity, generation=identity.generation + 1, rotate_after_ms=0)
            )
        return True

    def confirm_key(self) -> bytes | None:
        """Return the confirmation key, or None before provisioning."""
        text = self._read(CONFIRM_KEY)
        return parse_key(text, str(self.folder / CONFIRM_KEY)) if text else None

    def save_confirm_key(self, key_hex: str) -> None:
        """Write the confirmation key."""
        parse_key(key_hex, "the provisioned confirmation key")
        self._write(CONFIRM_KEY, key_hex)

    @property
    def confirm_key_path(self) -> Path:
        """Where the confirmation key is (for device.confirm_key_file)."""
        return self.folder / CONFIRM_KEY

    def _read(self, name: str) -> str | None:
        path = self.folder / name
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                log.warning("%s was readable by others: tightened to mode 600", path)
                path.chmod(0o600)
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(
                f"cannot read {path} ({exc.strerror}): give the agent's user access to "
                "fleet.state_dir"
            ) from exc

    def _write(self, name: str, text: str) -> None:
        """Replace a file atomically and durably, mode 600 from its first byte."""
        self.prepare()
        path = self.folder / name
        temporary = path.with_name(f".{name}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(descriptor, (text.rstrip("\n") + "\n").encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
        folder = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
