"""Staged rollouts of a signed release: a canary share, then waves, each started only when the
previous one is updated and healthy; a failed device stops the rollout by itself.

The service's round (`Rollouts.step`) commands the current wave's devices (a retained command
on each device's command topic: a device offline now learns it when back), follows their
update reports, and fails a device that says nothing within the deadline. Once every device
of a wave is updated it waits `soak_s`, then checks the wave's health from the devices'
heartbeats (device_state): online, heard within the soak, buffer not grown since the command.
More than `max_failures` failed devices, or an unhealthy wave, end the rollout as failed;
devices not yet updated get their command withdrawn.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Final

from fleet.context import Fleet
from fleet.credentials import FleetError
from store import fleet_enrolment, fleet_rollouts
from store.fleet_rollouts import FAILED_STATES, OPEN_STATES, Release, Rollout, WaveDevice
from streetsense.fleet_protocol import Command, UpdateCommand, UpdateReport, version_key
from streetsense.release_bundle import Manifest, sha256

log = logging.getLogger(__name__)
SERVICE: Final = "fleet-service"
REPORT_GRACE_S: Final = 30.0  # a device has this long past the deadline to say how it went
BUFFER_SLACK: Final = 200.0  # readings a healthy device may hold in flight
SILENT_S: Final = 180.0  # three default heartbeats (status.heartbeat_s = 60) without a word
_REPORTED: Final = {"installing": "installing", "updated": "updated", "refused": "refused",
                    "rolled_back": "rolled_back"}  # fmt: skip


def publish_release(fleet: Fleet, data: bytes, manifest: Manifest, by: str) -> Release:
    """Publish a checked bundle, retained on its release topic, and record it (audited)."""
    release = Release(manifest.version, sha256(data), len(data))
    fleet.link.publish(fleet.fleet_topics.release(manifest.version), data, retain=True)
    now = fleet.clock()
    with fleet.conn.transaction():
        fleet_rollouts.save_release(fleet.conn, release, _manifest_json(manifest), by, now)
        fleet_enrolment.audit(fleet.conn, now, by, "release-publish", manifest.version,
                              {"sha256": release.sha256, "bytes": release.bytes})  # fmt: skip
    return release


def _manifest_json(manifest: Manifest) -> dict[str, object]:
    return {"version": manifest.version, "agent_sha256": manifest.agent_sha256,
            "requires": dict(manifest.requires), "built_with": dict(manifest.built_with),
            "built_at": manifest.built_at, "notes": manifest.notes}  # fmt: skip


Members = list[tuple[str, str]]  # (device id, the version it runs)


def plan_waves(devices: Members, canary_share: float, waves: int) -> list[Members]:
    """Split devices into the canary wave (at least one) and `waves` waves of equal size."""
    if not devices:
        return []
    canary = max(1, math.ceil(len(devices) * canary_share))
    rest = devices[canary:]
    size = math.ceil(len(rest) / waves) if rest else 0
    planned = [devices[:canary]]
    planned += [rest[i : i + size] for i in range(0, len(rest), size)] if size else []
    return planned


def start_rollout(fleet: Fleet, plan: Rollout) -> tuple[int, int]:
    """Start a rollout of a published release; return (its id, devices in it).

    Raises:
        FleetError: the release is not published, a rollout runs already, or no device needs it.
    """
    conn = fleet.conn
    with conn.transaction():
        if fleet_rollouts.release(conn, plan.version) is None:
            raise FleetError(
                f"release {plan.version} is not published: `streetsense fleet release publish`"
            )
        running = fleet_rollouts.running_rollout(conn, lock=True)
        if running is not None:
            raise FleetError(
                f"rollout {running.rollout_id} of {running.version} is under way: stop it first"
            )
        target = version_key(plan.version)
        devices = [(device, version) for device, version in
                   fleet_rollouts.rollout_candidates(conn, plan.site_id)
                   if not version or version_key(version) < target]  # fmt: skip
        if not devices:
            raise FleetError(f"no enrolled device runs a release older than {plan.version}")
        waves = plan_waves(devices, plan.canary_share, plan.waves)
        rollout_id = fleet_rollouts.create_rollout(conn, plan, waves)
        fleet_enrolment.audit(conn, plan.started_at, plan.started_by, "rollout-start",
                              plan.version, {"rollout": rollout_id, "devices": len(devices),
                                             "waves": [len(w) for w in waves]})  # fmt: skip
    return rollout_id, len(devices)


def stop_rollout(fleet: Fleet, by: str, reason: str) -> Rollout:
    """Stop the rollout under way (audited); devices not yet updated keep what they run.

    Raises:
        FleetError: no rollout is under way.
    """
    with fleet.conn.transaction():
        running = fleet_rollouts.running_rollout(fleet.conn, lock=True)
        if running is None:
            raise FleetError("no rollout is under way")
        _end(fleet, running, "stopped", by, reason or f"stopped by {by}")
    return running


def _end(fleet: Fleet, rollout: Rollout, state: str, by: str, reason: str) -> None:
    now = fleet.clock()
    withdraw = fleet_rollouts.end_rollout(fleet.conn, rollout.rollout_id, state, by, reason, now)
    for device in withdraw:
        # an empty retained message removes the command: nobody installs it later
        fleet.link.publish(fleet.fleet_topics.device(device, "command"), b"", retain=True)
    fleet_enrolment.audit(fleet.conn, now, by, f"rollout-{state}", rollout.version,
                          {"rollout": rollout.rollout_id, "reason": reason[:500]})  # fmt: skip
    log.warning("rollout %d of %s %s: %s", rollout.rollout_id, rollout.version, state, reason)


class Rollouts:
    """Drive the rollout under way, one service round at a time."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def on_update(self, device_id: str, update: UpdateReport) -> None:
        """Take a device's report of what became of a release."""
        state = _REPORTED.get(update.state)
        if update.rollout <= 0 and update.state == "rolled_back":
            # a proven release that kept crashing, left for the previous one by the launcher
            fleet_enrolment.audit(self.fleet.conn, self.fleet.clock(), device_id,
                                  "release-fallback", device_id,
                                  {"version": update.version, "reason": update.reason})  # fmt: skip
            log.warning("device %s left release %s: %s", device_id, update.version, update.reason)
            return
        if state is None or update.rollout <= 0:
            return
        changed = fleet_rollouts.set_device_state(
            self.fleet.conn, update.rollout, device_id, state, update.reason, self.fleet.clock()
        )
        if changed and state in FAILED_STATES:
            log.warning("device %s: release %s %s: %s", device_id, update.version, state,
                        update.reason)  # fmt: skip

    def step(self) -> None:
        """Advance the rollout under way by what is known now."""
        fleet = self.fleet
        with fleet.conn.transaction():
            rollout = fleet_rollouts.running_rollout(fleet.conn, lock=True)
            if rollout is None:
                return
            now = fleet.clock()
            devices = fleet_rollouts.wave_devices(fleet.conn, rollout.rollout_id, rollout.wave)
            self._command(rollout, devices, now)
            self._time_out(rollout, devices, now)
            failed = fleet_rollouts.failures(fleet.conn, rollout.rollout_id)
            if len(failed) > rollout.max_failures:
                device, state, reason = failed[0]
                _end(
                    fleet,
                    rollout,
                    "failed",
                    SERVICE,
                    f"{len(failed)} device(s) failed; first {device}: {state}: {reason}",
                )
                return
            self._gate(rollout, devices, now)

    def _command(self, rollout: Rollout, devices: list[WaveDevice], now: datetime) -> None:
        release = fleet_rollouts.release(self.fleet.conn, rollout.version)
        assert release is not None  # a rollout references its release
        command = Command(UpdateCommand(rollout.version, rollout.rollout_id, rollout.deadline_s,
                                        release.sha256)).encode()  # fmt: skip
        for device in devices:
            if device.state != "waiting":
                continue
            topic = self.fleet.fleet_topics.device(device.device_id, "command")
            self.fleet.link.publish(topic, command, retain=True)
            fleet_rollouts.mark_commanded(self.fleet.conn, rollout.rollout_id, device.device_id,
                                          device.buffer_depth, now)  # fmt: skip

    def _time_out(self, rollout: Rollout, devices: list[WaveDevice], now: datetime) -> None:
        limit = timedelta(seconds=rollout.deadline_s + REPORT_GRACE_S)
        for device in devices:
            late = device.commanded_at is not None and now - device.commanded_at > limit
            if device.state in OPEN_STATES and late:
                fleet_rollouts.set_device_state(
                    self.fleet.conn, rollout.rollout_id, device.device_id, "failed",
                    f"no update report within {limit.total_seconds():.0f} s of the command", now,
                )  # fmt: skip

    def _gate(self, rollout: Rollout, devices: list[WaveDevice], now: datetime) -> None:
        conn = self.fleet.conn
        if any(device.state != "updated" for device in devices):
            return
        if rollout.wave_updated_at is None:
            fleet_rollouts.wave_updated(conn, rollout.rollout_id, now)
            return
        if now - rollout.wave_updated_at < timedelta(seconds=rollout.soak_s):
            return
        sick = [problem for device in devices if (problem := _unhealthy(device, rollout, now))]
        if sick:
            _end(
                self.fleet,
                rollout,
                "failed",
                SERVICE,
                f"wave {rollout.wave} unhealthy after its soak: " + "; ".join(sick[:5]),
            )
            return
        if rollout.wave + 1 >= fleet_rollouts.wave_count(conn, rollout.rollout_id):
            _end(self.fleet, rollout, "done", SERVICE, "every wave updated and healthy")
            return
        fleet_rollouts.next_wave(conn, rollout.rollout_id, rollout.wave + 1)
        fleet_enrolment.audit(
            conn,
            now,
            SERVICE,
            "rollout-wave",
            rollout.version,
            {"rollout": rollout.rollout_id, "wave": rollout.wave + 1},
        )
        log.info("rollout %d of %s: wave %d healthy, wave %d starts", rollout.rollout_id,
                 rollout.version, rollout.wave, rollout.wave + 1)  # fmt: skip


def _unhealthy(device: WaveDevice, rollout: Rollout, now: datetime) -> str:
    """Return why a device of a soaked wave is not healthy, or ''."""
    if device.version != rollout.version:
        return f"{device.device_id} runs {device.version or 'nothing known'}"
    if not device.online:
        return f"{device.device_id} offline"
    heard = device.status_at
    if heard is None or now - heard > timedelta(seconds=max(rollout.soak_s, SILENT_S)):
        return f"{device.device_id} silent since {heard}"
    before = device.buffer_at_command or 0.0
    if device.buffer_depth is not None and device.buffer_depth > before + BUFFER_SLACK:
        return f"{device.device_id} buffer grew from {before:.0f} to {device.buffer_depth:.0f}"
    return ""
