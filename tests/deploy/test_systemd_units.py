"""deploy/systemd: units systemd accepts, whose commands our own command lines accept."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge import cli as edge_cli
from streetsense.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
UNITS = sorted((REPO / "deploy" / "systemd").glob("*.service"))
INSTALL_BIN = "/opt/streetsense/venv/bin/"


def _service(unit: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.read_text())
    return parser["Service"]


def _exec_lines(unit: Path) -> list[list[str]]:
    lines = [
        line.split("=", 1)[1]
        for line in unit.read_text().splitlines()
        if line.startswith(("ExecStart=", "ExecStartPre="))
    ]
    return [shlex.split(line.replace("%i", "1")) for line in lines]


def test_every_room_that_runs_as_a_service_has_a_unit() -> None:
    names = {unit.name for unit in UNITS}
    for expected in ("ingest@", "analytics", "feeds", "dashboard", "edge", "migrate", "alerts"):
        assert f"streetsense-{expected}.service" in names


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_unit_commands_parse_with_our_command_lines(unit: Path) -> None:
    for argv in _exec_lines(unit):
        program, args = Path(argv[0]).name, argv[1:]
        if program == "streetsense":
            parsed = build_parser().parse_args(args)
            assert getattr(parsed, "handler", None) is not None, argv
        else:
            assert program == "streetsense-edge"
            with pytest.raises(SystemExit) as exited:
                edge_cli.main([*args[:1], "--help"])
            assert exited.value.code == 0


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_units_stop_with_sigterm_restart_and_run_unprivileged(unit: Path) -> None:
    service = _service(unit)
    assert service.get("User", "root") != "root"
    assert service.get("NoNewPrivileges") == "yes"
    if service.get("Type") != "oneshot":
        assert service.get("KillSignal") == "SIGTERM"
        assert service.get("Restart") in ("always", "on-failure")


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    venv_bin = str(Path(sys.executable).parent) + "/"
    for unit in UNITS:
        # point the units at this checkout's interpreter so verify finds the programs
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(unit.read_text().replace(INSTALL_BIN, venv_bin))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        check=False,
    )
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if "streetsense" in line
    ]
    assert complaints == []
    assert result.returncode == 0, result.stderr


def _credentials(unit: Path) -> list[str]:
    return [
        line.split("=", 1)[1].split(":", 1)[1]
        for line in unit.read_text().splitlines()
        if line.startswith("LoadCredential=")
    ]


SERVER_UNITS = [unit for unit in UNITS if unit.name != "streetsense-edge.service"]


def test_each_service_has_its_own_user_and_its_own_credential_files() -> None:
    # issue 14: the units shared one Unix user and one ~/.pgpass, so a hole in the dashboard
    # read ingest's database password
    users = {}
    files: dict[str, str] = {}
    for unit in SERVER_UNITS:
        service = _service(unit)
        assert service.get("DynamicUser") == "yes", unit.name
        users[unit.name] = service["User"]
        assert "PGPASSFILE=%d/pgpass" in unit.read_text(), unit.name
        for source in _credentials(unit):
            assert source.startswith("/etc/streetsense/secrets/"), source
            assert files.setdefault(source, unit.name) == unit.name, f"{source} shared"
    assert len(set(users.values())) == len(users), users
    assert "streetsense" not in users.values()
