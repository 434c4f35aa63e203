"""The agent over TLS with a password, against the secure sample broker (deploy/mosquitto)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from edge.cli import main
from harness.edge import AgentProcess, agent_config, wait_for
from streetsense.topics import Topics
from tests.deploy.test_mosquitto_secure import SecureBroker, secure_broker

__all__ = ["secure_broker"]  # the fixture, shared with the broker's own tests
DEVICE = "dev-a"  # a user of the sample ACL: it may publish only under its own id


def _config(tmp_path: Path, broker: SecureBroker, password: str, ca: Path) -> Path:
    (tmp_path / "password").write_text(password + "\n")
    return agent_config(
        tmp_path / "agent.toml",
        f"mqtts://localhost:{broker.port}",
        Topics("streetsense/v1"),  # the sample ACL names the real prefix
        device=DEVICE,
        mqtt={"username": DEVICE, "password_file": str(tmp_path / "password"),
              "ca_file": str(ca)},
        buffer={"min_free_bytes": 0},
    )  # fmt: skip


def _check(config: Path) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["check", "--config", str(config)])
    return code, out.getvalue()


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    """Kill agents a test leaves running."""
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.kill()


def test_the_agent_publishes_over_tls_with_its_password(
    secure_broker: SecureBroker, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    config = _config(
        tmp_path, secure_broker, secure_broker.passwords[DEVICE], secure_broker.ca_file
    )
    code, text = _check(config)
    assert code == 0, text
    assert "TLS handshake ok" in text
    agent = AgentProcess(config)
    agents.append(agent.start())
    wait_for(lambda: agent.state()["link"] == "up" and agent.state()["published"] > 0, 20, "TLS")


def test_check_explains_a_wrong_password(secure_broker: SecureBroker, tmp_path: Path) -> None:
    code, text = _check(_config(tmp_path, secure_broker, "wrong", secure_broker.ca_file))
    assert code == 1
    assert "refused the connection: not authorized (135)" in text  # Mosquitto's answer
    assert "mqtt.password_file" in text


def test_check_explains_an_untrusted_broker_certificate(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    other_ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if not other_ca.exists():
        pytest.skip("no system CA bundle to stand for a wrong CA")
    code, text = _check(_config(tmp_path, secure_broker, "x", other_ca))
    assert code == 1
    assert "not trusted" in text
    assert "mqtt.ca_file" in text
