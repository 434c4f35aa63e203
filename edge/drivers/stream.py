"""Line sources read on a thread: a serial port or FIFO (`serial-line`), a program (`command`)."""

from __future__ import annotations

import logging
import os
import queue
import shlex
import stat
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO

from edge.drivers import SensorEvent
from edge.drivers.lines import parse_line
from streetsense.errors import ConfigError, PayloadError

log = logging.getLogger(__name__)
_RETRY_S = 2.0
_BAUDS = {
    1200: termios.B1200, 2400: termios.B2400, 4800: termios.B4800, 9600: termios.B9600,
    19200: termios.B19200, 38400: termios.B38400, 57600: termios.B57600, 115200: termios.B115200,
}  # fmt: skip


class LineDriver:
    """Parse lines that a reader thread takes from a source, reopening it when it ends."""

    def __init__(self, opener: Callable[[], Iterator[str]], label: str) -> None:
        self._opener = opener
        self._label = label
        self._events: queue.Queue[SensorEvent] = queue.Queue(maxsize=100_000)
        self._closing = threading.Event()
        self.rejected = 0
        self._thread = threading.Thread(target=self._run, name=f"driver-{label}", daemon=True)
        self._thread.start()

    def poll(self, timeout: float) -> list[SensorEvent]:
        """Return events that arrived within `timeout` seconds."""
        try:
            first = self._events.get(timeout=timeout)
        except queue.Empty:
            return []
        events = [first]
        while len(events) < 10_000:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        return events

    def now(self) -> float:
        """Return the system clock (line sources run in real time)."""
        return time.time()

    def close(self) -> None:
        """Stop reading."""
        self._closing.set()

    def _run(self) -> None:
        while not self._closing.is_set():
            try:
                for line in self._opener():
                    self._take(line)
                    if self._closing.is_set():
                        return
                log.warning("%s ended; reopening in %.0f s", self._label, _RETRY_S)
            except OSError as exc:
                log.warning("cannot read %s: %s; retrying in %.0f s", self._label, exc, _RETRY_S)
            self._closing.wait(_RETRY_S)

    def _take(self, line: str) -> None:
        try:
            event = parse_line(line, time.time())
        except PayloadError as exc:
            self.rejected += 1
            log.warning("%s: rejected line %r: %s", self._label, line[:120], exc)
            return
        if event is not None:
            self._events.put(event)


def open_serial_line(path: str, baud: int) -> LineDriver:
    """Read the line protocol from a serial port (set to `baud`, 8N1, raw) or a FIFO/file."""
    if baud not in _BAUDS:
        raise ConfigError(f"setting 'driver.baud' = {baud} is not one of {sorted(_BAUDS)}")

    if is_fifo(path):
        return _FifoDriver(path)

    def lines() -> Iterator[str]:
        with open(path, "rb", buffering=0) as raw:
            if os.isatty(raw.fileno()):
                _configure_serial(raw.fileno(), _BAUDS[baud])
            yield from _decoded(raw)

    return LineDriver(lines, f"serial-line {path}")


class _FifoDriver(LineDriver):
    """Read a named pipe while holding it open for writing too.

    A plain reader sees end of input whenever its writer goes away, and a line written between
    that end and the reader's close is discarded by the kernel with the pipe. Our own write end
    keeps the pipe alive across writers, and lets close() wake the reader.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._keeper: int | None = None
        self._keeper_lock = threading.Lock()
        super().__init__(self._lines, f"serial-line {path}")

    def _lines(self) -> Iterator[str]:
        # Non-blocking so that opening does not wait for a writer; blocking again for reading.
        read_fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            keeper = os.open(self._path, os.O_WRONLY)
        except OSError:
            os.close(read_fd)
            raise
        os.set_blocking(read_fd, True)
        with self._keeper_lock:
            self._keeper = keeper
        try:
            with open(read_fd, "rb", buffering=0) as raw:
                yield from _decoded(raw)
        finally:
            with self._keeper_lock:
                self._keeper = None
                os.close(keeper)

    def close(self) -> None:
        """Stop reading; an empty line wakes the reader thread so that it sees the stop."""
        super().close()
        with self._keeper_lock:
            if self._keeper is not None:
                os.write(self._keeper, b"\n")


def _configure_serial(fd: int, speed: int) -> None:
    attrs = termios.tcgetattr(fd)
    attrs[0] = termios.IGNPAR  # iflag: no translation of CR/LF, ignore parity errors
    attrs[1] = 0  # oflag
    attrs[2] = termios.CS8 | termios.CREAD | termios.CLOCAL  # 8 data bits, no modem control
    attrs[3] = termios.ICANON  # lflag: line mode, no echo
    attrs[4] = attrs[5] = speed
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _decoded(raw: IO[bytes]) -> Iterator[str]:
    for line in raw:
        yield line.decode("utf-8", errors="replace")


class CommandDriver(LineDriver):
    """Run a program and read events from its stdout lines; restart it if it exits."""

    def __init__(self, command: str) -> None:
        self._argv = shlex.split(command)
        self._process: subprocess.Popen[bytes] | None = None
        super().__init__(self._lines, f"command {self._argv[0]!r}")

    def _lines(self) -> Iterator[str]:
        process = subprocess.Popen(self._argv, stdout=subprocess.PIPE)
        self._process = process
        assert process.stdout is not None
        with process.stdout:
            yield from _decoded(process.stdout)
        code = process.wait()
        if not self._closing.is_set():
            log.warning("command %r exited with %s", self._argv[0], code)

    def close(self) -> None:
        """Stop the program and stop reading."""
        super().close()
        process = self._process
        if process is not None:
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def is_fifo(path: str) -> bool:
    """Tell whether a path is a named pipe."""
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False
