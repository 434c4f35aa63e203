"""Batches of device images: one bootstrap secret each, allowed to do nothing but enrol."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from pathlib import Path

from fleet.context import Fleet
from fleet.credentials import FleetError
from fleet.dynsec import batch_acls, batch_role_name
from store import fleet_enrolment
from store.fleet_enrolment import Batch
from streetsense.fleet_protocol import bootstrap_username
from streetsense.ids import describe_bad_id, is_valid_id

log = logging.getLogger(__name__)


def create_batch(fleet: Fleet, batch_id: str, by: str, secret_file: Path, note: str = "") -> Batch:
    """Make a batch: its bootstrap client in the broker, its row, and its secret in a new file
    (mode 600) for the image builder. The secret is shown nowhere else and stored nowhere else
    (the broker keeps a salted hash).

    Raises:
        FleetError: a bad or existing batch id, or the secret file exists already.
    """
    if not is_valid_id(batch_id):
        raise FleetError(describe_bad_id("batch id", batch_id))
    if fleet_enrolment.batch(fleet.conn, batch_id) is not None:
        raise FleetError(f"batch {batch_id} exists already; choose a new id for a new batch")
    try:
        secret_file.touch(mode=0o600, exist_ok=False)
    except FileExistsError:
        raise FleetError(
            f"{secret_file} exists: the new secret is never written over a file"
        ) from None
    except OSError as exc:
        raise FleetError(f"cannot create {secret_file}: {exc}") from exc
    secret_file.chmod(0o600)
    secret = secrets.token_hex(32)
    username = bootstrap_username(batch_id)
    role = batch_role_name(batch_id)
    now = fleet.clock()
    made = Batch(batch_id, username, now,
                 now + timedelta(seconds=fleet.settings.fleet.batch_lifetime_s), None)  # fmt: skip
    try:
        fleet.dynsec.replace_role(role, batch_acls(fleet.fleet_topics, batch_id))
        fleet.dynsec.replace_client(username, secret, [role])
        with fleet.conn.transaction():
            fleet_enrolment.create_batch(fleet.conn, made, by, note)
            details = {"expires_at": made.expires_at.isoformat(), "note": note}
            fleet_enrolment.audit(fleet.conn, now, by, "create batch", batch_id, details)
    except BaseException:
        secret_file.unlink(missing_ok=True)
        raise
    secret_file.write_text(secret + "\n", encoding="utf-8")
    log.info("batch %s created; its bootstrap secret is in %s", batch_id, secret_file)
    return made


def close_batch(fleet: Fleet, batch_id: str, by: str) -> None:
    """Stop a batch from enrolling anything more (its enrolled devices are unaffected).

    Raises:
        FleetError: no such batch.
    """
    if fleet_enrolment.batch(fleet.conn, batch_id) is None:
        raise FleetError(f"batch {batch_id} does not exist")
    fleet.dynsec.disable(bootstrap_username(batch_id))
    now = fleet.clock()
    with fleet.conn.transaction():
        fleet_enrolment.close_batch(fleet.conn, batch_id, now)
        fleet_enrolment.audit(fleet.conn, now, by, "close batch", batch_id)


def close_expired(fleet: Fleet) -> list[str]:
    """Close every batch past its expiry; return their ids."""
    closed = []
    for batch in fleet_enrolment.expired_batches(fleet.conn, fleet.clock()):
        close_batch(fleet, batch.batch_id, "fleet")
        log.info("batch %s expired: its bootstrap secret enrols nothing more", batch.batch_id)
        closed.append(batch.batch_id)
    return closed
