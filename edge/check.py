"""`streetsense-edge check`: test each link of the chain and say how to fix what fails."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge.config import CONFIRM_KEY_ENV, AgentConfig, load_config
from edge.confirmations import NO_KEY
from edge.link import make_client
from streetsense.broker_reasons import explain
from streetsense.errors import ConfigError

Result = tuple[bool, str]
WAL_ROOM = 1_000_000  # the write-ahead log stays below ~0.5 MB


def run_checks(path: str) -> Iterator[Result]:
    """Yield (passed, plain-words result with the fix) for each check, stopping at a blocker."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        yield False, f"config {path}: {exc}"
        return
    yield True, f"config {path} is valid (device {config.device.site}/{config.device.id})"
    yield from _check_buffer(config)
    yield _check_confirm_key(config)
    if config.fleet.release_key_file:
        yield _check_release_key(config.fleet.release_key_file)
    yield from _check_driver(config)
    target = config.broker()
    host, port = target.endpoint.host, target.endpoint.port
    try:
        addresses = sorted(
            {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
        )
    except OSError as exc:
        yield False, f"broker name {host!r} does not resolve ({exc}); fix DNS or mqtt.url"
        return
    yield True, f"broker {host} resolves to {', '.join(map(str, addresses))}"
    try:
        sock = socket.create_connection((host, port), timeout=config.mqtt.connect_timeout_s)
    except OSError as exc:
        yield (
            False,
            (
                f"cannot open TCP {host}:{port} ({exc}); check the broker runs, the port, "
                "and that the firewall or APN lets the device out"
            ),
        )
        return
    yield True, f"TCP {host}:{port} accepts connections"
    with sock:
        tls = _check_tls(config, sock, host) if target.tls else None
    if tls is not None:
        yield tls
        if not tls[0]:
            return
    yield _check_mqtt(config)


def _check_confirm_key(config: AgentConfig) -> Result:
    try:
        key = config.confirm_key()
    except ConfigError as exc:
        return False, str(exc)
    if key is None:
        return False, NO_KEY
    where = config.device.confirm_key_file or CONFIRM_KEY_ENV
    return True, f"confirmation key loaded from {where}"


def _check_release_key(path: str) -> Result:
    from streetsense.signature import public_key_problem  # noqa: PLC0415

    problem = public_key_problem(Path(path))
    if problem is not None:
        return False, (
            f"updates: {problem}; no release can be installed until fleet.release_key_file "
            "names the city's release.pub and openssl (3.0 or newer) is installed"
        )
    return True, f"updates: release signatures are checked with {path} (openssl, Ed25519)"


def _check_buffer(config: AgentConfig) -> Iterator[Result]:
    folder = Path(config.buffer.path).parent
    if not folder.exists():
        yield True, f"buffer folder {folder} will be created on start"
        folder = next((p for p in folder.parents if p.exists()), Path("/"))
    if not os.access(folder, os.W_OK):
        yield False, f"cannot write in {folder}; create it and give the agent's user write access"
        return
    free = shutil.disk_usage(folder).free
    needed = config.buffer.cap_bytes + config.buffer.min_free_bytes + WAL_ROOM
    if free < needed:
        yield (
            False,
            (
                f"only {free // 1_000_000} MB free in {folder}; the buffer needs up to "
                f"{needed // 1_000_000} MB (buffer.cap_bytes + buffer.min_free_bytes + its log): "
                "lower buffer.cap_bytes or free space (it still runs: the oldest readings go first)"
            ),
        )
    else:
        yield (
            True,
            f"buffer {config.buffer.path}: {free // 1_000_000} MB free, "
            f"cap {config.buffer.cap_bytes // 1_000_000} MB",
        )


def _check_driver(config: AgentConfig) -> Iterator[Result]:
    kind = config.driver.kind
    if kind in ("replay", "serial-line"):
        path = config.driver.path
        if not os.path.exists(path):
            yield (
                False,
                f"driver {kind}: {path} does not exist; fix driver.path or plug the sensor in",
            )
        elif not os.access(path, os.R_OK):
            yield (
                False,
                f"driver {kind}: cannot read {path}; add the agent's user to its group (dialout)",
            )
        else:
            yield True, f"driver {kind}: {path} is readable"
    elif kind == "command":
        program = config.driver.command.split()[0]
        found = shutil.which(program)
        yield (
            (found is not None),
            (
                f"driver command: {program} found at {found}"
                if found
                else f"driver command: {program} not found; give its full path in driver.command"
            ),
        )
    else:
        yield True, "driver simulated: no hardware needed"


def _check_tls(config: AgentConfig, sock: socket.socket, host: str) -> Result:
    try:
        context = config.broker().ssl_context()
    except ConfigError as exc:
        return False, str(exc)
    assert context is not None  # only called for a TLS URL
    try:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            return True, f"TLS handshake ok ({tls.version()}), broker certificate trusted"
    except ssl.SSLCertVerificationError as exc:
        return (
            False,
            f"the broker's certificate is not trusted ({exc.verify_message}); "
            "set mqtt.ca_file to the CA that signed it",
        )
    except (ssl.SSLError, OSError) as exc:
        return False, f"TLS failed: {exc}; check mqtt.ca_file, mqtt.cert_file and mqtt.key_file"


def _check_mqtt(config: AgentConfig) -> Result:
    try:
        client = make_client(config)
    except ConfigError as exc:
        return False, str(exc)
    client._client_id = f"{config.client_id}-check".encode()
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        outcome["reason"] = reason
        done.set()

    client.on_connect = on_connect
    endpoint = config.broker().endpoint
    try:
        client.connect(endpoint.host, endpoint.port, keepalive=10)
        client.loop_start()
        done.wait(config.mqtt.connect_timeout_s)
    except (OSError, ssl.SSLError) as exc:
        return False, f"MQTT connect failed: {exc}"
    finally:
        client.disconnect()
        client.loop_stop()
    reason = outcome.get("reason")
    if reason is None:
        return False, (
            f"the broker did not answer the MQTT {config.mqtt.protocol} CONNECT; is this an "
            'MQTT port? For a broker without MQTT 5 set mqtt.protocol = "3.1.1"'
        )
    if reason.is_failure:
        return False, f"the broker refused the connection: {explain(reason.value)}"
    return (
        True,
        f"MQTT {config.mqtt.protocol} login accepted as {config.mqtt.username or 'anonymous'}",
    )
