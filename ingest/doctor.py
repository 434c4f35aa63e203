"""`streetsense doctor`: check the configured broker and database, and say what to fix."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt
    import psycopg

    from streetsense.broker import BrokerTarget, Endpoint
    from streetsense.config import Settings

OK: Final = "ok"
WARN: Final = "warn"
FAIL: Final = "FAIL"
# $SYS topics Mosquitto publishes (retained); other brokers may have none of them.
SYS_VERSION: Final = "$SYS/broker/version"
SYS_DROPPED: Final = "$SYS/broker/publish/messages/dropped"
SYS_CLIENTS: Final = "$SYS/broker/clients/connected"
SYS_WAIT_S: Final = 3.0


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was checked, how it went, and what to do about it."""

    name: str
    status: str
    detail: str
    fix: str = ""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `doctor` command."""
    parser = subparsers.add_parser(
        "doctor",
        help="check the configured broker and database and say what to fix",
        description="Check the MQTT broker and the database named by the settings: "
        "reachable, version, TimescaleDB, permissions, schema version, broker drops. "
        "Exits 1 when something must be fixed. With neither configured, it checks the demo "
        "running from the default data folder, or from --data-dir.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the data folder of the demo to check (what `streetsense demo --data-dir` was "
        "given); only used when no broker or database is configured",
    )
    parser.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from streetsense.config import load_settings  # noqa: PLC0415  (keep the CLI light)

    settings = load_settings(args.config)
    if args.data_dir is not None and not (settings.database.url or settings.mqtt.url):
        from streetsense.demo import discovery  # noqa: PLC0415

        if discovery.find(args.data_dir) is None:
            sys.stdout.write(
                f"no demo runs from {args.data_dir} (no running.json of a live process there): "
                "start it with `streetsense demo --data-dir` that folder, or give the folder "
                "the demo printed when it started\n"
            )
            return 1
    settings = with_running_demo(settings, sys.stdout, args.data_dir)
    checks = check_database(settings) + check_broker(settings)
    return report(checks, sys.stdout)


def with_running_demo(settings: Settings, out: TextIO, data_dir: Path | None = None) -> Settings:
    """Point unconfigured settings at the demo running on this machine, when there is one.

    With neither a broker nor a database configured, the user most likely runs the demo
    (`scripts/demo`): its running.json, in `data_dir` or the default data folder, says where
    its services are.
    """
    if settings.database.url or settings.mqtt.url:
        return settings
    from streetsense.config import with_overrides  # noqa: PLC0415
    from streetsense.demo import discovery  # noqa: PLC0415

    demo = discovery.find(data_dir)
    if demo is None:
        return settings
    out.write(f"no broker or database configured: checking the running demo (pid {demo.pid}, "
              f"data in {demo.data_dir})\n")  # fmt: skip
    values = demo.settings
    return with_overrides(
        settings,
        database={"url": values.get("STREETSENSE_DATABASE_URL", "")},
        mqtt={
            key.removeprefix("STREETSENSE_MQTT_").lower(): value
            for key, value in values.items()
            if key.startswith("STREETSENSE_MQTT_")
        },
    )


def report(checks: list[Check], out: TextIO) -> int:
    """Print every check with its fix; return 1 when any failed, else 0."""
    for check in checks:
        out.write(f"[{check.status:>4}] {check.name}: {check.detail}\n")
        if check.fix:
            out.write(f"       fix: {check.fix}\n")
    failed = sum(check.status == FAIL for check in checks)
    warned = sum(check.status == WARN for check in checks)
    out.write(f"{failed} problem(s), {warned} warning(s)\n")
    return 1 if failed else 0


def check_database(settings: Settings) -> list[Check]:
    """Check the database: reachable, version, TimescaleDB, permissions, schema version."""
    from store.db import connect, describe_url  # noqa: PLC0415
    from streetsense.errors import ServiceUnavailableError  # noqa: PLC0415

    url = settings.database.url
    if not url:
        return [
            Check(
                "database",
                FAIL,
                "no database configured",
                "set STREETSENSE_DATABASE_URL or [database] url (`streetsense demo` runs "
                "a private one without it)",
            )
        ]
    where = describe_url(url)
    try:
        conn = connect(url, autocommit=True, timeout_s=settings.database.connect_timeout_s)
    except ServiceUnavailableError as exc:
        return [Check("database", FAIL, f"{where} unreachable", str(exc))]
    with conn:
        return [Check("database", OK, f"{where} reachable"), *_database_facts(conn, settings)]


def _database_facts(conn: psycopg.Connection, settings: Settings) -> list[Check]:
    from ingest.doctor_timescale import timescale_checks  # noqa: PLC0415
    from store import doctor_reads  # noqa: PLC0415

    facts = doctor_reads.server_facts(conn)
    checks = [_version_check(facts.version, facts.version_num)]
    checks += timescale_checks(conn, settings)
    checks.append(_privileges_check(conn, facts.user, facts.superuser))
    checks.append(_schema_check(conn))
    from ingest.doctor_refusals import refusals_check  # noqa: PLC0415  (imports this module)

    checks += refusals_check(conn, settings.ingest)
    from ingest.doctor_partitions import partitions_check  # noqa: PLC0415  (imports this module)

    checks += partitions_check(conn)
    return checks


def _version_check(version: str, version_num: int) -> Check:
    if version_num < 140_000:
        return Check("PostgreSQL", FAIL, f"version {version}", "upgrade to PostgreSQL 14 or newer")
    return Check("PostgreSQL", OK, f"version {version}")


def _privileges_check(conn: psycopg.Connection, user: str, superuser: bool) -> Check:
    from store import doctor_reads  # noqa: PLC0415

    missing = doctor_reads.missing_privileges(conn)
    can_migrate = doctor_reads.can_create_in_public(conn)
    role = f"user {user}{' (superuser)' if superuser else ''}"
    if missing:
        return Check(
            "permissions",
            FAIL,
            f"{role} lacks {', '.join(missing)}",
            "GRANT them to this role, or connect as the role the services should use",
        )
    note = "may create tables (migrate)" if can_migrate else "cannot migrate (no CREATE)"
    return Check("permissions", OK, f"{role}: reads and writes allowed; {note}")


def _schema_check(conn: psycopg.Connection) -> Check:
    from store.migrate import applied_versions, available_migrations  # noqa: PLC0415

    applied = applied_versions(conn)
    latest = max((m.version for m in available_migrations()), default=0)
    current = max(applied, default=0)
    if current < latest:
        return Check(
            "schema",
            FAIL,
            f"version {current}, this release needs {latest}",
            "run `streetsense db migrate`",
        )
    if current > latest:
        return Check(
            "schema",
            FAIL,
            f"version {current} is newer than this release ({latest})",
            "upgrade streetsense on this machine to the release that migrated the database",
        )
    return Check("schema", OK, f"version {current} (latest)")


def check_broker(settings: Settings) -> list[Check]:
    """Check the broker: reachable with our credentials, version, drops, shared subscriptions."""
    if not settings.mqtt.url:
        return [
            Check(
                "broker",
                FAIL,
                "no MQTT broker configured",
                "set STREETSENSE_MQTT_URL or [mqtt] url (`streetsense demo` runs one without it)",
            )
        ]
    return probe_broker(settings)


class _Probe:
    """A short-lived paho client that records the broker's answers."""

    def __init__(self, target: BrokerTarget) -> None:
        import queue  # noqa: PLC0415
        import uuid  # noqa: PLC0415

        import paho.mqtt.client as mqtt  # noqa: PLC0415
        from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

        from streetsense.broker import configure_client  # noqa: PLC0415

        self.connack: queue.Queue[int] = queue.Queue()
        self.subacks: queue.Queue[list[int]] = queue.Queue()
        self.sys: dict[str, str] = {}
        self.v5 = target.v5
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"streetsense-doctor-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
            transport=target.transport,  # type: ignore[arg-type]
        )
        configure_client(self.client, target)  # exactly as ingest connects
        self.client.on_connect = lambda _c, _u, _f, code, _p: self.connack.put(code.value)
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self.subacks.put(
            [code.value for code in codes]
        )
        self.client.on_message = self._on_message

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self.sys[message.topic] = message.payload.decode("utf-8", errors="replace")


def probe_broker(settings: Settings) -> list[Check]:
    """Connect to the broker as ingest would and read what it says about itself.

    With several brokers in `mqtt.url` (a cluster), every node is checked: a client that
    fails over to a node that refuses it would stall there.
    """
    from streetsense.errors import ConfigError  # noqa: PLC0415

    try:
        target = settings.broker()
    except ConfigError as exc:
        return [Check("broker", FAIL, "the MQTT settings are wrong", str(exc))]
    checks: list[Check] = []
    for endpoint in target.endpoints:
        checks += _probe_node(settings, target, endpoint)
    return checks


def _probe_node(settings: Settings, target: BrokerTarget, endpoint: Endpoint) -> list[Check]:
    from streetsense.broker import connect_error  # noqa: PLC0415
    from streetsense.errors import ConfigError  # noqa: PLC0415

    try:
        probe = _Probe(target)
    except ConfigError as exc:
        return [Check("broker", FAIL, "the MQTT settings are wrong", str(exc))]
    if len(target.endpoints) == 1:
        where = target.describe()
    else:
        where = f"{target.scheme}://{endpoint}{target.websocket_path}"
    try:
        probe.client.connect(endpoint.host, endpoint.port, keepalive=settings.mqtt.keepalive_s)
    except OSError as exc:
        return [
            Check("broker", FAIL, f"{where}: cannot connect", connect_error(exc, target, endpoint))
        ]
    probe.client.loop_start()
    try:
        return _broker_checks(probe, settings, where)
    finally:
        probe.client.disconnect()
        probe.client.loop_stop()


def _broker_checks(probe: _Probe, settings: Settings, where: str) -> list[Check]:
    import queue  # noqa: PLC0415

    try:
        code = probe.connack.get(timeout=settings.database.connect_timeout_s + 5)
    except queue.Empty:
        return [Check("broker", FAIL, f"{where} accepted TCP but sent no CONNACK", _TLS_FIX)]
    if code != 0:
        return [_refused(settings, where, code)]
    protocol = "MQTT 5" if probe.v5 else "MQTT 3.1.1"
    checks = [Check("broker", OK, f"{where} accepts {protocol} with our credentials")]
    probe.client.subscribe([(topic, 0) for topic in (SYS_VERSION, SYS_DROPPED, SYS_CLIENTS)])
    checks.append(_shared_check(probe, settings))
    checks += _sys_checks(probe)
    return checks


def _refused(settings: Settings, where: str, code: int) -> Check:
    from streetsense.broker_reasons import UNSUPPORTED_PROTOCOL, reason  # noqa: PLC0415
    from streetsense.config import with_overrides  # noqa: PLC0415

    found = reason(code)
    fix = found.fix
    if code == UNSUPPORTED_PROTOCOL and settings.mqtt.protocol == "5":
        # Say for certain: a broker that takes 3.1.1 from us needs only the setting changed.
        older = probe_broker(with_overrides(settings, mqtt={"protocol": "3.1.1"}))
        if older and older[0].status == OK:
            fix = (
                "the broker speaks MQTT 3.1.1 only: set STREETSENSE_MQTT_PROTOCOL=3.1.1 "
                '(or [mqtt] protocol = "3.1.1"); it then has no shared subscriptions, so run '
                "one ingest"
            )
    return Check("broker", FAIL, f"{where} refused the connection: {found.name} ({code})", fix)


_TLS_FIX: Final = "use mqtts:// with [mqtt] ca_file for a TLS listener, mqtt:// otherwise"


def _shared_check(probe: _Probe, settings: Settings) -> Check:
    import queue  # noqa: PLC0415

    group = settings.mqtt.shared_group
    try:
        probe.subacks.get(timeout=SYS_WAIT_S)  # the $SYS subscription
    except queue.Empty:
        return Check("subscriptions", FAIL, "the broker did not answer SUBSCRIBE", "")
    if not group:
        return Check("shared subscription", OK, "not used (mqtt.shared_group is empty)")
    if not probe.v5:
        return Check(
            "shared subscription",
            FAIL,
            f"mqtt.shared_group = {group!r} needs MQTT 5, but mqtt.protocol is 3.1.1",
            "set STREETSENSE_MQTT_PROTOCOL=5, or STREETSENSE_MQTT_SHARED_GROUP= for one ingest",
        )
    # a group of our own on a topic nobody publishes: joining ingest's group would steal data
    probe.client.subscribe(f"$share/doctor-probe/{settings.mqtt.topic_prefix}/doctor/probe", 1)
    try:
        codes = probe.subacks.get(timeout=SYS_WAIT_S)
    except queue.Empty:
        codes = [0x80]
    if codes and codes[0] >= 0x80:
        from streetsense.broker_reasons import SHARED_NOT_SUPPORTED, reason  # noqa: PLC0415

        found = reason(codes[0])
        return Check(
            "shared subscription",
            FAIL,
            f"the broker refused a shared subscription: {found.name} ({codes[0]})",
            # a broker without $share may answer with a generic failure code
            reason(SHARED_NOT_SUPPORTED).fix,
        )
    return Check("shared subscription", OK, f"$share/{group}/... accepted")


def _sys_checks(probe: _Probe) -> list[Check]:
    import time  # noqa: PLC0415

    deadline = time.monotonic() + SYS_WAIT_S
    while time.monotonic() < deadline and not {SYS_VERSION, SYS_DROPPED} <= probe.sys.keys():
        time.sleep(0.05)
    version = probe.sys.get(SYS_VERSION)
    if version is None:
        return [
            Check(
                "broker version",
                WARN,
                "the broker publishes no $SYS/broker/version (not Mosquitto, or $SYS denied)",
                "make sure its queues are sized for an ingest outage (docs/deploy.md)",
            )
        ]
    checks = [Check("broker version", OK, version)]
    dropped = probe.sys.get(SYS_DROPPED)
    if dropped is None:
        # Mosquitto publishes the counter only once it has dropped something
        checks.append(Check("broker drops", OK, "none reported since the broker started"))
    elif float(dropped) > 0:
        checks.append(
            Check("broker drops", FAIL, f"the broker dropped {dropped} message(s)", _QUEUE_FIX)
        )
    else:
        checks.append(Check("broker drops", OK, "none since the broker started"))
    return checks


_QUEUE_FIX: Final = (
    "raise max_queued_messages / max_queued_bytes / max_inflight_messages as in "
    "deploy/mosquitto/streetsense.conf (Mosquitto's defaults drop QoS 1 messages silently)"
)
