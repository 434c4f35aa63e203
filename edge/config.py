"""The agent's typed configuration: TOML file plus `STREETSENSE_EDGE_*` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from streetsense.broker import BrokerTarget, broker_target
from streetsense.config import load_dataclass, read_toml
from streetsense.confirm import parse_key
from streetsense.errors import ConfigError
from streetsense.ids import describe_bad_id, is_valid_id

ENV_PREFIX: Final = "STREETSENSE_EDGE_"
DEFAULT_CONFIG: Final = "/etc/streetsense-edge/agent.toml"
CONFIRM_KEY_ENV: Final = ENV_PREFIX + "DEVICE_CONFIRM_KEY"
DRIVERS: Final = ("simulated", "replay", "serial-line", "command")
CONFIRM_MODES: Final = ("ingest", "broker")
SYNC_MODES: Final = ("full", "normal")


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True, slots=True)
class DeviceSection:
    """Who this agent is: the ids in its topics."""

    site: str = field(default="", metadata=_doc("site id (topic level 2)"))
    id: str = field(default="", metadata=_doc("device id (topic level 3)"))
    confirm_key_file: str = field(
        default="",
        metadata=_doc(
            "file holding this device's confirmation key (`streetsense registry key <id>`); "
            "without it no confirmation is trusted and nothing leaves the buffer"
        ),
    )


@dataclass(frozen=True, slots=True)
class MqttSection:
    """The broker connection."""

    url: str = field(
        default="mqtt://127.0.0.1:1883", metadata=_doc("mqtt://, mqtts:// (TLS), ws:// or wss://")
    )
    protocol: str = field(
        default="5",
        metadata=_doc("5, or 3.1.1 for brokers without MQTT 5 (a persistent session instead)"),
    )
    topic_prefix: str = field(default="streetsense/v1", metadata=_doc("root of every topic"))
    client_id: str = field(default="", metadata=_doc("MQTT client id; empty: the device id"))
    username: str = field(default="", metadata=_doc("broker user name; empty: none"))
    password_file: str = field(default="", metadata=_doc("file holding the broker password"))
    ca_file: str = field(default="", metadata=_doc("CA bundle for mqtts://; empty: system CAs"))
    cert_file: str = field(default="", metadata=_doc("client certificate (PEM)"))
    key_file: str = field(default="", metadata=_doc("client private key (PEM)"))
    keepalive_s: int = field(default=30, metadata=_doc("a dead link is found within 1.5x this"))
    connect_timeout_s: float = field(default=10.0, metadata=_doc("give up a connect after this"))
    backoff_min_s: float = field(
        default=1.0, metadata=_doc("first reconnect delay's ceiling (delays: full jitter)")
    )
    backoff_max_s: float = field(default=60.0, metadata=_doc("longest reconnect delay"))


@dataclass(frozen=True, slots=True)
class BufferSection:
    """The store-and-forward buffer."""

    path: str = field(
        default="/var/lib/streetsense-edge/buffer.sqlite", metadata=_doc("SQLite buffer file")
    )
    cap_bytes: int = field(default=64_000_000, metadata=_doc("at this size the oldest go first"))
    min_free_bytes: int = field(
        default=8_000_000, metadata=_doc("keep this much disk free: drop oldest below it")
    )
    synchronous: str = field(
        default="full", metadata=_doc("full: survives power cuts; normal: less flash wear")
    )
    confirm: str = field(
        default="ingest",
        metadata=_doc("ingest: free on ingest's ack; broker: on PUBACK (loses data, demo only)"),
    )
    resend_timeout_s: float = field(default=30.0, metadata=_doc("re-send if unconfirmed this long"))
    pack_max_readings: int = field(default=250, metadata=_doc("readings per SenML pack"))
    drain_rate: float = field(default=200.0, metadata=_doc("backlog readings per second"))
    max_inflight: int = field(default=20, metadata=_doc("packs awaiting the broker's PUBACK"))


@dataclass(frozen=True, slots=True)
class DriverSection:
    """Where raw sensor events come from."""

    kind: str = field(
        default="simulated", metadata=_doc("simulated, replay, serial-line or command")
    )
    path: str = field(default="", metadata=_doc("replay file, serial port or FIFO"))
    command: str = field(default="", metadata=_doc("program whose stdout lines are events"))
    speed: float = field(default=1.0, metadata=_doc("time acceleration of simulated/replay"))
    baud: int = field(default=9600, metadata=_doc("serial-line: baud rate of a serial port"))
    seed: int = field(default=0, metadata=_doc("simulated: random seed"))
    spots: int = field(default=4, metadata=_doc("simulated: parking spots S1..Sn"))
    lanes: int = field(default=2, metadata=_doc("simulated: traffic lanes L1..Ln"))
    lamp: bool = field(default=True, metadata=_doc("simulated: a lamp reporting power/dimming"))
    event_rate: float = field(default=1.0, metadata=_doc("simulated: raw events per second"))
    retime: bool = field(default=False, metadata=_doc("replay: shift times so the file starts now"))


@dataclass(frozen=True, slots=True)
class ParkingSection:
    """Spot debounce with hysteresis."""

    occupied_after_s: float = field(default=30.0, metadata=_doc("present this long: occupied"))
    free_after_s: float = field(default=60.0, metadata=_doc("absent this long: free"))
    heartbeat_s: float = field(default=900.0, metadata=_doc("re-send every spot's state"))


@dataclass(frozen=True, slots=True)
class TrafficSection:
    """Vehicle detections counted in intervals aligned to the clock."""

    interval_s: int = field(default=60, metadata=_doc("interval length; divides a day evenly"))
    grace_s: float = field(default=2.0, metadata=_doc("wait this long for late detections"))
    revise_within_s: float = field(
        default=3600.0,
        metadata=_doc("a detection this late still counts: its interval is sent again revised"),
    )


@dataclass(frozen=True, slots=True)
class StatusSection:
    """Health heartbeat and the local state file."""

    heartbeat_s: float = field(default=60.0, metadata=_doc("health heartbeat period"))
    state_file: str = field(default="", metadata=_doc("empty: <buffer.path>.state.json"))


@dataclass(frozen=True, slots=True)
class ClockSection:
    """Clock sanity checks."""

    valid_after: str = field(
        default="2025-01-01T00:00:00+00:00", metadata=_doc("earlier device times are suspect")
    )
    max_jump_s: float = field(default=120.0, metadata=_doc("a step larger than this is a jump"))
    settle_s: float = field(default=300.0, metadata=_doc("flag readings this long after a jump"))


@dataclass(frozen=True, slots=True)
class FleetSection:
    """Zero-touch enrolment, the device's own credentials and signed updates (docs/edge.md)."""

    batch: str = field(
        default="",
        metadata=_doc("the image's batch: set, the agent enrols itself; empty: configured by hand"),
    )
    bootstrap_secret_file: str = field(
        default="", metadata=_doc("the batch's bootstrap secret (enrols, nothing else)")
    )
    serial: str = field(default="", metadata=_doc("this device's serial; empty: read it"))
    serial_file: str = field(
        default="",
        metadata=_doc(
            "file with the serial; empty: /proc/device-tree/serial-number, the DMI serial, "
            "/etc/machine-id"
        ),
    )
    state_dir: str = field(
        default="/var/lib/streetsense-edge/fleet",
        metadata=_doc("the device's own credentials (mode 700, files 600)"),
    )
    topic_prefix: str = field(
        default="streetsense/fleet/v1", metadata=_doc("root of the fleet's topics")
    )
    enrol_retry_s: float = field(default=15.0, metadata=_doc("ask again after this long"))
    release_key_file: str = field(
        default="", metadata=_doc("the city's release public key; empty: no updates installed")
    )
    releases_dir: str = field(
        default="/var/lib/streetsense-edge/releases",
        metadata=_doc("installed releases (A/B) and which one runs"),
    )

    @property
    def enabled(self) -> bool:
        """Whether this agent enrols itself and takes its credentials from the fleet."""
        return bool(self.batch)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything one edge agent is configured with."""

    device: DeviceSection = field(default_factory=DeviceSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    buffer: BufferSection = field(default_factory=BufferSection)
    driver: DriverSection = field(default_factory=DriverSection)
    parking: ParkingSection = field(default_factory=ParkingSection)
    traffic: TrafficSection = field(default_factory=TrafficSection)
    status: StatusSection = field(default_factory=StatusSection)
    clock: ClockSection = field(default_factory=ClockSection)
    fleet: FleetSection = field(default_factory=FleetSection)

    @property
    def state_path(self) -> Path:
        """Where the running agent writes its state for `streetsense-edge status`."""
        return Path(self.status.state_file or self.buffer.path + ".state.json")

    @property
    def client_id(self) -> str:
        """The MQTT client id."""
        return self.mqtt.client_id or self.device.id

    def broker(self) -> BrokerTarget:
        """Return the broker connection: URL, TLS and credentials, checked.

        Raises:
            ConfigError: mqtt.url or the TLS settings are wrong; names the key and the fix.
        """
        return broker_target(self.mqtt, ENV_PREFIX)

    def confirm_key(self) -> bytes | None:
        """Read the confirmation key from its file or $STREETSENSE_EDGE_DEVICE_CONFIRM_KEY.

        Raises:
            ConfigError: the file cannot be read, or does not hold a key.
        """
        path = self.device.confirm_key_file
        if not path:
            text = os.environ.get(CONFIRM_KEY_ENV)
            return parse_key(text, CONFIRM_KEY_ENV) if text else None
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"setting 'device.confirm_key_file' = {path!r} cannot be read ({exc.strerror}); "
                "give the agent's user read access to it"
            ) from exc
        return parse_key(text, f"device.confirm_key_file {path!r}")

    def valid_after_epoch(self) -> float:
        """Return `clock.valid_after` as epoch seconds."""
        return datetime.fromisoformat(self.clock.valid_after).timestamp()


def load_config(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> AgentConfig:
    """Load and validate the agent's configuration.

    Raises:
        ConfigError: a key or value is wrong; the message names it and the fix.
    """
    env = os.environ if environ is None else environ
    data = read_toml(Path(path)) if path is not None else {}
    config = load_dataclass(AgentConfig, data, env, ENV_PREFIX)
    validate(config)
    return config


def validate(config: AgentConfig) -> None:
    """Check the values the type system cannot, naming the key and the fix."""
    for key, value in (("device.site", config.device.site), ("device.id", config.device.id)):
        if config.fleet.enabled and not value:
            continue  # enrolment gives them
        if not is_valid_id(value):
            raise ConfigError(f"setting '{key}': {describe_bad_id(key, value)}")
    if config.fleet.enabled:
        validate_fleet(config.fleet)
    _choice("driver.kind", config.driver.kind, DRIVERS)
    _choice("buffer.confirm", config.buffer.confirm, CONFIRM_MODES)
    _choice("buffer.synchronous", config.buffer.synchronous, SYNC_MODES)
    config.broker()
    if not 0 < config.mqtt.backoff_min_s <= config.mqtt.backoff_max_s:
        raise ConfigError(
            "settings 'mqtt.backoff_min_s' and 'mqtt.backoff_max_s' need "
            f"0 < {config.mqtt.backoff_min_s} <= {config.mqtt.backoff_max_s}; e.g. 1 and 60"
        )
    if config.driver.kind in ("replay", "serial-line") and not config.driver.path:
        raise ConfigError(f"driver '{config.driver.kind}' needs 'driver.path' (file or port)")
    if config.driver.kind == "command" and not config.driver.command:
        raise ConfigError("driver 'command' needs 'driver.command' (the program to run)")
    try:
        moment = datetime.fromisoformat(config.clock.valid_after)
    except ValueError as exc:
        raise ConfigError(
            f"setting 'clock.valid_after': {exc}; use 2025-01-01T00:00:00+00:00"
        ) from exc
    if moment.tzinfo is None:
        raise ConfigError("setting 'clock.valid_after' needs a UTC offset, e.g. +00:00")
    validate_tunables(config)


def validate_fleet(fleet: FleetSection) -> None:
    """Check the enrolment settings."""
    if not is_valid_id(fleet.batch):
        raise ConfigError(f"setting 'fleet.batch': {describe_bad_id('fleet.batch', fleet.batch)}")
    if not fleet.bootstrap_secret_file:
        raise ConfigError(
            "setting 'fleet.bootstrap_secret_file' is needed with fleet.batch: the file of the "
            "batch's bootstrap secret, from `streetsense fleet batch create`"
        )
    if not fleet.enrol_retry_s > 0:
        raise ConfigError("setting 'fleet.enrol_retry_s' must be greater than 0")


def validate_tunables(config: AgentConfig) -> None:
    """Check the values remote configuration may change."""
    positive = {
        "buffer.cap_bytes": config.buffer.cap_bytes,
        "buffer.resend_timeout_s": config.buffer.resend_timeout_s,
        "buffer.pack_max_readings": config.buffer.pack_max_readings,
        "buffer.drain_rate": config.buffer.drain_rate,
        "buffer.max_inflight": config.buffer.max_inflight,
        "mqtt.keepalive_s": config.mqtt.keepalive_s,
        "traffic.interval_s": config.traffic.interval_s,
        "status.heartbeat_s": config.status.heartbeat_s,
        "parking.heartbeat_s": config.parking.heartbeat_s,
        "driver.speed": config.driver.speed,
    }
    for key, value in positive.items():
        if not value > 0:
            raise ConfigError(f"setting '{key}' = {value!r} must be greater than 0")
    if config.buffer.pack_max_readings > 5_000:
        raise ConfigError("setting 'buffer.pack_max_readings' must be at most 5000 (packet size)")
    if 86_400 % config.traffic.interval_s:
        raise ConfigError(
            f"setting 'traffic.interval_s' = {config.traffic.interval_s} must divide a day "
            "(86400 s) evenly, e.g. 60, 300 or 900, so intervals align to the clock"
        )
    if config.mqtt.keepalive_s < 2:
        raise ConfigError("setting 'mqtt.keepalive_s' must be at least 2 seconds")


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"setting '{key}' = {value!r} must be one of {', '.join(allowed)}")


# What an operator may change remotely (a retained JSON document on `.../config`).
REMOTE_KEYS: Final = {
    "parking": ("occupied_after_s", "free_after_s", "heartbeat_s"),
    "traffic": ("interval_s", "grace_s", "revise_within_s"),
    "status": ("heartbeat_s",),
    "buffer": ("resend_timeout_s", "pack_max_readings", "drain_rate"),
}


def apply_remote(config: AgentConfig, document: Mapping[str, Any]) -> AgentConfig:
    """Return the config with a remote document's sections applied, validated.

    Raises:
        ConfigError: the document names an unknown key or a bad value; nothing is applied.
    """
    changed: dict[str, Any] = {}
    for section, values in document.items():
        if section == "version":
            continue
        if section not in REMOTE_KEYS or not isinstance(values, Mapping):
            raise ConfigError(
                f"remote config section {section!r} cannot be changed remotely; "
                f"allowed: {sorted(REMOTE_KEYS)}"
            )
        unknown = set(values) - set(REMOTE_KEYS[section])
        if unknown:
            raise ConfigError(
                f"remote config keys {sorted(unknown)} in '{section}' cannot be changed; "
                f"allowed: {list(REMOTE_KEYS[section])}"
            )
        current = getattr(config, section)
        types = {f.name: f.type for f in fields(current)}
        for key, value in values.items():
            _check_remote_type(f"{section}.{key}", value, str(types[key]))
        changed[section] = replace(current, **values)
    updated = replace(config, **changed)
    validate_tunables(updated)
    return updated


def _check_remote_type(key: str, value: Any, type_name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"remote config '{key}' = {value!r} must be a number")
    if type_name == "int" and not isinstance(value, int):
        raise ConfigError(f"remote config '{key}' = {value!r} must be a whole number")
    if value < 0:
        raise ConfigError(f"remote config '{key}' = {value!r} must not be negative")
