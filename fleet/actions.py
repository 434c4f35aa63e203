"""Operators' decisions (approve, refuse, revoke, rotate, reset), from the CLI or queued by the
dashboard, carried out in one place and written to the audit log with who and when."""

from __future__ import annotations

import logging
from typing import Any

from fleet.allowlist import placement_from_args
from fleet.context import Fleet
from fleet.credentials import FleetError, request_rotation, revoke
from fleet.dynsec import device_role_name
from fleet.rollouts import stop_rollout
from store import fleet_devices, fleet_enrolment
from store.fleet_devices import QueuedAction
from streetsense.errors import StreetsenseError

log = logging.getLogger(__name__)


def run_queued(fleet: Fleet, action_id: int | None = None) -> QueuedAction | None:
    """Carry out the oldest queued action (or this one); return it, or None when none waits."""
    with fleet.conn.transaction():
        action = fleet_devices.claim_action(fleet.conn, action_id)
        if action is None:
            return None
        try:
            outcome = carry_out(fleet, action.action, action.subject, action.requested_by,
                                action.args)  # fmt: skip
            ok = True
        except StreetsenseError as exc:
            outcome, ok = str(exc), False
            log.warning("%s %s by %s failed: %s", action.action, action.subject,
                        action.requested_by, outcome)  # fmt: skip
        fleet_devices.finish_action(fleet.conn, action.action_id, ok, outcome, fleet.clock())
    return action


def carry_out(fleet: Fleet, action: str, subject: str, by: str, args: dict[str, Any]) -> str:
    """Do one decision now; return what was done.

    Raises:
        FleetError: it cannot be done (unknown serial or device, wrong state); says why.
    """
    handler = {"approve": _approve, "refuse": _refuse, "revoke": _revoke, "rotate": _rotate,
               "reset": _reset, "stop-rollout": _stop_rollout}.get(action)  # fmt: skip
    if handler is None:
        raise FleetError(f"unknown action {action!r}")
    return handler(fleet, subject, by, args)


def _approve(fleet: Fleet, serial: str, by: str, args: dict[str, Any]) -> str:
    now = fleet.clock()
    known = fleet_enrolment.enrolment(fleet.conn, serial)
    if known is None:
        raise FleetError(f"serial {serial} never asked to enrol: nothing to approve")
    if known.state not in ("pending", "refused"):
        raise FleetError(f"serial {serial} is {known.state}: nothing to approve")
    place = fleet_enrolment.allowed(fleet.conn, serial)
    if args:
        place = placement_from_args(serial, args)
    if place is None:
        raise FleetError(
            f"serial {serial} is not on the allow-list: say where it goes (device id, site, "
            "kind and its lot or segment)"
        )
    problems = fleet_enrolment.placement_problems(fleet.conn, [place])
    if problems:
        raise FleetError("; ".join(problems))
    fleet_enrolment.save_allowlist(fleet.conn, [place], by, f"approved by {by}", now)
    fleet_enrolment.decide(fleet.conn, serial, "approved", by, now)
    fleet_enrolment.audit(fleet.conn, now, by, "approve", serial,
                          {"device": place.device_id, "site": place.site_id})  # fmt: skip
    return (
        f"serial {serial} approved as {place.site_id}/{place.device_id}: it gets its "
        "credentials on its next request"
    )


def _refuse(fleet: Fleet, serial: str, by: str, args: dict[str, Any]) -> str:
    reason = str(args.get("reason") or "refused by an operator")[:500]
    now = fleet.clock()
    known = fleet_enrolment.enrolment(fleet.conn, serial)
    if known is None or known.state not in ("pending", "approved"):
        state = "never asked" if known is None else known.state
        raise FleetError(f"serial {serial} is {state}: only a pending serial can be refused")
    fleet_enrolment.decide(fleet.conn, serial, "refused", by, now, reason)
    fleet_enrolment.audit(fleet.conn, now, by, "refuse", serial, {"reason": reason})
    return f"serial {serial} refused"


def _revoke(fleet: Fleet, device_id: str, by: str, args: dict[str, Any]) -> str:
    reason = str(args.get("reason") or "revoked by an operator")[:500]
    device = fleet_devices.device(fleet.conn, device_id)
    if device is None:
        raise FleetError(f"device {device_id} is not an enrolled device")
    if device.revoked_at is not None:
        raise FleetError(f"device {device_id} was revoked already")
    revoke(fleet, device, by, reason)
    return f"device {device_id} revoked: the broker refuses it; its confirmed data stay"


def _rotate(fleet: Fleet, device_id: str, by: str, args: dict[str, Any]) -> str:
    del args
    device = fleet_devices.device(fleet.conn, device_id)
    if device is None or device.revoked_at is not None:
        raise FleetError(f"device {device_id} is not an enrolled, unrevoked device")
    request_rotation(fleet, device, by)
    return f"device {device_id} asked to replace its password (generation {device.generation})"


def _reset(fleet: Fleet, serial: str, by: str, args: dict[str, Any]) -> str:
    del args
    known = fleet_enrolment.enrolment(fleet.conn, serial)
    if known is None:
        raise FleetError(f"serial {serial} never asked to enrol: nothing to reset")
    if known.state == "enrolled":
        raise FleetError(
            f"serial {serial} is enrolled as {known.device_id}: revoke the device first"
        )
    now = fleet.clock()
    if known.device_id is not None:
        device = fleet_devices.device(fleet.conn, known.device_id)
        if device is not None:
            fleet.dynsec.delete_client(device.username)
            fleet.dynsec.delete_role(device_role_name(device.device_id))
            fleet_devices.forget_device(fleet.conn, device.device_id)
    fleet_enrolment.forget_enrolment(fleet.conn, serial)
    fleet_enrolment.audit(fleet.conn, now, by, "reset", serial,
                          {"was": known.state, "device": known.device_id})  # fmt: skip
    return f"serial {serial} reset: it may enrol again"


def _stop_rollout(fleet: Fleet, subject: str, by: str, args: dict[str, Any]) -> str:
    del subject  # the rollout under way
    reason = str(args.get("reason") or f"stopped by {by}")[:500]
    stopped = stop_rollout(fleet, by, reason)
    return f"rollout {stopped.rollout_id} of {stopped.version} stopped"
