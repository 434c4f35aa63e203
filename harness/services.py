"""Real services for tests: addresses from the environment, a private Mosquitto per run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
BROKER_CONFIG = REPO / "deploy" / "mosquitto" / "streetsense.conf"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def database_admin_url() -> str:
    """Return the URL of a database on the test server where test databases can be created."""
    return os.environ.get("STREETSENSE_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)


def free_port() -> int:
    """Return a TCP port on loopback that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Tell whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until host:port accepts connections, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port, 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


def url_host_port(url: str, default_port: int) -> tuple[str, int]:
    """Return host and port of a service URL."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


class TestBroker(Protocol):
    """A broker fault tests start, kill and restart: a private Mosquitto, a NATS cluster."""

    protocol: str  # the mqtt.protocol its clients use: "5" or "3.1.1"

    @property
    def url(self) -> str:
        """The mqtt.url of the broker (several hosts for a cluster)."""
        ...

    def start(self) -> object:
        """Start it (again) and wait until it serves."""
        ...

    def kill(self) -> None:
        """SIGKILL it."""
        ...

    def stop(self) -> None:
        """Stop it cleanly."""
        ...


class Mosquitto:
    """A private Mosquitto started from our shipped config, on its own port and directory.

    Fault tests kill and restart it; it never touches the machine's own broker.
    """

    protocol = "5"

    def __init__(self, workdir: Path, extra_config: str = "") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.extra_config = extra_config
        self.process: subprocess.Popen[bytes] | None = None
        self.config_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        """The mqtt:// URL clients connect to."""
        return f"mqtt://127.0.0.1:{self.port}"

    def write_config(self) -> None:
        """Write our shipped config with this instance's port, directory and log."""
        lines = []
        replacements = {
            "listener": f"listener {self.port} 127.0.0.1",
            "persistence_location": f"persistence_location {self.workdir}/",
        }
        for line in BROKER_CONFIG.read_text().splitlines():
            lines.append(replacements.get(line.split(" ", 1)[0], line))
        lines += [f"log_dest file {self.log_path}", "log_type error", "log_type warning"]
        if os.geteuid() == 0:
            # Started as root, Mosquitto drops to the `mosquitto` user, which cannot enter
            # pytest's owner-only temporary folders: it would then run without persistence
            # and without a log, silently. Stay root for these private test brokers.
            lines.append("user root")
        lines.append(self.extra_config)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self) -> Mosquitto:
        """Start (or restart) the broker and wait until it accepts connections."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.write_config()
        stderr_path = self.workdir / "mosquitto.stderr"
        with stderr_path.open("ab") as stderr:
            self.process = subprocess.Popen(
                [binary, "-c", str(self.config_path)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError as exc:
            # Reap it (no ResourceWarning later) and say why it did not start.
            self.process.kill()
            self.process.wait(10)
            said = stderr_path.read_text(errors="replace")[-500:]
            raise TimeoutError(f"{exc}; mosquitto said: {said}") from None
        return self

    def kill(self) -> None:
        """SIGKILL the broker, as a power cut would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Stop the broker cleanly (it saves its persistence file)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
