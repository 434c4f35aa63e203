"""Abuse of the fleet's enrolment and credentials, on the real broker, service and database.

The attacker holds a batch's bootstrap secret (it is on every device image of the batch) or an
enrolled device's credentials (a stolen device), and tries to get more than that.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import psycopg
import pytest

from fleet.context import Fleet
from harness.dynsec_broker import MONITOR, DynsecBroker, RawClient
from harness.edge import wait_for
from harness.fleet_agents import SITE, allowlist_csv
from harness.ingest import ingest_thread
from ingest.service import IngestService
from streetsense.config import Settings, with_overrides
from streetsense.fleet_protocol import EnrolReply, EnrolRequest, Report, bootstrap_username
from streetsense.readings import encode_readings
from streetsense.topics import Channel
from tests.fleet.conftest import BATCH, fleet_cli, needs_dynsec, serial_of

pytestmark = needs_dynsec
NOT_AUTHORISED = 0x87


def _bootstrap(broker: DynsecBroker, secret: Path) -> RawClient:
    client = RawClient(broker, bootstrap_username(BATCH), secret.read_text().strip())
    assert client.connected()
    return client


def _enrol(broker: DynsecBroker, secret: Path, serial: str, password: str) -> EnrolReply | None:
    """Ask to enrol by hand, as an agent does; return the answer to this request (None when
    none came within 10 s: the service may drop requests over its rate)."""
    client = _bootstrap(broker, secret)
    topics = broker.fleet_topics
    try:
        assert not client.subscribe(topics.enrol_reply(BATCH, serial)).is_failure
        nonce = secrets.token_hex(16)
        request = EnrolRequest(serial, BATCH, password, nonce, {"model": "attacker"})
        client.publish(topics.enrol(BATCH, serial), request.encode())
        while arrived := client.received(wait_s=10):
            for _topic, payload in arrived:
                reply = EnrolReply.decode(payload)
                if reply.nonce == nonce:
                    return reply
        return None
    finally:
        client.close()


def _lamp(device: str) -> bytes:
    from datetime import UTC, datetime

    from streetsense.readings import Reading

    return encode_readings([Reading(device, "lamp_power", datetime.now(UTC), 42.0, seq=1)])


@pytest.fixture
def enrolled(
    fleet: Fleet, fleet_settings: Settings, dynsec: DynsecBroker, batch_secret: Path, tmp_path: Path
) -> dict[str, str]:
    """Enrol two devices by hand; return device id -> its password."""
    del fleet
    serials = {serial_of(1): "dev-a", serial_of(2): "dev-b"}
    assert (
        fleet_cli(
            fleet_settings, "allow", "load", str(allowlist_csv(tmp_path / "allow.csv", serials))
        ).returncode
        == 0
    )
    passwords = {}
    for serial, device in serials.items():
        password = secrets.token_hex(32)
        reply = _enrol(dynsec, batch_secret, serial, password)
        assert reply is not None and (reply.state, reply.device) == ("approved", device)
        passwords[device] = password
    passwords.update({f"serial:{d}": s for s, d in serials.items()})
    return passwords


def test_bootstrap_credentials_cannot_publish_readings_or_read_others_requests(
    enrolled: dict[str, str],
    dynsec: DynsecBroker,
    batch_secret: Path,
    ingest: IngestService,
    fleet_settings: Settings,
) -> None:
    del enrolled, ingest
    client = _bootstrap(dynsec, batch_secret)
    topics = dynsec.topics
    try:
        for device in ("dev-a", "invented"):
            for channel in (Channel.LIGHT, Channel.STATUS, Channel.PARKING):
                code = client.publish(topics.device(SITE, device, channel), _lamp(device))
                assert code.value == NOT_AUTHORISED, (device, channel)
            # nor confirm anything, nor configure anyone
            for channel in (Channel.ACK, Channel.CONFIG):
                assert (
                    client.publish(topics.device(SITE, device, channel), b"{}").value
                    == NOT_AUTHORISED
                )
        # other devices' requests carry their passwords: never readable
        fleet = dynsec.fleet_topics
        assert client.subscribe(fleet.enrol_requests(BATCH)).is_failure
        assert client.subscribe(f"{fleet.root}/#").is_failure
        assert client.subscribe(f"{topics.prefix}/#").is_failure
        assert client.subscribe(fleet.device("dev-a", "provision")).is_failure
        # nor forge the fleet's answers, nor another batch's requests
        forged = EnrolReply("approved", "0" * 32, device="dev-a", site=SITE, username="dev-a")
        assert (
            client.publish(fleet.enrol_reply(BATCH, "SN-9"), forged.encode()).value
            == NOT_AUTHORISED
        )
        assert client.publish(fleet.enrol("other-batch", "SN-9"), b"{}").value == NOT_AUTHORISED
    finally:
        client.close()
    with psycopg.connect(fleet_settings.database.url) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_a_replayed_enrolment_gets_nothing_and_is_flagged(
    enrolled: dict[str, str],
    dynsec: DynsecBroker,
    batch_secret: Path,
    fleet_settings: Settings,
) -> None:
    serial = enrolled["serial:dev-a"]
    intruder = secrets.token_hex(32)
    reply = _enrol(dynsec, batch_secret, serial, intruder)
    assert reply is not None and reply.state == "refused" and "already claimed" in reply.reason
    assert not reply.device
    # the intruder's password opens nothing; the real device's still does
    as_intruder = RawClient(dynsec, "dev-a", intruder, client_id="dev-a")
    assert not as_intruder.connected()
    as_intruder.close()
    real = RawClient(dynsec, "dev-a", enrolled["dev-a"], client_id="dev-a")
    assert real.connected()
    real.close()
    with psycopg.connect(fleet_settings.database.url) as conn:
        row = conn.execute(
            "SELECT state, conflicts FROM fleet_enrolments WHERE serial = %s", (serial,)
        ).fetchone()
        flagged = conn.execute(
            "SELECT count(*) FROM fleet_audit WHERE action = 'conflict' AND subject = %s", (serial,)
        ).fetchone()
    assert row == ("enrolled", 1) and flagged == (1,)


def test_a_device_cannot_touch_another_devices_credentials(
    enrolled: dict[str, str],
    dynsec: DynsecBroker,
    fleet_settings: Settings,
) -> None:
    fleet = dynsec.fleet_topics
    client = RawClient(dynsec, "dev-a", enrolled["dev-a"], client_id="dev-a")
    assert client.connected()
    try:
        rotate_b = Report("0.1.0", 1, rotate_password=secrets.token_hex(32))
        assert (
            client.publish(fleet.device("dev-b", "report"), rotate_b.encode()).value
            == NOT_AUTHORISED
        )
        assert client.subscribe(fleet.device("dev-b", "provision")).is_failure
        assert client.subscribe(fleet.device("dev-b", "command")).is_failure
        topics = dynsec.topics
        assert (
            client.publish(topics.device(SITE, "dev-b", Channel.LIGHT), _lamp("dev-b")).value
            == NOT_AUTHORISED
        )
        assert client.subscribe(topics.device(SITE, "dev-b", Channel.ACK)).is_failure
        # its own: allowed
        assert not client.subscribe(fleet.device("dev-a", "provision")).is_failure
    finally:
        client.close()
    other = RawClient(dynsec, "dev-b", enrolled["dev-b"], client_id="dev-b")
    assert other.connected()  # its password was not changed
    other.close()
    # a device's credentials are bound to its client id: no one takes over its session
    wrong_id = RawClient(dynsec, "dev-a", enrolled["dev-a"], client_id="not-dev-a")
    assert not wrong_id.connected()
    wrong_id.close()


def test_malformed_oversize_and_flooding_requests_are_refused_and_the_service_goes_on(
    fleet: Fleet,
    fleet_settings: Settings,
    dynsec: DynsecBroker,
    batch_secret: Path,
    tmp_path: Path,
) -> None:
    del fleet
    client = _bootstrap(dynsec, batch_secret)
    topics = dynsec.fleet_topics
    serial = serial_of(5)
    try:
        for payload in (
            b"",
            b"not json",
            b"[]",
            b"{" * 100_000,
            json.dumps(
                {
                    "serial": serial,
                    "batch": BATCH,
                    "password": "x'; DROP TABLE devices; --",
                    "nonce": "0" * 32,
                }
            ).encode(),
            json.dumps(
                {
                    "serial": serial,
                    "batch": BATCH,
                    "password": "a" * 64,
                    "nonce": "0" * 32,
                    "hardware": {"k" * 40: "v"},
                }
            ).encode(),
        ):
            client.publish(topics.enrol(BATCH, serial), payload)
        # a flood of well-formed requests for invented serials: bounded by the rate limit
        for n in range(300):
            request = EnrolRequest(
                f"FLOOD-{n}", BATCH, secrets.token_hex(32), secrets.token_hex(16)
            )
            client.client.publish(topics.enrol(BATCH, f"FLOOD-{n}"), request.encode(), qos=0)
    finally:
        client.close()
    # the service still answers a genuine device at once
    allow = allowlist_csv(tmp_path / "allow.csv", {serial: "gw-after"})
    assert fleet_cli(fleet_settings, "allow", "load", str(allow)).returncode == 0
    password = secrets.token_hex(32)
    reply = wait_for(
        lambda: _enrol(dynsec, batch_secret, serial, password),
        60,
        "the service to answer after the flood",
    )
    assert (reply.state, reply.device) == ("approved", "gw-after")
    with psycopg.connect(fleet_settings.database.url) as conn:
        pending = conn.execute(
            "SELECT count(*) FROM fleet_enrolments WHERE state = 'pending'"
        ).fetchone()
        devices = conn.execute("SELECT count(*) FROM devices").fetchone()
    # the rate limit (fleet.enrol_rate_per_s, burst 10x) took a few of the 300 at most
    assert pending is not None and pending[0] < 150
    assert devices == (1,)  # nothing registered but the allow-listed device


def test_a_revoked_devices_messages_are_refused_with_the_reason_even_past_the_broker(
    enrolled: dict[str, str],
    dynsec: DynsecBroker,
    settings: Settings,
    fleet_settings: Settings,
) -> None:
    """A broker without dynamic security would let a revoked device in: ingest refuses its
    messages with who revoked it and why, and auto-registration does not bring it back."""
    revoked = fleet_cli(fleet_settings, "revoke", "dev-a", "--reason", "stolen from pole 3")
    assert revoked.returncode == 0, revoked.stderr
    ingest_settings = with_overrides(
        dynsec.settings(settings, "ingest-1"), ingest={"metrics_port": 0, "auto_register": True}
    )
    monitor = RawClient(dynsec, MONITOR, dynsec.passwords[MONITOR])
    assert monitor.connected()
    url = fleet_settings.database.url
    with ingest_thread(ingest_settings, client_id="ingest-1"):
        try:
            topic = dynsec.topics.device(SITE, "dev-a", Channel.LIGHT)
            assert not monitor.publish(topic, _lamp("dev-a")).is_failure
        finally:
            monitor.close()

        def refusal() -> tuple[str, str] | None:
            with psycopg.connect(url) as conn:
                return conn.execute(
                    "SELECT reason_code, reason FROM rejected_messages WHERE device_id = 'dev-a'"
                ).fetchone()

        code, reason = wait_for(refusal, 30, "ingest to refuse the revoked device's message")
    assert code == "revoked" and "by tester" in reason and "stolen from pole 3" in reason
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
        active = conn.execute("SELECT active FROM devices WHERE device_id = 'dev-a'").fetchone()
    assert active == (False,)
