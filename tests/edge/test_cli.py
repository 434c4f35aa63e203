"""`streetsense-edge check` and `status` speak plain words, with the fix."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

from edge.cli import main
from harness.edge import agent_config
from harness.services import free_port
from streetsense.topics import Topics


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_check_passes_against_a_reachable_broker(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    config = agent_config(tmp_path / "agent.toml", broker, topics, buffer={"min_free_bytes": 0})
    code, text = _run("check", "--config", str(config))
    assert "MQTT 5 login accepted" in text
    assert code == 0, text


def test_check_names_the_unreachable_broker_and_the_fix(topics: Topics, tmp_path: Path) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    config = agent_config(tmp_path / "agent.toml", url, topics)
    code, text = _run("check", "--config", str(config))
    assert code == 1
    assert "FAIL  cannot open TCP 127.0.0.1" in text
    assert "firewall" in text


def test_check_reports_a_bad_config_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[device]\nsite = "central"\nid = "gw 1"\n')
    code, text = _run("check", "--config", str(path))
    assert code == 1
    assert "device.id" in text


def test_status_without_a_running_agent_says_how_to_start_it(
    tmp_path: Path, topics: Topics
) -> None:
    config = agent_config(tmp_path / "agent.toml", "mqtt://127.0.0.1:1", topics)
    assert main(["status", "--config", str(config)]) == 2


def test_check_says_whether_signed_updates_can_be_checked(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    from harness.releases import release_keys

    keys = release_keys(tmp_path / "keys")
    config = agent_config(tmp_path / "agent.toml", broker, topics, buffer={"min_free_bytes": 0},
                          fleet={"release_key_file": str(keys.public)})  # fmt: skip
    code, text = _run("check", "--config", str(config))
    assert f"ok    updates: release signatures are checked with {keys.public}" in text
    assert code == 0, text
    for wrong in (keys.private.with_name("missing.pub"), config):  # no file; not a key
        config = agent_config(tmp_path / "agent.toml", broker, topics,
                              fleet={"release_key_file": str(wrong)})  # fmt: skip
        code, text = _run("check", "--config", str(config))
        assert code == 1
        assert "FAIL  updates:" in text and "release.pub" in text
