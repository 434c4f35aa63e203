"""Run the rooms as `streetsense <command>` subprocesses; stop them all cleanly.

Each child gets its own process group, so a Ctrl-C at the terminal reaches only the supervisor,
which then stops the children in reverse start order: SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from streetsense.errors import ServiceUnavailableError
from streetsense.lifecycle import PARENT_ENV, StopSignal

log = logging.getLogger(__name__)
GRACE_S: Final = 10.0
TAIL_LINES: Final = 20


def streetsense_command(*args: str) -> list[str]:
    """Return the argv that runs `streetsense ARGS` with this interpreter."""
    return [sys.executable, "-m", "streetsense.cli", *args]


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One process to run: a name for logs and messages, its argv and extra environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


class ChildFailedError(ServiceUnavailableError):
    """A child exited when it should not have; the message holds its last log lines."""


@dataclass(slots=True)
class Child:
    """A started child process and where its output goes."""

    spec: ChildSpec
    process: subprocess.Popen[bytes]
    log_path: Path
    log_start: int = 0  # where this run's lines begin: the log keeps earlier runs' lines

    @property
    def name(self) -> str:
        """The child's name."""
        return self.spec.name

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        """Return the last lines this run wrote to the child's log."""
        return tail_lines(self.log_path, lines, self.log_start)

    def describe_exit(self) -> str:
        """Say how the child ended, with its last log lines."""
        code = self.process.returncode
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else code
        last = "\n    ".join(self.tail()) or "(no output)"
        return f"{self.name} exited ({how}); last lines of {self.log_path}:\n    {last}"


def tail_lines(path: Path, lines: int, start: int = 0) -> list[str]:
    """Return the last `lines` lines of a text file after byte `start` (none if it is absent)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(start, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    # tqdm redraws its bar with carriage returns: keep only the last drawing of each line
    return [line.rsplit("\r", 1)[-1] for line in text.splitlines()][-lines:]


class Supervisor:
    """Start children with a shared environment, watch them, stop them all."""

    def __init__(self, log_dir: Path, env: Mapping[str, str], stop: StopSignal) -> None:
        self.log_dir = log_dir
        self.env = dict(env)
        self.stop_signal = stop
        self.children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def _popen(self, spec: ChildSpec, stdout: int | IO[bytes]) -> subprocess.Popen[bytes]:
        # Children stop with the demo even when it is killed outright (streetsense.lifecycle).
        env = {**self.env, **spec.env, PARENT_ENV: str(os.getpid())}
        try:
            return subprocess.Popen(
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise ChildFailedError(f"cannot start {spec.name} ({spec.argv[0]}): {exc}") from exc

    def start(self, spec: ChildSpec) -> Child:
        """Start a long-running child, its output going to `<log_dir>/<name>.log`."""
        log_path = self.log_dir / f"{spec.name}.log"
        with log_path.open("ab") as output:
            start = output.tell()
            process = self._popen(spec, output)
        child = Child(spec, process, log_path, start)
        self.children.append(child)
        log.info("started %s (pid %d), log %s", spec.name, process.pid, log_path)
        return child

    def run(self, spec: ChildSpec, *, echo: IO[str] | None = None, timeout_s: float = 600) -> None:
        """Run a one-shot child to the end, copying its output to its log (and to `echo`).

        Raises:
            ChildFailedError: it exited non-zero, timed out, or a stop was asked for.
        """
        log_path = self.log_dir / f"{spec.name}.log"
        start = log_path.stat().st_size if log_path.exists() else 0
        process = self._popen(spec, subprocess.PIPE)
        child = Child(spec, process, log_path, start)
        pump = threading.Thread(target=_copy, args=(process, log_path, echo), daemon=True)
        pump.start()
        try:
            self._wait(child, timeout_s)
        finally:
            pump.join(5)
            if process.stdout is not None:
                process.stdout.close()
        if process.returncode != 0:
            raise ChildFailedError(child.describe_exit())

    def _wait(self, child: Child, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while child.process.poll() is None:
            if self.stop_signal.wait(0.2) or time.monotonic() > deadline:
                terminate([child])
                why = "stopped" if self.stop_signal.stopping else f"timed out after {timeout_s} s"
                raise ChildFailedError(f"{child.name} {why}")

    def dead(self) -> list[Child]:
        """Return the long-running children that have exited, forgetting them."""
        gone = [child for child in self.children if child.process.poll() is not None]
        self.children = [child for child in self.children if child not in gone]
        return gone

    def stop_all(self, grace_s: float = GRACE_S) -> None:
        """Stop every child, newest first: SIGTERM, wait up to `grace_s`, then SIGKILL."""
        terminate(list(reversed(self.children)), grace_s)
        self.children = []


def terminate(children: Sequence[Child], grace_s: float = GRACE_S) -> None:
    """SIGTERM each child's process group, wait for them, SIGKILL those still there."""
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in children:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
            log.info("%s stopped (exit %s)", child.name, child.process.returncode)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s: killing it", child.name, grace_s)
            _signal_group(child, signal.SIGKILL)
            child.process.wait()
    for child in children:
        # the leader is gone; grandchildren left in its group (e.g. Streamlit's) go too
        _signal_group(child, signal.SIGKILL)


def _signal_group(child: Child, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, signum)


def _copy(process: subprocess.Popen[bytes], log_path: Path, echo: IO[str] | None) -> None:
    stream = process.stdout
    if stream is None:
        return
    with log_path.open("ab") as output:
        while chunk := stream.read1(4096):  # type: ignore[attr-defined]
            output.write(chunk)
            output.flush()
            if echo is not None:
                echo.write(chunk.decode("utf-8", errors="replace"))
                echo.flush()
