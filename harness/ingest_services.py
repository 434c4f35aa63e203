"""Private services for fault tests: a Mosquitto that really persists, a PostgreSQL cluster."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from harness.services import Mosquitto, free_port, wait_port
from store.migrate import migrate
from streetsense.config import DatabaseSettings

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def persistent_mosquitto(workdir: Path) -> Mosquitto:
    """Return a private Mosquitto from our config whose persistence really works.

    harness.services.Mosquitto keeps root for private brokers, so Mosquitto can write its
    persistence file in pytest's owner-only folders (docs/ingest.md).
    """
    return Mosquitto(workdir)


class PrivatePostgres:
    """A throw-away PostgreSQL 15 cluster on a free port, never the machine's own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ss-pg-"))
        self.data = self.root / "data"
        self.user = "postgres" if os.geteuid() == 0 else ""
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        """libpq URL of the streetsense database in this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/streetsense"

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> PrivatePostgres:
        """Create, start and migrate the cluster."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE streetsense")
        with psycopg.connect(self.url) as conn:
            migrate(conn, DatabaseSettings(timescale="off"))
        return self

    def start(self) -> None:
        """Start the server and wait for it."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )
        wait_port("127.0.0.1", self.port)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: fast (clients disconnected) or immediate (as a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stop the server if it runs and remove its files."""
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
