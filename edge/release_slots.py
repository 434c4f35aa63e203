"""The releases a device holds (A/B): which runs, which ran before, which is on trial.

`fleet.releases_dir` holds at most three zipapps (`<version>.pyz`, with its default config
`<version>.toml`): the current one, the previous one, and one on trial. The factory release
(the pip-installed package) is the empty version "". Files:

| file | written by | what |
|---|---|---|
| `slots.json` | the launcher (the installing agent marks the trial) | current, previous, trial |
| `trial-<version>.ok` | the release on trial, once a reading it took is confirmed | |
| `outcome.json` | whoever decided | the last update's outcome, until the agent reported it |
| `history.json` | both | (version, rollout) pairs already tried: never tried again |

Every write replaces the file atomically (a power cut leaves the old or the new file).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)
HISTORY_KEPT: Final = 50


@dataclass(frozen=True, slots=True)
class Trial:
    """A release being tried: back to the current one unless confirmed by `deadline_at`."""

    version: str
    rollout: int
    deadline_s: float
    deadline_at: float = 0.0  # wall clock, set when the launcher first starts it
    starts: int = 0


@dataclass(frozen=True, slots=True)
class Slots:
    """Which release runs ("" is the factory's), which ran before, which is on trial."""

    current: str = ""
    previous: str = ""
    trial: Trial | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of an update on this device (reported to the fleet once)."""

    version: str
    rollout: int
    state: str  # updated, refused, rolled_back
    reason: str = ""
    at: float = 0.0


class ReleaseSlots:
    """Read and write the release files of one device."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def prepare(self) -> None:
        """Make the folder (mode 700)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def zipapp(self, version: str) -> Path:
        """Return the path of a release's zipapp."""
        return self.folder / f"{version}.pyz"

    def read(self) -> Slots:
        """Return the slots (the factory's alone when nothing was installed)."""
        data = _load(self.folder / "slots.json")
        if not isinstance(data, dict):
            return Slots()
        trial = data.get("trial")
        return Slots(
            current=str(data.get("current", "")),
            previous=str(data.get("previous", "")),
            trial=Trial(**trial) if isinstance(trial, dict) else None,
        )

    def write(self, slots: Slots) -> None:
        """Replace the slots."""
        body = {"current": slots.current, "previous": slots.previous,
                "trial": None if slots.trial is None else asdict(slots.trial)}  # fmt: skip
        _save(self.folder / "slots.json", body)

    def install(self, version: str, agent: bytes, config: bytes, trial: Trial) -> None:
        """Keep a checked release and mark it for trial at the next start."""
        self.prepare()
        _save_bytes(self.zipapp(version), agent)
        _save_bytes(self.folder / f"{version}.toml", config)
        (self.folder / f"trial-{version}.ok").unlink(missing_ok=True)
        self.write(replace(self.read(), trial=trial))

    def confirm(self, version: str) -> None:
        """Say the release on trial proved itself (called by that release)."""
        _save_bytes(self.folder / f"trial-{version}.ok", b"confirmed\n")

    def confirmed(self, version: str) -> bool:
        """Tell whether the release on trial proved itself."""
        return (self.folder / f"trial-{version}.ok").exists()

    def commit(self) -> Slots:
        """Make the confirmed trial current; the current one becomes previous; prune others."""
        slots = self.read()
        if slots.trial is None:
            return slots
        version = slots.trial.version
        done = Slots(current=version, previous=slots.current)
        self.write(done)
        (self.folder / f"trial-{version}.ok").unlink(missing_ok=True)
        self._prune({done.current, done.previous})
        return done

    def roll_back(self, reason: str) -> Outcome | None:
        """Drop the trial (its files too) and record why; the current release runs on."""
        slots = self.read()
        if slots.trial is None:
            return None
        trial = slots.trial
        outcome = Outcome(trial.version, trial.rollout, "rolled_back", reason, time.time())
        self.record(outcome)
        self.write(replace(slots, trial=None))
        self._prune({slots.current, slots.previous})
        return outcome

    def note_crash(self, version: str, at: float, window_s: float) -> int:
        """Count a crash of the current release; return its crashes within the window."""
        data = _load(self.folder / "crashes.json")
        times = (
            data.get("times", [])
            if isinstance(data, dict) and data.get("version") == version
            else []
        )
        times = [t for t in times if isinstance(t, int | float) and at - t <= window_s] + [at]
        _save(self.folder / "crashes.json", {"version": version, "times": times})
        return len(times)

    def fall_back(self, reason: str) -> str:
        """Leave the current release for the previous one (for good); return the one now
        current ("" is the factory's)."""
        slots = self.read()
        outcome = Outcome(slots.current, 0, "rolled_back", reason, time.time())
        self.record(outcome)
        self.write(Slots(current=slots.previous, previous=""))
        (self.folder / "crashes.json").unlink(missing_ok=True)
        self._prune({slots.previous})
        return slots.previous

    def record(self, outcome: Outcome) -> None:
        """Keep an outcome to report, and remember the (version, rollout) as tried."""
        self.prepare()
        _save(self.folder / "outcome.json", asdict(outcome))
        history = self.history()
        history.append([outcome.version, outcome.rollout, outcome.state])
        _save(self.folder / "history.json", history[-HISTORY_KEPT:])

    def outcome(self) -> Outcome | None:
        """Return the outcome not yet reported, if any."""
        data = _load(self.folder / "outcome.json")
        try:
            return Outcome(**data) if isinstance(data, dict) else None
        except TypeError:
            return None

    def reported(self) -> None:
        """Forget the outcome once the fleet has it."""
        (self.folder / "outcome.json").unlink(missing_ok=True)

    def history(self) -> list[list[Any]]:
        """Return [version, rollout, state] of updates tried, oldest first."""
        data = _load(self.folder / "history.json")
        return [item for item in data if isinstance(item, list)] if isinstance(data, list) else []

    def tried(self, version: str, rollout: int) -> bool:
        """Tell whether this release of this rollout was tried already (never again)."""
        return any(item[:2] == [version, rollout] for item in self.history())

    def _prune(self, keep: set[str]) -> None:
        for path in self.folder.glob("*.pyz"):
            if path.stem not in keep:
                path.unlink(missing_ok=True)
                path.with_suffix(".toml").unlink(missing_ok=True)


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.error("cannot read %s (%s): treating it as empty", path, exc)
        return None


def _save(path: Path, body: Any) -> None:
    _save_bytes(path, json.dumps(body, indent=1, sort_keys=True).encode())


def _save_bytes(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
