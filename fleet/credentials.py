"""A device's own credentials: issued at enrolment, rotated before expiry, revoked at once.

Passwords are made on the device and reach the fleet service only (never ingest, never another
device); the broker keeps a salted hash of them (dynamic security). The database holds no
password, only the life of each generation.
"""

from __future__ import annotations

import logging
from datetime import datetime

from fleet.context import Fleet
from fleet.dynsec import device_acls, device_role_name
from store import fleet_devices, fleet_enrolment
from store.fleet_devices import FleetDevice
from store.fleet_enrolment import Placement
from streetsense.confirm import device_key, key_text
from streetsense.errors import StreetsenseError
from streetsense.fleet_protocol import Provision

log = logging.getLogger(__name__)


class FleetError(StreetsenseError):
    """An operation on the fleet cannot be done; the message says why and what to do."""


def issue(
    fleet: Fleet, place: Placement, batch_id: str, password: str, hardware: dict[str, str]
) -> None:
    """Create the device's role and client in the broker, then register it, in the caller's
    transaction. Re-running after a crash replaces what the broker holds: the device's request
    carries the same password again.

    Raises:
        FleetError: the device id is a broker client that is no device's (a service user).
    """
    role = device_role_name(place.device_id)
    existing = fleet.dynsec.client(place.device_id)
    if existing is not None:
        roles = {r.get("rolename") for r in existing.get("roles", [])}
        if roles != {role}:
            raise FleetError(
                f"device id {place.device_id!r} is a broker client with roles {sorted(roles)}, "
                "not a device: choose another device id in the allow-list"
            )
    acls = device_acls(fleet.topics, fleet.fleet_topics, place.site_id, place.device_id)
    fleet.dynsec.replace_role(role, acls)
    fleet.dynsec.replace_client(place.device_id, password, [role], client_id=place.device_id)
    now = fleet.clock()
    rotate_after, expires_at = fleet.lifetime(now)
    fleet_enrolment.register(
        fleet.conn, place, batch_id, place.device_id, hardware, now, rotate_after, expires_at
    )


def provision(fleet: Fleet, device: FleetDevice, *, with_key: bool) -> None:
    """Tell a device its identity and its password's life (and its confirmation key)."""
    key = key_text(device_key(fleet.secret(), device.device_id)) if with_key else ""
    message = Provision(
        device=device.device_id,
        site=device.site_id,
        generation=device.generation,
        expires_at_ms=_ms(device.expires_at),
        rotate_after_ms=_ms(device.rotate_after),
        confirm_key=key,
    )
    fleet.link.publish(fleet.fleet_topics.device(device.device_id, "provision"), message.encode())


def rotate(fleet: Fleet, device: FleetDevice, password: str, generation: int) -> FleetDevice:
    """Replace the password of `generation` with one the device chose (the broker then drops
    its session; it reconnects with the new one). Returns the device as it is now.

    A request for an older generation was done already (a duplicate): nothing changes.
    """
    if generation != device.generation or device.revoked_at is not None:
        return device
    now = fleet.clock()
    rotate_after, expires_at = fleet.lifetime(now)
    with fleet.conn.transaction():
        locked = fleet_devices.device(fleet.conn, device.device_id, lock=True)
        if locked is None or locked.generation != generation:
            return locked or device
        fleet.dynsec.set_password(device.username, password)
        fleet_devices.renew(
            fleet.conn, device.device_id, generation + 1, now, rotate_after, expires_at
        )
        fleet_enrolment.audit(fleet.conn, now, "device", "rotate", device.device_id,
                              {"generation": generation + 1,
                               "expires_at": expires_at.isoformat()})  # fmt: skip
    log.info("device %s: password generation %d issued", device.device_id, generation + 1)
    renewed = fleet_devices.device(fleet.conn, device.device_id)
    assert renewed is not None
    return renewed


def request_rotation(fleet: Fleet, device: FleetDevice, by: str) -> None:
    """Ask a device to replace its password now (it does on its next provisioning)."""
    now = fleet.clock()
    with fleet.conn.transaction():
        fleet_devices.renew(fleet.conn, device.device_id, device.generation, device.issued_at,
                            now, device.expires_at)  # fmt: skip
        fleet_enrolment.audit(fleet.conn, now, by, "request rotation", device.device_id,
                              {"generation": device.generation})  # fmt: skip
    renewed = fleet_devices.device(fleet.conn, device.device_id)
    assert renewed is not None
    provision(fleet, renewed, with_key=False)


def revoke(fleet: Fleet, device: FleetDevice, by: str, reason: str) -> None:
    """Refuse a device from now on: the broker drops it at once and refuses it after; its
    confirmed data stay. Its serial cannot enrol again until an operator resets it."""
    now = fleet.clock()
    fleet.dynsec.disable(device.username)
    fleet.dynsec.delete_role(device_role_name(device.device_id))
    fleet.link.publish(fleet.fleet_topics.device(device.device_id, "command"), b"", retain=True)
    with fleet.conn.transaction():
        fleet_devices.revoke(fleet.conn, device.device_id, by, reason, now)
        fleet_enrolment.audit(fleet.conn, now, by, "revoke", device.device_id,
                              {"reason": reason, "serial": device.serial})  # fmt: skip
    log.warning("device %s revoked by %s: %s", device.device_id, by, reason)


def expire(fleet: Fleet, now: datetime) -> list[str]:
    """Disable in the broker every device whose password expired unrotated; return them."""
    done = []
    for device_id in fleet_devices.expiring(fleet.conn, now):
        device = fleet_devices.device(fleet.conn, device_id)
        if device is None:
            continue
        fleet.dynsec.disable(device.username)
        with fleet.conn.transaction():
            fleet_devices.mark_expired(fleet.conn, device_id, now)
            fleet_enrolment.audit(fleet.conn, now, "fleet", "expire", device_id,
                                  {"expires_at": device.expires_at.isoformat()})  # fmt: skip
        log.warning(
            "device %s: password expired at %s without rotation; the broker refuses it until "
            "an operator resets its serial %s",
            device_id,
            device.expires_at.isoformat(),
            device.serial,
        )
        done.append(device_id)
    return done


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
