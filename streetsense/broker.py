"""Where and how to reach the MQTT broker: one reading of `mqtt.url`, TLS and credentials.

Every MQTT client we run (edge agent, simulators, ingest, doctor, feeds republisher) builds its
connection from one `BrokerTarget`, so no two of them can disagree about TLS, ports or
credentials. Standard library only: the edge agent installs with paho alone.

`mqtt.url` is `scheme://[user@]host[:port][,host[:port]...][/path]`:

| scheme | transport | TLS | default port |
|---|---|---|---|
| `mqtt`, `tcp` | TCP | no | 1883 |
| `mqtts`, `ssl` | TCP | yes | 8883 |
| `ws` | WebSockets | no | 80 |
| `wss` | WebSockets | yes | 443 |

A list of hosts names the nodes of one clustered broker (all share the scheme, credentials and
TLS settings). `Failover` says which node a client tries: it stays on a node while it works and
moves to the next one after a failed connection or a lost link; the delay between attempts is
the caller's `streetsense.backoff.Backoff`, as with one broker. Each client starts at a node
chosen by its client id, so a fleet configured with one list spreads over the nodes. A list
only makes sense for a cluster that shares sessions and retained messages between its nodes
(NATS with JetStream, EMQX, HiveMQ, VerneMQ): independent brokers would each keep their own
part of a session (docs/deploy.md).
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NamedTuple, Protocol

from streetsense.errors import ConfigError


class _Scheme(NamedTuple):
    transport: str
    tls: bool
    port: int


SCHEMES: Final = {
    "mqtt": _Scheme("tcp", tls=False, port=1883),
    "tcp": _Scheme("tcp", tls=False, port=1883),
    "mqtts": _Scheme("tcp", tls=True, port=8883),
    "ssl": _Scheme("tcp", tls=True, port=8883),
    "ws": _Scheme("websockets", tls=False, port=80),
    "wss": _Scheme("websockets", tls=True, port=443),
}
PROTOCOLS: Final = ("5", "3.1.1")
DEFAULT_WEBSOCKET_PATH: Final = "/mqtt"
_HOST: Final = re.compile(r"[A-Za-z0-9._:%-]+")  # names, IPv4, IPv6 (with a zone)
_EXAMPLE: Final = "mqtt://broker.example:1883 or mqtts://broker.example:8883"


class MqttSection(Protocol):
    """The `[mqtt]` settings a broker connection is made from (server's and agent's alike)."""

    @property
    def url(self) -> str: ...
    @property
    def protocol(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def password_file(self) -> str: ...
    @property
    def ca_file(self) -> str: ...
    @property
    def cert_file(self) -> str: ...
    @property
    def key_file(self) -> str: ...


class MqttClient(Protocol):
    """What `configure_client` needs of a paho-mqtt client (kept structural: no paho here)."""

    def username_pw_set(self, username: str | None, password: str | None = None) -> None: ...
    def tls_set_context(self, context: ssl.SSLContext | None = None) -> None: ...
    def ws_set_options(self, path: str = ...) -> None: ...


class _ClosedOnFailedHandshake(ssl.SSLSocket):
    """A TLS socket that closes itself when its handshake fails.

    paho-mqtt (2.2) drops the socket of a failed handshake (an untrusted broker, a plain-text
    port) without closing it, so its file descriptor lives until garbage collection.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One broker address."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BrokerTarget:
    """A validated broker connection: addresses, transport, TLS files and credentials."""

    scheme: str
    endpoints: tuple[Endpoint, ...]
    protocol: str = "5"
    username: str = ""
    password_file: str = ""
    password_env: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    websocket_path: str = ""
    env_prefix: str = field(default="STREETSENSE_", compare=False)

    @property
    def endpoint(self) -> Endpoint:
        """The first broker of the list (clients choose theirs with `Failover`)."""
        return self.endpoints[0]

    @property
    def transport(self) -> str:
        """`tcp` or `websockets`, as paho-mqtt and aiomqtt name them."""
        return SCHEMES[self.scheme].transport

    @property
    def tls(self) -> bool:
        """Whether the connection is encrypted."""
        return SCHEMES[self.scheme].tls

    @property
    def v5(self) -> bool:
        """Whether the connection speaks MQTT 5 (else 3.1.1)."""
        return self.protocol == "5"

    def describe(self) -> str:
        """Return the URL without credentials, for logs and messages."""
        hosts = ",".join(str(endpoint) for endpoint in self.endpoints)
        return f"{self.scheme}://{hosts}{self.websocket_path}"

    def password(self) -> str | None:
        """Read the password from `mqtt.password_file` or its environment variable; never log it.

        Raises:
            ConfigError: the password file cannot be read.
        """
        if self.password_file:
            try:
                lines = Path(self.password_file).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"{self.setting('password_file')} = {self.password_file!r} cannot be read "
                    f"({exc}); fix the path or the file's permissions for this service's user"
                ) from exc
            if not lines or not lines[0].strip():
                raise ConfigError(
                    f"{self.setting('password_file')} = {self.password_file!r} is empty; "
                    "write the broker password on its first line"
                )
            return lines[0].strip()
        return os.environ.get(self.password_env) or None

    def ssl_context(self) -> ssl.SSLContext | None:
        """Return the TLS context (broker certificate and host name checked), None without TLS.

        Raises:
            ConfigError: a CA, certificate or key file cannot be loaded; names the setting.
        """
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(cafile=self.ca_file or None)
            context.sslsocket_class = _ClosedOnFailedHandshake
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{self.setting('ca_file')} = {self.ca_file!r} cannot be loaded ({exc}); "
                "give the PEM file of the CA that signed the broker's certificate"
            ) from exc
        if self.cert_file:
            try:
                context.load_cert_chain(self.cert_file, self.key_file or None)
            except (OSError, ssl.SSLError) as exc:
                cert, key = self.setting("cert_file"), self.setting("key_file")
                raise ConfigError(
                    f"{cert} = {self.cert_file!r} / {key} = {self.key_file!r} cannot be loaded "
                    f"({exc}); give the client certificate and its private key as PEM files "
                    "that match"
                ) from exc
        return context

    def setting(self, name: str) -> str:
        """Return how an [mqtt] setting is named to users: its key and its environment variable."""
        return f"mqtt.{name} ({self.env_prefix}MQTT_{name.upper()})"


def broker_target(section: MqttSection, env_prefix: str = "STREETSENSE_") -> BrokerTarget:
    """Parse and check `[mqtt]` settings; the password is read later, by `password()`.

    Args:
        section: the `[mqtt]` settings (server or agent).
        env_prefix: the prefix of the settings' environment variables, named in errors.

    Raises:
        ConfigError: the URL or a setting is wrong; the message names the key and the fix.
    """
    key = f"mqtt.url ({env_prefix}MQTT_URL)"
    scheme, username, endpoints, path = parse_url(section.url, key)
    if section.protocol not in PROTOCOLS:
        raise ConfigError(
            f"mqtt.protocol ({env_prefix}MQTT_PROTOCOL) = {section.protocol!r} must be 5 or "
            '3.1.1 ("3.1.1" for brokers without MQTT 5)'
        )
    if username and section.username and username != section.username:
        raise ConfigError(
            f"{key} names user {username!r} but mqtt.username ({env_prefix}MQTT_USERNAME) is "
            f"{section.username!r}; give the user in one place"
        )
    target = BrokerTarget(
        scheme=scheme,
        endpoints=endpoints,
        protocol=section.protocol,
        username=username or section.username,
        password_file=section.password_file,
        password_env=f"{env_prefix}MQTT_PASSWORD",
        ca_file=section.ca_file,
        cert_file=section.cert_file,
        key_file=section.key_file,
        websocket_path=path,
        env_prefix=env_prefix,
    )
    _check_tls_settings(target, key)
    if len(set(endpoints)) < len(endpoints):
        raise ConfigError(
            f"{key} = {section.url!r} names a broker twice; list each node of the cluster once"
        )
    return target


class Failover:
    """Which node of the broker list each connection attempt of a client goes to.

    The first attempt goes to a node chosen by a stable hash of the client id, so that a fleet
    given one list does not all land on the first node. A client reconnects only after a
    failure (a refused connection or a lost link), so every later attempt goes to the next
    node of the list (after the last, the first again). Not thread-safe: one network thread
    uses it.
    """

    def __init__(self, target: BrokerTarget, client_id: str = "") -> None:
        self.target = target
        self.endpoints = target.endpoints
        self._index = zlib.crc32(client_id.encode()) % len(self.endpoints) if client_id else 0
        self.attempts = 0

    @property
    def endpoint(self) -> Endpoint:
        """The node of the latest attempt (before any, the one the first goes to)."""
        return self.endpoints[self._index]

    def next_attempt(self) -> Endpoint:
        """Return the node to try now: the start node first, then the next one each time."""
        if self.attempts:
            self._index = (self._index + 1) % len(self.endpoints)
        self.attempts += 1
        return self.endpoint

    def where(self) -> str:
        """Name the node of the latest attempt as a URL without credentials, for logs."""
        return f"{self.target.scheme}://{self.endpoint}{self.target.websocket_path}"


def _check_tls_settings(target: BrokerTarget, key: str) -> None:
    given = [
        name
        for name in ("ca_file", "cert_file", "key_file")
        if getattr(target, name) and not target.tls
    ]
    if given:
        secure = "wss" if target.transport == "websockets" else "mqtts"
        names = ", ".join(target.setting(name) for name in given)
        raise ConfigError(
            f"{names} set, but {key} uses {target.scheme}://, which is plain text: use "
            f"{secure}://{target.endpoint.host}:{SCHEMES[secure].port} for TLS, or clear them"
        )
    if target.password_file and not target.username:
        raise ConfigError(
            f"{target.setting('password_file')} is set without {target.setting('username')}: the "
            "password would never be sent; set the user name too"
        )
    if target.key_file and not target.cert_file:
        raise ConfigError(
            f"{target.setting('key_file')} is set without {target.setting('cert_file')}: give the "
            "client certificate too, or clear both"
        )


def parse_url(url: str, key: str = "mqtt.url") -> tuple[str, str, tuple[Endpoint, ...], str]:
    """Split a broker URL into scheme, user name, endpoints and WebSocket path.

    Raises:
        ConfigError: the URL is malformed; the message names `key` and shows a valid form.
    """
    if not url.strip():
        raise ConfigError(f"{key} is empty; set it, e.g. {_EXAMPLE}")
    scheme, separator, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in SCHEMES:
        raise ConfigError(
            f"{key} = {url!r} must start with one of {', '.join(f'{s}://' for s in SCHEMES)} "
            f"(e.g. {_EXAMPLE})"
        )
    if any(mark in rest for mark in "?#"):
        raise ConfigError(
            f"{key} = {url!r} has a query or fragment; TLS and credentials are separate "
            "settings (mqtt.ca_file, mqtt.username, mqtt.password_file)"
        )
    authority, slash, path = rest.partition("/")
    username, hosts = _split_user(authority, url, key)
    endpoints = tuple(_endpoint(part, SCHEMES[scheme].port, url, key) for part in hosts.split(","))
    transport = SCHEMES[scheme].transport
    if transport == "tcp" and path:
        raise ConfigError(f"{key} = {url!r}: a path only makes sense for ws:// and wss://")
    websocket_path = f"/{path}" if slash and path else DEFAULT_WEBSOCKET_PATH
    return scheme, username, endpoints, websocket_path if transport == "websockets" else ""


def _split_user(authority: str, url: str, key: str) -> tuple[str, str]:
    userinfo, at, hosts = authority.rpartition("@")
    if not at:
        return "", authority
    user, colon, _password = userinfo.partition(":")
    if colon:
        raise ConfigError(
            f"{key} carries a password; put it in mqtt.password_file (or the PASSWORD "
            "environment variable), never in the URL: URLs end up in logs and `config show`"
        )
    if not user:
        raise ConfigError(f"{key} = {url!r} has an empty user name before '@'")
    return user, hosts


def _endpoint(text: str, default_port: int, url: str, key: str) -> Endpoint:
    text = text.strip()
    if text.startswith("["):  # an IPv6 literal
        host, bracket, port_text = text[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise ConfigError(f"{key} = {url!r}: malformed IPv6 address {text!r}")
        port_text = port_text[1:]
    else:
        host, _colon, port_text = text.partition(":")
    if not host:
        raise ConfigError(f"{key} = {url!r} names no host; e.g. {_EXAMPLE}")
    if not _HOST.fullmatch(host):
        raise ConfigError(f"{key} = {url!r}: {host!r} is not a host name or IP address")
    if not port_text:
        return Endpoint(host, default_port)
    if not port_text.isdigit() or not 0 < int(port_text) <= 65_535:
        raise ConfigError(f"{key} = {url!r}: port {port_text!r} is not a TCP port (1-65535)")
    return Endpoint(host, int(port_text))


def connect_error(
    error: BaseException, target: BrokerTarget, endpoint: Endpoint | None = None
) -> str:
    """Say why connecting to a broker failed and what fixes it (for logs and doctor).

    Args:
        error: what the connection attempt raised.
        target: the broker settings.
        endpoint: the node that was tried (default: the first of the list).
    """
    endpoint = endpoint or target.endpoint
    where = f"{target.scheme}://{endpoint}"
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"{where}: the broker's certificate is not trusted ({error.verify_message}); set "
            f"{target.setting('ca_file')} to the CA that signed it, and give a host in mqtt.url "
            "that the certificate names"
        )
    if isinstance(error, ssl.SSLError):
        said = getattr(error, "reason", None) or error
        return (
            f"{where}: TLS failed ({said}); is it a TLS listener? Use mqtt:// for a plain one, "
            "or check the client certificate and key"
        )
    if isinstance(error, ConnectionRefusedError):
        return f"{where} refused the connection: start the broker, or fix the port in mqtt.url"
    if isinstance(error, socket.gaierror):
        return f"{where}: {endpoint.host!r} does not resolve ({error}); fix mqtt.url or DNS"
    if isinstance(error, TimeoutError):
        return f"{where} did not answer in time: check the address and the firewall"
    return f"{where} cannot be reached: {error}"


def configure_client(client: MqttClient, target: BrokerTarget) -> None:
    """Give a paho-mqtt client the target's credentials, TLS context and WebSocket path.

    The client must have been created with `transport=target.transport`.

    Raises:
        ConfigError: a TLS or password file cannot be read; the message names the setting.
    """
    if target.username:
        client.username_pw_set(target.username, target.password())
    context = target.ssl_context()
    if context is not None:
        client.tls_set_context(context)
    if target.transport == "websockets":
        client.ws_set_options(path=target.websocket_path)


def use_password(client: MqttClient, target: BrokerTarget, password: str | None) -> None:
    """Give a configured client the password for its next connection (the edge agent's, from
    its credential store, which a rotation changes between connections)."""
    client.username_pw_set(target.username, password)
