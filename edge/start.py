"""Start an agent from its config: enrol first when the image asks for it (fleet.batch)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from edge.agent import Agent
from edge.config import AgentConfig, load_config, validate
from edge.credentials import CredentialStore
from edge.enrol import Enrolment, with_identity
from edge.fleet_agent import FleetAgent
from edge.state import write_state
from streetsense.lifecycle import StopSignal


def build_agent(path: str | Path, stop: StopSignal) -> Agent | None:
    """Return the agent to run, enrolling this device first if needed; None when stopped.

    Raises:
        ConfigError: the config, the serial or the bootstrap secret is wrong; names the fix.
    """
    config = load_config(path)
    if not config.fleet.enabled:
        return Agent(config, stop=stop)
    store = CredentialStore(config.fleet.state_dir)
    identity = Enrolment(config, store, stop, _enrolment_state(config)).run()
    if identity is None:
        return None
    enrolled = with_identity(config, store, identity)
    validate(enrolled)
    fleet = FleetAgent(enrolled, store, lambda: None)
    agent = Agent(enrolled, stop=stop, fleet=fleet)
    fleet.config_version = lambda: agent.config_version
    return agent


def _enrolment_state(config: AgentConfig) -> Callable[[str], None]:
    def note(text: str) -> None:
        state = {"pid": os.getpid(), "running": True, "updated_at": time.time(),
                 "enrolment": text, "serial": config.fleet.serial}  # fmt: skip
        write_state(config.state_path, state)

    return note
