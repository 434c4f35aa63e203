"""Typed settings, loaded once per process from TOML plus `STREETSENSE_<SECTION>_<KEY>` env vars.

Every default lives here; `streetsense config sample` prints them all with their variables.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Final, TypeVar, get_args, get_origin, get_type_hints

from streetsense.broker import BrokerTarget, broker_target
from streetsense.errors import ConfigError
from streetsense.partition import Partition, parse_partition

ENV_PREFIX: Final = "STREETSENSE_"
CONFIG_ENV: Final = "STREETSENSE_CONFIG"
DEFAULT_FILE: Final = "streetsense.toml"
_TRUE: Final = {"1", "true", "yes", "on"}
_FALSE: Final = {"0", "false", "no", "off"}


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """PostgreSQL / TimescaleDB connection."""

    url: str = field(default="", metadata=_doc("libpq URL; empty: the demo starts a private one"))
    pool_min: int = field(default=1, metadata=_doc("connections kept open per process"))
    pool_max: int = field(default=8, metadata=_doc("most connections per process"))
    connect_timeout_s: float = field(default=5.0, metadata=_doc("give up connecting after this"))
    timescale: str = field(
        default="auto", metadata=_doc("auto (use it when installed), on (require it), off")
    )
    compress_after_days: int = field(
        default=7, metadata=_doc("TimescaleDB: compress raw chunks older than this")
    )
    retention_days: int = field(
        default=0, metadata=_doc("drop raw readings older than this; 0 keeps them forever")
    )


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """MQTT broker connection."""

    url: str = field(
        default="",
        metadata=_doc("mqtt://host:1883, mqtts://host:8883, ws:// or wss://; empty: demo broker"),
    )
    topic_prefix: str = field(default="streetsense/v1", metadata=_doc("root of every topic"))
    shared_group: str = field(
        default="ingest", metadata=_doc("shared-subscription group of ingest; empty: none")
    )
    client_id: str = field(default="", metadata=_doc("MQTT client id; empty: derived"))
    username: str = field(default="", metadata=_doc("broker user name"))
    password_file: str = field(
        default="", metadata=_doc("file holding the broker password (never put it here)")
    )
    ca_file: str = field(default="", metadata=_doc("CA bundle for mqtts://"))
    cert_file: str = field(default="", metadata=_doc("client certificate (PEM)"))
    key_file: str = field(default="", metadata=_doc("client private key (PEM)"))
    keepalive_s: int = field(default=30, metadata=_doc("MQTT keepalive"))
    protocol: str = field(
        default="5", metadata=_doc("5 or 3.1.1 (3.1.1 for brokers without MQTT 5, no $share)")
    )


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """The ingest service."""

    batch_max_readings: int = field(default=20_000, metadata=_doc("flush at this many readings"))
    batch_max_age_ms: int = field(default=200, metadata=_doc("flush a batch at least this often"))
    receive_maximum: int = field(
        default=16_000,
        metadata=_doc("MQTT 5 receive maximum: unacked messages the broker sends"),
    )
    late_window_s: int = field(
        default=7 * 86_400,
        metadata=_doc("readings older than this are rejected; rollups refresh within it"),
    )
    future_tolerance_s: int = field(
        default=300, metadata=_doc("readings this far ahead of the clock are rejected")
    )
    auto_register: bool = field(
        default=False, metadata=_doc("register unknown devices on first sight (pilots, tests)")
    )
    max_payload_bytes: int = field(default=262_144, metadata=_doc("larger payloads are rejected"))
    rejected_payload_cap: int = field(
        default=4_096, metadata=_doc("bytes of a rejected payload kept for diagnosis")
    )
    device_rate_per_s: float = field(
        default=50.0, metadata=_doc("messages per second a device may send on average")
    )
    device_burst: int = field(default=2_000, metadata=_doc("messages a device may send at once"))
    metrics_port: int = field(default=9108, metadata=_doc("Prometheus metrics port; 0: off"))
    metrics_host: str = field(default="127.0.0.1", metadata=_doc("metrics bind address"))
    quarantine_devices_per_site: int = field(
        default=1_000,
        metadata=_doc("unknown device ids quarantine keeps per site; messages of more are refused"),
    )
    quarantine_max_bytes: int = field(
        default=256_000_000,
        metadata=_doc("payload bytes quarantine keeps in all; beyond it messages are refused"),
    )
    quarantine_retention_days: int = field(
        default=30, metadata=_doc("quarantined messages older than this are deleted; 0: kept")
    )
    rejected_retention_days: int = field(
        default=30, metadata=_doc("rejected_messages older than this are deleted; 0: kept")
    )
    trust_offline_status: bool = field(
        default=False,
        metadata=_doc(
            "accept online=false (a Last Will) on status topics: only where the broker "
            "authenticates devices and binds their topics, as deploy/mosquitto/secure.conf does"
        ),
    )
    refusals_kept_per_minute: int = field(
        default=20,
        metadata=_doc("refusals of one device and reason kept whole per minute; the rest summed"),
    )
    capacity_margin: float = field(
        default=1.0,
        metadata=_doc(
            "a lot's counted occupied_spaces more than this share above its registered "
            "capacity is refused (beyond_capacity; 1.0: above twice the capacity); up to it, "
            "stored and flagged over capacity where it is read"
        ),
    )
    partition: str = field(
        default="",
        metadata=_doc(
            "k/N: this process ingests part k of N (brokers without $share: run N processes, "
            "1/N to N/N, each on a session of its own); empty: every topic"
        ),
    )
    partition_by: str = field(
        default="device",
        metadata=_doc("device or site: the topic level ingest.partition hashes"),
    )


@dataclass(frozen=True, slots=True)
class AnalyticsSettings:
    """The scheduled analytics job."""

    interval_s: int = field(default=300, metadata=_doc("run the job this often"))
    history_days: int = field(default=28, metadata=_doc("history the models are fitted on"))
    parking_horizon_h: int = field(default=24, metadata=_doc("parking forecast horizon"))
    parking_step_min: int = field(default=15, metadata=_doc("parking forecast step (minutes)"))
    traffic_horizon_h: int = field(default=3, metadata=_doc("traffic forecast horizon"))
    traffic_step_min: int = field(default=5, metadata=_doc("traffic forecast step (minutes)"))
    workers: int = field(
        default=0,
        metadata=_doc(
            "threads a forecast fit runs on; 0: one per core the process may use, at most 8 "
            "(1 on a single-core device); forecasts are the same whatever the number"
        ),
    )
    forecast_retention_days: int = field(
        default=2,
        metadata=_doc(
            "delete forecast runs issued longer ago than this (each stream and model's newest "
            "run stays); 0: keep every run"
        ),
    )


@dataclass(frozen=True, slots=True)
class FeedsSettings:
    """The open feeds API."""

    host: str = field(default="127.0.0.1", metadata=_doc("bind address"))
    port: int = field(default=8080, metadata=_doc("HTTP port"))
    stale_after_s: int = field(
        default=900, metadata=_doc("a lot whose sensors are silent this long is stale")
    )
    rate_per_minute: int = field(default=600, metadata=_doc("requests per client per minute"))
    cors_origins: str = field(default="*", metadata=_doc("comma-separated allowed origins"))
    republish_mqtt: bool = field(
        default=True, metadata=_doc("republish lot changes as retained MQTT messages")
    )
    public_url: str = field(
        default="",
        metadata=_doc("base URL the feeds are published at, for absolute links; empty: relative"),
    )
    streams_per_client: int = field(
        default=10, metadata=_doc("live streams one client address may hold open; 0: no cap")
    )
    streams_max: int = field(default=500, metadata=_doc("live streams in total; 0: no cap"))
    connections_per_client: int = field(
        default=50, metadata=_doc("connections one client address may hold open; 0: no cap")
    )
    connections_max: int = field(
        default=900, metadata=_doc("connections in total (keep below the open-files limit)")
    )
    header_timeout_s: float = field(
        default=10.0, metadata=_doc("close a connection whose request head is not in by then")
    )
    idle_timeout_s: int = field(
        default=5, metadata=_doc("close a kept-alive connection idle between requests this long")
    )
    write_timeout_s: float = field(
        default=30.0, metadata=_doc("drop a client that has read nothing sent for this long")
    )
    metrics_port: int = field(default=9110, metadata=_doc("Prometheus metrics port; 0: off"))
    metrics_host: str = field(default="127.0.0.1", metadata=_doc("metrics bind address"))


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    """The planners' dashboard."""

    port: int = field(default=8501, metadata=_doc("HTTP port"))
    host: str = field(default="127.0.0.1", metadata=_doc("bind address"))
    map_style: str = field(
        default="light",
        metadata=_doc(
            "base map: a MapLibre style URL your planners' browsers reach (your city's tile "
            "server), or light/dark/road (Carto's public basemaps); empty: none"
        ),
    )


@dataclass(frozen=True, slots=True)
class AlertsSettings:
    """Alert rules, their evaluation and delivery (`streetsense alerts`)."""

    rules_file: str = field(
        default="", metadata=_doc("TOML alert rules; empty: the shipped defaults alone")
    )
    interval_s: int = field(default=60, metadata=_doc("evaluate the rules this often"))
    retry_max_s: int = field(
        default=300, metadata=_doc("longest wait between delivery attempts to a channel")
    )
    metrics_port: int = field(default=9109, metadata=_doc("Prometheus metrics port; 0: off"))
    metrics_host: str = field(default="127.0.0.1", metadata=_doc("metrics bind address"))


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """Enrolment, credentials and releases of the edge agents (`streetsense fleet`)."""

    topic_prefix: str = field(
        default="streetsense/fleet/v1",
        metadata=_doc("root of the fleet's topics; never under mqtt.topic_prefix"),
    )
    credential_lifetime_s: int = field(
        default=90 * 86_400, metadata=_doc("a device password expires this long after issue")
    )
    rotate_share: float = field(
        default=0.66, metadata=_doc("devices replace their password after this share of it")
    )
    batch_lifetime_s: int = field(
        default=30 * 86_400, metadata=_doc("a batch's bootstrap secret enrols for this long")
    )
    enrol_rate_per_s: float = field(
        default=5.0, metadata=_doc("enrolment requests taken per batch per second (bursts 50)")
    )
    pending_per_batch: int = field(
        default=1_000, metadata=_doc("unknown serials kept pending per batch; more are refused")
    )
    interval_s: float = field(
        default=0.5, metadata=_doc("how often the service takes queued actions and rollouts")
    )
    release_key_file: str = field(
        default="",
        metadata=_doc("the release public key bundles are checked with before publishing"),
    )


@dataclass(frozen=True, slots=True)
class CitySettings:
    """The city this deployment serves."""

    name: str = field(default="Streetsense City", metadata=_doc("shown on dashboards and feeds"))
    timezone: str = field(default="UTC", metadata=_doc("IANA zone times are shown in"))
    agency: str = field(default="", metadata=_doc("publishing agency named in the open feeds"))
    country: str = field(
        default="",
        metadata=_doc(
            "ISO 3166 alpha-2 code: public holidays (PH) in opening hours, DATEX II publisher"
        ),
    )
    special_days: str = field(
        default="",
        metadata=_doc(
            "file of school holidays and events (.ics VEVENTs, or .csv name,start,end[,kind]) "
            "whose effect forecasts estimate; empty: none"
        ),
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything one streetsense process is configured with."""

    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    feeds: FeedsSettings = field(default_factory=FeedsSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    city: CitySettings = field(default_factory=CitySettings)
    alerts: AlertsSettings = field(default_factory=AlertsSettings)
    fleet: FleetSettings = field(default_factory=FleetSettings)

    def broker(self) -> BrokerTarget:
        """Return the broker connection every MQTT client of ours uses (URL, TLS, credentials).

        Raises:
            ConfigError: mqtt.url is empty or wrong, or the TLS settings contradict it.
        """
        return broker_target(self.mqtt, ENV_PREFIX)

    def partition(self) -> Partition:
        """Return the part of the topic space this ingest process takes.

        Raises:
            ConfigError: ingest.partition or partition_by is wrong, or a shared subscription
                would split the topics a second time (each member would drop most of its part).
        """
        ingest = self.ingest
        where = f"ingest.partition ({ENV_PREFIX}INGEST_PARTITION)"
        prefix = self.mqtt.topic_prefix
        partition = parse_partition(ingest.partition, ingest.partition_by, prefix, where)
        if not partition.whole and self.mqtt.protocol == "5" and self.mqtt.shared_group:
            raise ConfigError(
                f"ingest.partition = {ingest.partition!r} with mqtt.shared_group = "
                f"{self.mqtt.shared_group!r}: the group already splits messages among its "
                "members, and each would drop those outside its part; use one or the other "
                '(STREETSENSE_MQTT_SHARED_GROUP="" for partitions)'
            )
        return partition


T = TypeVar("T")


def load_settings(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load settings: defaults, then the TOML file, then `STREETSENSE_*` variables.

    Args:
        path: the TOML file; None looks at $STREETSENSE_CONFIG, then ./streetsense.toml.
        environ: the environment (defaults to os.environ).

    Raises:
        ConfigError: a file, key or value is wrong; the message names it and the fix.
    """
    env = os.environ if environ is None else environ
    settings = load_dataclass(Settings, read_toml(resolve_config_path(path, env)), env, ENV_PREFIX)
    if settings.mqtt.url:
        settings.broker()  # fail fast: every process would otherwise find out when it connects
    settings.partition()
    return settings


def resolve_config_path(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    """Return the config file to read, or None when there is none to read."""
    if path is not None:
        return Path(path)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    default = Path(DEFAULT_FILE)
    return default if default.is_file() else None


def read_toml(path: Path | None) -> dict[str, Any]:
    """Read a TOML file into a dict, with a clear error for a missing or malformed file."""
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {str(path)!r} does not exist; fix the path") from exc
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc


def load_dataclass(
    cls: type[T], data: Mapping[str, Any], env: Mapping[str, str], env_prefix: str, where: str = ""
) -> T:
    """Build a (nested) settings dataclass from a mapping and environment variables.

    A nested dataclass field is a TOML table; other fields are scalars. The environment
    variable of `section.key` is `<env_prefix>SECTION_KEY`.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"'{where or 'the file'}' must be a table")
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{_join(where, close[0])}'?" if close else ""
            raise ConfigError(f"unknown setting '{_join(where, str(key))}'{hint}")
    values: dict[str, Any] = {}
    for name in names:
        hint = hints[name]
        dotted = _join(where, name)
        env_name = env_prefix + dotted.replace(".", "_").upper()
        if is_dataclass(hint):
            values[name] = load_dataclass(hint, data.get(name, {}), env, env_prefix, dotted)  # type: ignore[arg-type]
        elif env_name in env:
            what = f"{env_name} (setting '{dotted}')"
            values[name] = _in_range(name, _coerce(env[env_name], hint, what), what)
        elif name in data:
            what = f"setting '{dotted}'"
            values[name] = _in_range(name, _check(data[name], hint, what), what)
    return cls(**values)


_LARGEST_SETTING: Final = 2**53


def _in_range(name: str, value: Any, what: str) -> Any:
    # Every number we configure is a size, a rate, a duration or a port: never negative, and
    # never beyond what a float holds exactly (a larger int is a typo, and overflows floats).
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if value > _LARGEST_SETTING:
        raise ConfigError(f"{what} = {value!r} is too large (at most {_LARGEST_SETTING:,})")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what} = {value!r} must be a finite number >= 0")
    if name.endswith("port") and value > 65_535:
        raise ConfigError(f"{what} = {value!r} is not a TCP port (0-65535)")
    return value


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _coerce(text: str, hint: Any, what: str) -> Any:
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ConfigError(f"{what} = {text!r} must be true or false")
    if hint in (int, float):
        try:
            return hint(text)
        except ValueError:
            raise ConfigError(f"{what} = {text!r} must be a {hint.__name__}") from None
    if get_origin(hint) is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return text


def _check(value: Any, hint: Any, what: str) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{what} must be a list of strings")
        return tuple(value)
    expected = hint if isinstance(hint, type) else get_args(hint) or object
    if isinstance(hint, types.UnionType):
        expected = get_args(hint)
    if not isinstance(value, expected) or (hint is not bool and isinstance(value, bool)):
        name = getattr(hint, "__name__", str(hint))
        raise ConfigError(f"{what} = {value!r} must be a {name}, not {type(value).__name__}")
    return value


def with_overrides(settings: Settings, **sections: Mapping[str, Any]) -> Settings:
    """Return a copy of settings with some fields of some sections replaced (for tests, CLI)."""
    changed = {
        name: replace(getattr(settings, name), **values) for name, values in sections.items()
    }
    return replace(settings, **changed)
