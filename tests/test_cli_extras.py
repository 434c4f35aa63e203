"""A command whose room or its dependencies are not installed says which extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(blocked: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI with one module made unimportable, as in a partial install."""
    code = (
        f"import sys; sys.modules[{blocked!r}] = None; "
        f"from streetsense.cli import main; sys.exit(main({argv!r}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_help_keeps_a_command_whose_room_cannot_be_imported() -> None:
    result = _run("feeds.cli", ["--help"])
    assert result.returncode == 0, result.stderr
    help_text = " ".join(result.stdout.split())  # argparse wraps the help column
    assert "feeds (unavailable: import of feeds.cli halted" in help_text
    assert "pip install 'streetsense[feeds]'" in help_text
    assert "ingest subscribe to device streams" in help_text  # the others are unaffected
    ran = _run("feeds.cli", ["feeds", "--port", "1"])
    assert ran.returncode == 2
    assert "streetsense feeds is unavailable" in ran.stderr


def test_a_missing_dependency_names_the_extra_instead_of_a_traceback() -> None:
    result = _run("psycopg", ["db", "migrate"])  # as after `pip install streetsense[edge]`
    assert result.returncode == 2
    assert "streetsense db needs psycopg, which is not installed" in result.stderr
    assert "pip install 'streetsense[server]'" in result.stderr
    assert "Traceback" not in result.stderr
