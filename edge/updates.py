"""Over-the-air updates inside the running agent: take the fleet's command, fetch and check
the signed bundle, keep it for trial and hand over to the launcher; on trial, prove itself.

1. The fleet's retained command names a release (version, rollout, deadline, the bundle's
   SHA-256). A release already tried in that rollout, the running one, or an older one is
   not fetched.
2. The agent subscribes to the release's retained bundle, checks it (streetsense.release_bundle:
   digest of the command, signature by the city's release key, digests, newer, needs) and
   reports any refusal with its reason.
3. A good bundle is kept in `fleet.releases_dir` as the trial; the agent stops cleanly (the
   buffer closed) with exit code RESTART_FOR_UPDATE, and the launcher starts the new release.
4. The new release confirms itself once a reading it took is confirmed by ingest; otherwise
   the launcher switches back at the deadline (edge.launcher).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

from edge.release import LAUNCHED_ENV, TRIAL_ENV
from edge.release_slots import Outcome, ReleaseSlots, Trial
from streetsense.errors import ConfigError, PayloadError
from streetsense.fleet_protocol import (
    Command,
    FleetTopics,
    UpdateCommand,
    UpdateReport,
    version_key,
)

log = logging.getLogger(__name__)


class Updater:
    """One agent's side of over-the-air updates."""

    def __init__(
        self,
        releases_dir: str,
        release_key_file: str,
        topics: FleetTopics,
        running: str,
        send: Callable[[UpdateReport], bool],
    ) -> None:
        self.slots = ReleaseSlots(releases_dir)
        self.key = Path(release_key_file) if release_key_file else None
        self.topics = topics
        self.running = running
        self.send = send
        self.launched = os.environ.get(LAUNCHED_ENV) == "1"
        self.on_trial = bool(running) and os.environ.get(TRIAL_ENV) == running
        self.wanted: UpdateCommand | None = None
        self.subscribed = ""
        self.restart = False
        self.last = ""  # what `streetsense-edge status` shows of updates
        self._trial_from_seq: int | None = None
        self._trial_rollout = 0
        self._unreported = True  # an outcome may wait on disk from before this start

    def start(self, next_seq: int) -> None:
        """Note where this process's readings begin (a trial proves itself with them)."""
        if self.on_trial:
            self._trial_from_seq = next_seq
            trial = self.slots.read().trial
            self._trial_rollout = trial.rollout if trial and trial.version == self.running else 0
            self.last = f"on trial: release {self.running}, waiting for a confirmed reading"

    def release_topic(self, topic: str) -> bool:
        """Tell whether `topic` is the bundle this agent waits for."""
        return bool(self.subscribed) and topic == self.subscribed

    def on_command(self, payload: bytes) -> str | None:
        """Take the fleet's command; return the release topic to subscribe to, if any."""
        if not payload:
            self.wanted = None
            return None
        try:
            command = Command.decode(payload)
        except PayloadError as exc:
            log.warning("ignoring a malformed fleet command: %s", exc)
            return None
        update = command.update
        if update is None or update.version == self.running:
            self.wanted = None
            return None
        if self.slots.tried(update.version, update.rollout):
            return None  # refused or rolled back already: the fleet knows; never again
        if self.running and version_key(update.version) <= version_key(self.running):
            self._refuse(update, "downgrade", f"release {update.version} is not newer than "
                         f"{self.running}, which runs")  # fmt: skip
            return None
        return self._want(update)

    def _want(self, update: UpdateCommand) -> str | None:
        if self.key is None or not self.launched:
            why = (
                "fleet.release_key_file is not set"
                if self.key is None
                else "the agent was not started by `streetsense-edge run` (the launcher)"
            )
            self._refuse(update, "requirements", f"this device takes no updates: {why}")
            return None
        self.wanted = update
        self.last = f"fetching release {update.version} (rollout {update.rollout})"
        return self.topics.release(update.version)

    def on_release(self, payload: bytes) -> bool:
        """Check the bundle and keep it for trial; True when the agent must restart into it."""
        update = self.wanted
        if update is None or not payload or self.key is None:
            return False
        self.wanted = None
        if hashlib.sha256(payload).hexdigest() != update.sha256:
            self._refuse(update, "mismatch", "the bundle on the release topic is not the one "
                         "the fleet commanded (its SHA-256 differs)")  # fmt: skip
            return False
        # imported here: zip, openssl and their modules cost memory only when a bundle arrives
        from streetsense.release_bundle import BundleRefusedError, check  # noqa: PLC0415

        try:
            manifest, bundle = check(payload, self.key, self.running or "0", installed=installed)
        except BundleRefusedError as exc:
            self._refuse(update, exc.code, exc.reason)
            return False
        except ConfigError as exc:
            self._refuse(update, "requirements", str(exc))
            return False
        if manifest.version != update.version:
            self._refuse(update, "mismatch", f"the bundle is release {manifest.version}, the "
                         f"command named {update.version}")  # fmt: skip
            return False
        self.slots.install(manifest.version, bundle.agent, bundle.config,
                           Trial(update.version, update.rollout, update.deadline_s))  # fmt: skip
        self.send(UpdateReport(update.version, update.rollout, "installing"))
        log.info("release %s checked and kept; restarting into it for a trial of %.0f s",
                 update.version, update.deadline_s)  # fmt: skip
        self.last = f"installing release {update.version}"
        self.restart = True
        return True

    def tick(self, confirmed: Callable[[], int], link_up: bool) -> None:
        """Confirm a trial once a reading this release took is confirmed (`confirmed`: the
        buffer's highest confirmed seq, read only during a trial); report outcomes."""
        start = self._trial_from_seq
        if start is not None and link_up and (acked := confirmed()) >= start:
            self._trial_from_seq = None
            self.slots.confirm(self.running)
            self.slots.record(Outcome(self.running, self._trial_rollout, "updated",
                                      f"reading {acked} confirmed", time.time()))  # fmt: skip
            self.last = f"release {self.running} confirmed itself"
            self._unreported = True
            log.info("release %s proved itself: reading %d confirmed", self.running, acked)
        if link_up and self._unreported:
            self.flush()

    def flush(self) -> None:
        """Report the last outcome once (it waits on disk while the link is down)."""
        outcome = self.slots.outcome()
        if outcome is None:
            self._unreported = False
            return
        report = UpdateReport(outcome.version, outcome.rollout, outcome.state, outcome.reason)
        if self.send(report):
            self.slots.reported()
            self._unreported = False
            if not self.last or outcome.state != "updated":
                self.last = f"release {outcome.version} {outcome.state}: {outcome.reason}"

    def _refuse(self, update: UpdateCommand, code: str, reason: str) -> None:
        text = f"{code}: {reason}"
        log.error("release %s refused: %s", update.version, text)
        self.last = f"release {update.version} refused ({text})"
        self.slots.record(Outcome(update.version, update.rollout, "refused", text[:500],
                                  time.time()))  # fmt: skip
        self._unreported = True
        self.flush()


def installed(name: str) -> str | None:
    """Return the installed version of a bundle's requirement (python, paho-mqtt), or None."""
    if name == "python":
        return platform.python_version()
    from importlib import metadata  # noqa: PLC0415 (heavy; only when a bundle is checked)

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
