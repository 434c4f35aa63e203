"""The fleet's control protocol between agents and `streetsense fleet`: topics and messages.

Fleet traffic has a topic root of its own (`fleet.topic_prefix`, default
`streetsense/fleet/v1`), outside the data prefix ingest subscribes to, so enrolment requests
and password rotations never reach ingest (or anyone allowed to read readings):

| topic | direction | payload | who may (dynamic security) |
|---|---|---|---|
| `<root>/enrol/<batch>/<serial>` | device -> fleet | `EnrolRequest` | the batch writes |
| `<root>/enrol/<batch>/<serial>/reply` | fleet -> device | `EnrolReply` | the batch reads |
| `<root>/device/<device>/report` | device -> fleet | `Report` | the device writes |
| `<root>/device/<device>/provision` | fleet -> device | `Provision` | the device reads |
| `<root>/device/<device>/command` | fleet -> device | `Command` (retained) | the device reads |
| `<root>/release/<version>` | fleet -> devices | signed bundle (retained) | devices read |

Standard library only: the edge agent uses this module too. Every decoder bounds the size,
checks each field and raises PayloadError naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from streetsense.errors import PayloadError, TopicError
from streetsense.ids import describe_bad_id, is_valid_id

DEFAULT_ROOT: Final = "streetsense/fleet/v1"
MAX_MESSAGE_BYTES: Final = 4_096
# A serial number as devices print it: letters, digits and . _ : -, never a topic separator.
_SERIAL: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")
_VERSION: Final = re.compile(r"\d{1,6}(\.\d{1,6}){0,3}\Z")
_FACT_KEY: Final = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
_PASSWORD: Final = re.compile(r"[0-9a-f]{64}\Z")
_NONCE: Final = re.compile(r"[0-9a-f]{32}\Z")
MAX_FACTS: Final = 16
MAX_FACT_CHARS: Final = 128
MAX_REASON_CHARS: Final = 500


def bootstrap_username(batch: str) -> str:
    """Return the broker user name a batch's devices enrol with (its bootstrap client)."""
    return f"claim-{batch}"


def is_valid_serial(text: str) -> bool:
    """Tell whether `text` is a serial number we accept (1-64 of A-Z a-z 0-9 . _ : -)."""
    return _SERIAL.match(text) is not None


def is_valid_version(text: str) -> bool:
    """Tell whether `text` is a release version: 1 to 4 dot-separated numbers (1.4.0)."""
    return _VERSION.match(text) is not None


def version_key(text: str) -> tuple[int, ...]:
    """Return a version as comparable numbers (1.10.0 > 1.9.3; 1.2 == 1.2.0).

    Raises:
        PayloadError: not a version.
    """
    if not is_valid_version(text):
        raise PayloadError(f"{text[:40]!r} is not a version (1 to 4 dot-separated numbers)")
    numbers = [int(part) for part in text.split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


@dataclass(frozen=True, slots=True)
class FleetTopics:
    """Build and parse the fleet's topics under one root (tests use a root of their own)."""

    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        parts = self.root.split("/")
        if not self.root or any(not p or p in ("+", "#") or "\0" in p for p in parts):
            raise TopicError(
                f"fleet topic root {self.root!r} must be non-empty levels, no wildcards"
            )

    def enrol(self, batch: str, serial: str) -> str:
        """Return the topic a device of `batch` sends its enrolment request on."""
        return f"{self.root}/enrol/{_batch(batch)}/{_serial(serial)}"

    def enrol_reply(self, batch: str, serial: str) -> str:
        """Return the topic the fleet answers an enrolment request on."""
        return self.enrol(batch, serial) + "/reply"

    def enrol_requests(self, batch: str = "+") -> str:
        """Return the filter of enrolment requests (of one batch, or of all)."""
        return f"{self.root}/enrol/{batch}/+"

    def enrol_replies(self, batch: str) -> str:
        """Return the filter of one batch's enrolment replies (what a bootstrap client reads)."""
        return f"{self.root}/enrol/{_batch(batch)}/+/reply"

    def device(self, device_id: str, what: str) -> str:
        """Return a device's fleet topic: `report`, `provision` or `command`."""
        if what not in ("report", "provision", "command"):
            raise TopicError(f"{what!r} is not a device fleet channel")
        if not is_valid_id(device_id):
            raise TopicError(describe_bad_id("device id", device_id))
        return f"{self.root}/device/{device_id}/{what}"

    def reports(self) -> str:
        """Return the filter of every device's reports."""
        return f"{self.root}/device/+/report"

    def release(self, version: str) -> str:
        """Return the retained topic a release bundle is published on."""
        if not is_valid_version(version):
            raise TopicError(f"{version[:40]!r} is not a release version")
        return f"{self.root}/release/{version}"

    def releases(self) -> str:
        """Return the filter of every release bundle."""
        return f"{self.root}/release/+"

    def parse_enrol(self, topic: str) -> tuple[str, str]:
        """Return (batch, serial) of an enrolment request topic.

        Raises:
            TopicError: not an enrolment request topic of this root.
        """
        parts = self._rest(topic)
        if len(parts) != 3 or parts[0] != "enrol":
            raise TopicError(f"{topic[:120]!r} is not {self.root}/enrol/<batch>/<serial>")
        return _batch(parts[1]), _serial(parts[2])

    def parse_report(self, topic: str) -> str:
        """Return the device id of a report topic.

        Raises:
            TopicError: not a report topic of this root.
        """
        parts = self._rest(topic)
        if len(parts) != 3 or parts[0] != "device" or parts[2] != "report":
            raise TopicError(f"{topic[:120]!r} is not {self.root}/device/<device>/report")
        if not is_valid_id(parts[1]):
            raise TopicError(describe_bad_id("device id", parts[1]))
        return parts[1]

    def _rest(self, topic: str) -> list[str]:
        head = self.root + "/"
        if not topic.startswith(head):
            raise TopicError(f"{topic[:120]!r} is not under {head!r}")
        return topic[len(head) :].split("/")


def _batch(batch: str) -> str:
    if not is_valid_id(batch):
        raise TopicError(describe_bad_id("batch id", batch))
    return batch


def _serial(serial: str) -> str:
    if not is_valid_serial(serial):
        raise TopicError(
            f"serial {serial[:70]!r} is not valid (1-64 of A-Z a-z 0-9 . _ : -, starting with a "
            "letter or digit)"
        )
    return serial


@dataclass(frozen=True, slots=True)
class EnrolRequest:
    """A device asks to join: who it is, and the MQTT password it chose for itself.

    The password is made on the device (32 random bytes, hex) and travels only to the fleet
    service, which creates the device's broker client with it; nothing sends it back.
    """

    serial: str
    batch: str
    password: str
    nonce: str  # fresh per request; the reply echoes it, so a device reads only its answers
    hardware: Mapping[str, str] = field(default_factory=dict)
    agent_version: str = ""
    sent_at_ms: int = 0

    def __post_init__(self) -> None:
        _serial_field(self.serial)
        _nonce(self.nonce)
        if not is_valid_id(self.batch):
            raise PayloadError(describe_bad_id("batch", self.batch), field="batch")
        if not _PASSWORD.match(self.password):
            raise PayloadError("must be 64 lowercase hex digits", field="password")
        _facts(self.hardware)
        if self.agent_version and not is_valid_version(self.agent_version):
            raise PayloadError("is not a version", field="agent")

    def encode(self) -> bytes:
        """Return the JSON payload."""
        return _dump({"serial": self.serial, "batch": self.batch, "password": self.password,
                      "nonce": self.nonce, "hardware": dict(self.hardware),
                      "agent": self.agent_version, "t": self.sent_at_ms})  # fmt: skip

    @classmethod
    def decode(cls, payload: bytes) -> EnrolRequest:
        """Parse and check a request.

        Raises:
            PayloadError: malformed; names the field.
        """
        document = _load(payload)
        return cls(
            serial=_text(document, "serial"),
            batch=_text(document, "batch"),
            password=_text(document, "password"),
            nonce=_text(document, "nonce"),
            hardware=_mapping(document, "hardware"),
            agent_version=_text(document, "agent", ""),
            sent_at_ms=_natural(document, "t", 0),
        )


ENROL_STATES: Final = ("pending", "approved", "refused")


@dataclass(frozen=True, slots=True)
class EnrolReply:
    """The fleet's answer: pending (an operator decides), approved (with the identity), refused."""

    state: str
    nonce: str
    reason: str = ""
    device: str = ""
    site: str = ""
    username: str = ""

    def __post_init__(self) -> None:
        _nonce(self.nonce)
        if self.state not in ENROL_STATES:
            raise PayloadError(f"must be one of {', '.join(ENROL_STATES)}", field="state")
        if self.state == "approved":
            for name in ("device", "site", "username"):
                if not is_valid_id(getattr(self, name)):
                    raise PayloadError("an approval needs a valid id", field=name)
        if len(self.reason) > MAX_REASON_CHARS:
            raise PayloadError(f"at most {MAX_REASON_CHARS} characters", field="reason")

    def encode(self) -> bytes:
        """Return the JSON payload."""
        return _dump({"state": self.state, "nonce": self.nonce, "reason": self.reason,
                      "device": self.device, "site": self.site,
                      "username": self.username})  # fmt: skip

    @classmethod
    def decode(cls, payload: bytes) -> EnrolReply:
        """Parse and check a reply.

        Raises:
            PayloadError: malformed; names the field.
        """
        document = _load(payload)
        return cls(
            state=_text(document, "state"),
            nonce=_text(document, "nonce"),
            reason=_text(document, "reason", ""),
            device=_text(document, "device", ""),
            site=_text(document, "site", ""),
            username=_text(document, "username", ""),
        )


UPDATE_STATES: Final = ("installing", "updated", "refused", "rolled_back")


@dataclass(frozen=True, slots=True)
class UpdateReport:
    """What became of a release on one device."""

    version: str
    rollout: int
    state: str
    reason: str = ""

    def __post_init__(self) -> None:
        if not is_valid_version(self.version):
            raise PayloadError("is not a version", field="update.version")
        if self.state not in UPDATE_STATES:
            raise PayloadError(f"must be one of {', '.join(UPDATE_STATES)}", field="update.state")
        if len(self.reason) > MAX_REASON_CHARS:
            raise PayloadError(f"at most {MAX_REASON_CHARS} characters", field="update.reason")


@dataclass(frozen=True, slots=True)
class Report:
    """A device tells the fleet what runs (on every connection) and asks for what it needs."""

    version: str
    generation: int
    config_version: str = ""
    want_key: bool = False
    rotate_password: str = ""  # a new password the device chose, to replace the current one
    update: UpdateReport | None = None
    sent_at_ms: int = 0

    def __post_init__(self) -> None:
        if self.version and not is_valid_version(self.version):
            raise PayloadError("is not a version", field="version")
        if self.rotate_password and not _PASSWORD.match(self.rotate_password):
            raise PayloadError("must be 64 lowercase hex digits", field="rotate")
        if len(self.config_version) > 64:
            raise PayloadError("at most 64 characters", field="config_version")

    def encode(self) -> bytes:
        """Return the JSON payload."""
        body: dict[str, Any] = {
            "version": self.version,
            "generation": self.generation,
            "config_version": self.config_version,
            "t": self.sent_at_ms,
        }
        if self.want_key:
            body["want_key"] = True
        if self.rotate_password:
            body["rotate"] = self.rotate_password
        if self.update is not None:
            body["update"] = {"version": self.update.version, "rollout": self.update.rollout,
                              "state": self.update.state, "reason": self.update.reason}  # fmt: skip
        return _dump(body)

    @classmethod
    def decode(cls, payload: bytes) -> Report:
        """Parse and check a report.

        Raises:
            PayloadError: malformed; names the field.
        """
        document = _load(payload)
        update = None
        raw = document.get("update")
        if raw is not None:
            if not isinstance(raw, dict):
                raise PayloadError("must be an object", field="update")
            update = UpdateReport(
                version=_text(raw, "version"),
                rollout=_natural(raw, "rollout"),
                state=_text(raw, "state"),
                reason=_text(raw, "reason", ""),
            )
        want = document.get("want_key", False)
        if not isinstance(want, bool):
            raise PayloadError("must be true or false", field="want_key")
        return cls(
            version=_text(document, "version", ""),
            generation=_natural(document, "generation", 0),
            config_version=_text(document, "config_version", ""),
            want_key=want,
            rotate_password=_text(document, "rotate", ""),
            update=update,
            sent_at_ms=_natural(document, "t", 0),
        )


@dataclass(frozen=True, slots=True)
class Provision:
    """What a device learns once it is connected with its own credentials.

    `generation` counts the device's passwords (1 at enrolment, +1 per rotation); the device
    rotates after `rotate_after_ms` and the broker refuses it after `expires_at_ms`.
    """

    device: str
    site: str
    generation: int
    expires_at_ms: int
    rotate_after_ms: int
    confirm_key: str = ""  # hex, only when the device asked (want_key)

    def __post_init__(self) -> None:
        for name in ("device", "site"):
            if not is_valid_id(getattr(self, name)):
                raise PayloadError("is not a valid id", field=name)
        if self.confirm_key and not _PASSWORD.match(self.confirm_key):
            raise PayloadError("must be 64 lowercase hex digits", field="confirm_key")

    def encode(self) -> bytes:
        """Return the JSON payload."""
        body: dict[str, Any] = {"device": self.device, "site": self.site,
                                "generation": self.generation, "expires_at": self.expires_at_ms,
                                "rotate_after": self.rotate_after_ms}  # fmt: skip
        if self.confirm_key:
            body["confirm_key"] = self.confirm_key
        return _dump(body)

    @classmethod
    def decode(cls, payload: bytes) -> Provision:
        """Parse and check a provisioning message.

        Raises:
            PayloadError: malformed; names the field.
        """
        document = _load(payload)
        return cls(
            device=_text(document, "device"),
            site=_text(document, "site"),
            generation=_natural(document, "generation"),
            expires_at_ms=_natural(document, "expires_at"),
            rotate_after_ms=_natural(document, "rotate_after"),
            confirm_key=_text(document, "confirm_key", ""),
        )


@dataclass(frozen=True, slots=True)
class UpdateCommand:
    """Install a release: fetch it from its retained topic, check it, try it within a deadline."""

    version: str
    rollout: int
    deadline_s: float
    sha256: str

    def __post_init__(self) -> None:
        if not is_valid_version(self.version):
            raise PayloadError("is not a version", field="update.version")
        if not 5 <= self.deadline_s <= 86_400:
            raise PayloadError("must be 5 to 86400 seconds", field="update.deadline_s")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise PayloadError("must be 64 lowercase hex digits", field="update.sha256")


@dataclass(frozen=True, slots=True)
class Command:
    """The release the fleet wants a device to run (retained: a device offline now learns it
    when it is back); no update: stay on what runs."""

    update: UpdateCommand | None = None

    def encode(self) -> bytes:
        """Return the JSON payload."""
        body: dict[str, Any] = {}
        if self.update is not None:
            body["update"] = {"version": self.update.version, "rollout": self.update.rollout,
                              "deadline_s": self.update.deadline_s,
                              "sha256": self.update.sha256}  # fmt: skip
        return _dump(body)

    @classmethod
    def decode(cls, payload: bytes) -> Command:
        """Parse and check a command.

        Raises:
            PayloadError: malformed; names the field.
        """
        document = _load(payload)
        update = None
        raw = document.get("update")
        if raw is not None:
            if not isinstance(raw, dict):
                raise PayloadError("must be an object", field="update")
            deadline = raw.get("deadline_s")
            if isinstance(deadline, bool) or not isinstance(deadline, int | float):
                raise PayloadError("must be a number", field="update.deadline_s")
            update = UpdateCommand(
                version=_text(raw, "version"),
                rollout=_natural(raw, "rollout"),
                deadline_s=float(deadline),
                sha256=_text(raw, "sha256"),
            )
        return cls(update=update)


def _dump(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def _load(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_MESSAGE_BYTES:
        raise PayloadError(f"a fleet message is at most {MAX_MESSAGE_BYTES} bytes")
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise PayloadError("not a JSON object")
    return document


def _text(document: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = document.get(name, default)
    if value is None:
        raise PayloadError("is required", field=name)
    if not isinstance(value, str) or len(value) > MAX_REASON_CHARS:
        raise PayloadError(f"must be text of at most {MAX_REASON_CHARS} characters", field=name)
    return value


def _natural(document: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = document.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise PayloadError("must be a non-negative integer", field=name)
    return value


def _mapping(document: Mapping[str, Any], name: str) -> dict[str, str]:
    value = document.get(name, {})
    if not isinstance(value, dict):
        raise PayloadError("must be an object", field=name)
    return {str(k): v for k, v in value.items()}


def _serial_field(serial: str) -> None:
    if not is_valid_serial(serial):
        raise PayloadError(
            "must be 1-64 of A-Z a-z 0-9 . _ : -, starting with a letter or digit", field="serial"
        )


def _nonce(nonce: str) -> None:
    if not _NONCE.match(nonce):
        raise PayloadError("must be 32 lowercase hex digits", field="nonce")


def _facts(facts: Mapping[str, Any]) -> None:
    if len(facts) > MAX_FACTS:
        raise PayloadError(f"at most {MAX_FACTS} facts", field="hardware")
    for key, value in facts.items():
        if not _FACT_KEY.match(key):
            raise PayloadError(f"fact name {key[:40]!r} must be a-z, 0-9, _", field="hardware")
        if not isinstance(value, str) or len(value) > MAX_FACT_CHARS:
            raise PayloadError(
                f"fact {key!r} must be text of at most {MAX_FACT_CHARS} characters",
                field="hardware",
            )
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise PayloadError(
                f"fact {key!r} must not contain control characters", field="hardware"
            )
