"""The launcher: runs the agent's current release as a child and switches back by itself when
a new release fails its trial (A/B with rollback).

It is the factory-installed code (standard library only, a few MB), so a broken release cannot
break it. A child that exits with RESTART_FOR_UPDATE has kept a checked release for trial;
the launcher starts it with a deadline. The trial ends well when the new release writes its
confirmation (a reading it took was confirmed by ingest), and badly when it exits first, or the
deadline passes (it is stopped), or the device restarts during the trial: then the launcher
records why and starts the previous release again, which reports the failure. A release that
proved itself but later crashes 3 times within 10 minutes is left for the previous one too.
The buffer is one SQLite file both releases open in turn, never at once: a reading left in it
by either is sent by the other, once.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from typing import Final

from edge.release import LAUNCHED_ENV, RESTART_FOR_UPDATE, TRIAL_ENV
from edge.release_slots import ReleaseSlots, Slots, Trial
from streetsense.lifecycle import PARENT_ENV, StopSignal

log = logging.getLogger(__name__)
POLL_S: Final = 0.2
STOP_WAIT_S: Final = 20.0
# A release that proved itself and later keeps crashing is left for the one before it.
CRASHES_BEFORE_FALLBACK: Final = 3
CRASH_WINDOW_S: Final = 600.0
CRASH_PAUSE_S: Final = 5.0


class Launcher:
    """Run the current release; try a new one within its deadline, else switch back."""

    def __init__(
        self,
        config_path: str,
        releases_dir: str,
        stop: StopSignal,
        log_level: str = "INFO",
    ) -> None:
        self.config_path = config_path
        self.slots = ReleaseSlots(releases_dir)
        self.stop = stop
        self.log_level = log_level

    def run(self) -> int:
        """Run until stopped; return the exit code (a current release's crash is passed on)."""
        self.slots.prepare()
        while not self.stop.stopping:
            slots = self.slots.read()
            code = self._try(slots, slots.trial) if slots.trial else self._run(slots.current)
            if code is None:
                return 0
            if code == RESTART_FOR_UPDATE:
                continue
            current = self.slots.read().current  # a trial may have become current meanwhile
            log.error("release %s stopped with exit code %d", _name(current), code)
            if not current:
                return code  # the factory release: systemd restarts the launcher
            self._crashed(current, code)
        return 0

    def _crashed(self, version: str, code: int) -> None:
        """Restart a crashed release after a pause; after CRASHES_BEFORE_FALLBACK crashes
        within CRASH_WINDOW_S, go back to the previous release for good."""
        crashes = self.slots.note_crash(version, time.time(), CRASH_WINDOW_S)
        if crashes >= CRASHES_BEFORE_FALLBACK:
            reason = (f"release {version} crashed {crashes} times within "
                      f"{CRASH_WINDOW_S / 60:.0f} min (last exit code {code})")  # fmt: skip
            back = self.slots.fall_back(reason)
            log.error("switching back to release %s: %s", _name(back), reason)
            return
        self.stop.wait(CRASH_PAUSE_S)

    def _run(self, version: str) -> int | None:
        child = self._start(version, trial=False)
        return self._watch(child)

    def _try(self, slots: Slots, trial: Trial) -> int | None:
        version = trial.version
        if trial.starts >= 1:
            self._roll_back(f"the device restarted during the trial of release {version}")
            return RESTART_FOR_UPDATE
        if not self.slots.zipapp(version).is_file():
            self._roll_back(f"release {version} is not in {self.slots.folder}")
            return RESTART_FOR_UPDATE
        deadline_at = time.time() + trial.deadline_s
        self.slots.write(replace(slots, trial=replace(trial, starts=1, deadline_at=deadline_at)))
        log.info("trying release %s (from %s) for up to %.0f s", version, _name(slots.current),
                 trial.deadline_s)  # fmt: skip
        child = self._start(version, trial=True)
        while True:
            if self.slots.confirmed(version):
                self.slots.commit()
                log.info("release %s confirmed: it runs from now on", version)
                return self._watch(child)
            code = child.poll()
            if code is not None:
                self._roll_back(f"release {version} exited with code {code} before a reading it "
                                "took was confirmed")  # fmt: skip
                return RESTART_FOR_UPDATE
            if time.time() > deadline_at:
                _end(child)
                self._roll_back(f"release {version} had no reading confirmed within "
                                f"{trial.deadline_s:.0f} s")  # fmt: skip
                return RESTART_FOR_UPDATE
            if self.stop.wait(POLL_S):
                _end(child)  # the trial stays marked started: the next start switches back
                return None

    def _roll_back(self, reason: str) -> None:
        outcome = self.slots.roll_back(reason)
        if outcome is not None:
            log.error("switching back to release %s: %s", _name(self.slots.read().current),
                      reason)  # fmt: skip

    def _start(self, version: str, *, trial: bool) -> subprocess.Popen[bytes]:
        if version:
            program = [sys.executable, str(self.slots.zipapp(version))]
        else:
            program = [sys.executable, "-m", "edge.cli"]
        # the child gets SIGTERM if the launcher dies (streetsense.lifecycle.follow_parent)
        env = {**os.environ, LAUNCHED_ENV: "1", PARENT_ENV: str(os.getpid())}
        env.pop(TRIAL_ENV, None)
        if trial:
            env[TRIAL_ENV] = version
        command = [*program, "--log-level", self.log_level, "agent", "--config", self.config_path]
        return subprocess.Popen(command, env=env)

    def _watch(self, child: subprocess.Popen[bytes]) -> int | None:
        while child.poll() is None:
            if self.stop.wait(POLL_S):
                _end(child)
                return None
        return child.returncode


def _end(child: subprocess.Popen[bytes]) -> None:
    """Stop a child cleanly (SIGTERM: it closes its buffer), killing it if it hangs."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(STOP_WAIT_S)


def _name(version: str) -> str:
    return version or "factory"


def main(argv: list[str] | None = None) -> int:
    """Run the launcher: `python -m edge.launcher CONFIG RELEASES_DIR LOG_LEVEL`.

    `streetsense-edge run` execs this, so the process that stays up all the device's life
    holds only what it needs (about 15 MB instead of the CLI's 25).
    """
    config, releases_dir, level = argv if argv is not None else sys.argv[1:4]
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return Launcher(config, releases_dir, StopSignal().install(), level).run()


if __name__ == "__main__":
    sys.exit(main())
