"""A private Patroni cluster (PostgreSQL 15, synchronous mode) on one private etcd, to fail over.

Debian's `etcd-server` and `patroni` packages, private ports and folders: the machine's own
PostgreSQL, etcd or Patroni (if any) are never touched. PostgreSQL refuses to run as root, so
under root Patroni runs as the `postgres` system user, as harness.postgres does. Killing a
member kills its Patroni and its PostgreSQL (which Patroni starts in a session of its own), as
the loss of its machine would.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from harness.ingest_services import PG_BIN
from harness.services import free_port, wait_port
from store.migrate import migrate
from streetsense.config import DatabaseSettings

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
PATRONI = shutil.which("patroni") or "/usr/bin/patroni"
HAVE_PATRONI = Path(ETCD).is_file() and Path(PATRONI).is_file() and (PG_BIN / "postgres").exists()
RUN_AS = "postgres"
READY_TIMEOUT_S = 90.0
DATABASE = "streetsense"
# Leader key TTL and loop: a dead leader's key expires within TTL_S, then the replica takes it.
# Patroni needs loop_wait + 2 * retry_timeout <= ttl.
TTL_S = 10
LOOP_WAIT_S = 1
RETRY_TIMEOUT_S = 4


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", RUN_AS, "--", *argv] if os.geteuid() == 0 else argv


class Etcd:
    """One etcd node on private ports, its data in the cluster's folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.client_port = free_port()
        self.peer_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """host:port of its client API."""
        return f"127.0.0.1:{self.client_port}"

    def start(self) -> Etcd:
        """Start etcd and wait for its client port."""
        peer = f"http://127.0.0.1:{self.peer_port}"
        client = f"http://{self.endpoint}"
        with (self.folder / "etcd.log").open("ab") as log:
            self.process = subprocess.Popen(
                [ETCD, "--name", "e1", "--data-dir", str(self.folder / "etcd"),
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"e1={peer}", "--initial-cluster-state", "new"],
                stdout=log, stderr=log,
            )  # fmt: skip
        wait_port("127.0.0.1", self.client_port, 30)
        return self

    def stop(self) -> None:
        """Stop etcd."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class Member:
    """One Patroni member: its PostgreSQL port, REST API port and data folder."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.folder = folder
        self.pg_port = free_port()
        self.api_port = free_port()
        self.data = folder / f"{name}-data"
        self.config_path = folder / f"{name}.yml"
        self.log_path = folder / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port of its PostgreSQL."""
        return f"127.0.0.1:{self.pg_port}"

    def write_config(self, etcd: Etcd, synchronous: bool) -> None:
        """Write the member's Patroni configuration (JSON is YAML)."""
        trust = ["local all all trust", "host all all 127.0.0.1/32 trust",
                 "host replication all 127.0.0.1/32 trust"]  # fmt: skip
        config: dict[str, Any] = {
            "scope": "streetsense-test",
            "name": self.name,
            "log": {"level": "INFO"},
            "restapi": {"listen": f"127.0.0.1:{self.api_port}",
                        "connect_address": f"127.0.0.1:{self.api_port}"},
            "etcd3": {"hosts": [etcd.endpoint]},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL_S, "loop_wait": LOOP_WAIT_S, "retry_timeout": RETRY_TIMEOUT_S,
                    "synchronous_mode": synchronous,
                    "postgresql": {"use_pg_rewind": False, "parameters": {"fsync": "off"}},
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, {"auth": "trust"}],
            },
            "postgresql": {
                "listen": self.address,
                "connect_address": self.address,
                "data_dir": str(self.data),
                "bin_dir": str(PG_BIN),
                "pgpass": str(self.folder / f"{self.name}.pgpass"),
                "authentication": {"superuser": {"username": "postgres"},
                                   "replication": {"username": "replicator"}},
                "parameters": {"unix_socket_directories": str(self.folder)},
                "pg_hba": trust,
            },
        }  # fmt: skip
        self.config_path.write_text(json.dumps(config, indent=2))

    def start(self) -> Member:
        """Start Patroni (which starts, or creates, its PostgreSQL)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                _as_postgres([PATRONI, str(self.config_path)]), stdout=log, stderr=log
            )
        return self

    def role(self) -> str:
        """Return the role its REST API reports (primary, replica, ...), or '' when it is down."""
        try:
            url = f"http://127.0.0.1:{self.api_port}/patroni"
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(json.loads(response.read()).get("role", ""))
        except urllib.error.HTTPError as exc:  # 503 while not running: the body still says
            try:
                return str(json.loads(exc.read()).get("role", ""))
            except ValueError:
                return ""
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        """SIGKILL Patroni, its postmaster and the postmaster's children: the machine is gone."""
        pids = [self.process.pid] if self.process is not None else []
        postmaster = _postmaster_pid(self.data)
        if postmaster:
            pids += [postmaster, *_children(postmaster)]
        pids += [child for pid in list(pids) for child in _children(pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        if self.process is not None:
            self.process.wait(10)

    def stop(self) -> None:
        """Stop Patroni, which stops its PostgreSQL."""
        if self.process is not None and self.process.poll() is None:
            # runuser passes SIGTERM on to Patroni
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def walsender_pids(self) -> list[int]:
        """Return the pids of the primary's WAL senders (one per streaming replica)."""
        with psycopg.connect(
            f"postgresql://postgres@{self.address}/postgres", connect_timeout=5
        ) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_replication").fetchall()
        return [int(row[0]) for row in rows]

    def log_tail(self, size: int = 2000) -> str:
        """Return the end of its log, for failure messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-size:]


def _postmaster_pid(data: Path) -> int:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


class PatroniCluster:
    """etcd and two Patroni members, in synchronous mode unless asked, in a folder of its own."""

    def __init__(self, members: int = 2, *, synchronous: bool = True) -> None:
        self.synchronous = synchronous
        self.folder = Path(tempfile.mkdtemp(prefix="ss-patroni-"))
        if os.geteuid() == 0:
            entry = pwd.getpwnam(RUN_AS)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self.etcd = Etcd(self.folder)
        self.members = [Member(f"pg{n + 1}", self.folder) for n in range(members)]

    @property
    def url(self) -> str:
        """The multi-host URL of the streetsense database that lands on the primary."""
        hosts = ",".join(member.address for member in self.members)
        return f"postgresql://postgres@{hosts}/{DATABASE}?target_session_attrs=read-write"

    def start(self) -> PatroniCluster:
        """Start etcd and the members; wait for a primary and a (synchronous) replica; migrate."""
        self.etcd.start()
        for member in self.members:
            member.write_config(self.etcd, self.synchronous)
        self.members[0].start()
        self.wait_for(lambda: self.primary() is not None, "a primary")
        for member in self.members[1:]:
            member.start()
        self.wait_synchronous()
        primary = self.primary()
        assert primary is not None
        admin = f"postgresql://postgres@{primary.address}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        with psycopg.connect(self.url) as conn:
            migrate(conn, DatabaseSettings(timescale="off"))
        return self

    def replica(self) -> Member:
        """Return a member that is not the primary."""
        primary = self.primary()
        return next(member for member in self.members if member is not primary)

    def primary(self) -> Member | None:
        """Return the member that is primary now, if one is."""
        for member in self.members:
            if member.role() in ("primary", "master"):
                return member
        return None

    def wait_synchronous(self) -> None:
        """Wait until a replica streams from the primary, as its synchronous standby if so set."""
        state = "sync" if self.synchronous else "async"

        def synchronous() -> bool:
            primary = self.primary()
            if primary is None:
                return False
            try:
                with psycopg.connect(
                    f"postgresql://postgres@{primary.address}/postgres", connect_timeout=2
                ) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM pg_stat_replication"
                        " WHERE state = 'streaming' AND sync_state = %s",
                        (state,),
                    ).fetchone()
            except psycopg.Error:
                return False
            return bool(row and row[0])

        self.wait_for(synchronous, f"a streaming replica ({state})")

    def wait_for(self, predicate: Any, what: str, timeout: float = READY_TIMEOUT_S) -> None:
        """Poll until predicate() holds.

        Raises:
            TimeoutError: it did not in time; the message holds the members' log ends.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        logs = "\n".join(f"--- {m.name}:\n{m.log_tail()}" for m in self.members)
        raise TimeoutError(f"no {what} in the Patroni cluster after {timeout} s\n{logs}")

    def stop(self) -> None:
        """Stop the members and etcd, and delete the folder."""
        for member in self.members:
            member.stop()
        self.etcd.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
