"""Private PostgreSQL clusters: any installation's binaries, a free port, a temp folder.

They never touch the machine's own cluster. PostgreSQL refuses to run as root, so under root
the cluster runs as the `postgres` system user (Debian's packages create it).
`python -m harness.postgres BINDIR COMMAND...` runs a command (pytest) with the tests pointed
at a cluster of another installation: scripts/postgres-versions runs the store tests so on
every PostgreSQL major version we support.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

import psycopg

from harness.services import free_port

START_TIMEOUT_S = 60
RUN_AS = "postgres"


def server_bindir(url: str) -> Path:
    """Return the folder of the binaries the server at `url` runs (it must be local)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT setting FROM pg_config WHERE name = 'BINDIR'").fetchone()
    assert row is not None, "pg_config has no BINDIR"
    return Path(row[0])


def pg_config(bindir: Path, *names: str) -> list[Path]:
    """Return what `pg_config --NAME` prints for each name, for the installation in bindir."""
    done = subprocess.run(
        [str(bindir / "pg_config"), *(f"--{name}" for name in names)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [Path(line) for line in done.stdout.splitlines()]


class PrivateCluster:
    """A PostgreSQL cluster of its own: `with PrivateCluster(bindir) as cluster: cluster.url`.

    `postgres` is the server binary to run (default: the one in bindir); initdb and pg_ctl
    always come from bindir.
    """

    def __init__(
        self,
        bindir: Path,
        *,
        settings: dict[str, str] | None = None,
        postgres: Path | None = None,
    ) -> None:
        self.bindir = bindir
        self.postgres = postgres or bindir / "postgres"
        self.settings = settings or {}
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="ss-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"

    @property
    def url(self) -> str:
        """The URL of its `postgres` database, over TCP on loopback."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PrivateCluster:
        """Create the cluster and start it; raise RuntimeError with the server log if it fails."""
        if os.geteuid() == 0:
            user = pwd.getpwnam(RUN_AS)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self._run(
            self.bindir / "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        lines = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.folder}'",
            "fsync": "off",
            **self.settings,
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in lines.items())
        self._run(
            self.bindir / "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-p",
            str(self.postgres), "-w", "-t", str(START_TIMEOUT_S), "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            self._run(self.bindir / "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivateCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, *command: str | Path) -> None:
        argv = [str(part) for part in command]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", RUN_AS, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}\n{log}"
            )


def run_with_cluster(bindir: Path, command: list[str]) -> int:
    """Run command with STREETSENSE_TEST_DATABASE_URL set to a private cluster of bindir's."""
    with PrivateCluster(bindir) as cluster:
        with psycopg.connect(cluster.url) as conn:
            row = conn.execute("SELECT version()").fetchone()
        print(f"{row[0] if row else '?'} at {cluster.url}", flush=True)
        env = {**os.environ, "STREETSENSE_TEST_DATABASE_URL": cluster.url}
        return subprocess.run(command, env=env, check=False).returncode


def main(argv: list[str]) -> int:
    """`python -m harness.postgres BINDIR COMMAND...`: run COMMAND against a private cluster."""
    if len(argv) < 2 or not (Path(argv[0]) / "postgres").is_file():
        sys.stderr.write(
            "usage: python -m harness.postgres BINDIR COMMAND... (BINDIR holds postgres)\n"
        )
        return 2
    return run_with_cluster(Path(argv[0]), argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
