"""The kernel's one reading of `mqtt.url`, TLS and credentials (streetsense/broker.py)."""

from __future__ import annotations

import socket
import ssl
from collections import Counter
from pathlib import Path

import pytest

from edge.config import load_config
from streetsense.broker import (
    BrokerTarget,
    Endpoint,
    Failover,
    broker_target,
    connect_error,
    parse_url,
)
from streetsense.broker_reasons import explain, reason
from streetsense.config import MqttSettings, load_settings
from streetsense.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "scheme", "endpoints", "path"),
    [
        ("mqtt://broker", "mqtt", [("broker", 1883)], ""),
        ("tcp://broker:1884", "tcp", [("broker", 1884)], ""),
        ("mqtts://broker", "mqtts", [("broker", 8883)], ""),
        ("ssl://broker:8884", "ssl", [("broker", 8884)], ""),
        ("ws://broker:9001", "ws", [("broker", 9001)], "/mqtt"),
        ("wss://broker/ws/mqtt", "wss", [("broker", 443)], "/ws/mqtt"),
        ("MQTT://[::1]:1885", "mqtt", [("::1", 1885)], ""),
        ("mqtt://[fe80::1]", "mqtt", [("fe80::1", 1883)], ""),
        ("mqtt://n1:1883,n2:1884,n3", "mqtt", [("n1", 1883), ("n2", 1884), ("n3", 1883)], ""),
    ],
)
def test_urls_parse_to_scheme_endpoints_and_path(
    url: str, scheme: str, endpoints: list[tuple[str, int]], path: str
) -> None:
    parsed_scheme, user, parsed, ws_path = parse_url(url)
    assert parsed_scheme == scheme
    assert user == ""
    assert parsed == tuple(Endpoint(host, port) for host, port in endpoints)
    assert ws_path == path


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "is empty"),
        ("broker:1883", "must start with one of mqtt://"),
        ("http://broker", "must start with one of mqtt://"),
        ("mqtt://", "names no host"),
        ("mqtt://broker:0", "not a TCP port"),
        ("mqtt://broker:70000", "not a TCP port"),
        ("mqtt://broker:x", "not a TCP port"),
        ("mqtt://[::1", "malformed IPv6"),
        ("mqtt://broker/path", "only makes sense for ws"),
        ("mqtts://broker?cafile=x", "query or fragment"),
        ("mqtt://user:secret@broker", "never in the URL"),
        ("mqtt://@broker", "empty user name"),
        ("mqtt://n1,,n2", "names no host"),
        ("mqtt://bro ker:1883", "not a host name"),
    ],
)
def test_malformed_urls_name_the_key_and_the_fix(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.url") as caught:
        parse_url(url, "mqtt.url")
    assert message in str(caught.value)
    assert "secret" not in str(caught.value)


def target(**values: str) -> BrokerTarget:
    """Return the target of server settings with these [mqtt] values."""
    return broker_target(MqttSettings(**values))  # type: ignore[arg-type]


def test_tls_follows_the_scheme_for_every_client() -> None:
    assert target(url="ssl://broker").tls
    assert target(url="mqtts://broker").tls
    assert target(url="wss://broker").tls
    assert not target(url="mqtt://broker").tls
    assert not target(url="tcp://broker").tls
    assert target(url="ws://broker").transport == "websockets"
    assert target(url="ssl://broker").transport == "tcp"


def test_tls_files_with_a_plain_url_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file .* plain text: use mqtts://broker:8883"):
        target(url="mqtt://broker", ca_file="/etc/ca.pem")
    with pytest.raises(ConfigError, match=r"use wss://broker:443"):
        target(url="ws://broker", cert_file="/etc/c.pem")
    with pytest.raises(ConfigError, match=r"mqtt\.key_file .* without .*mqtt\.cert_file"):
        target(url="mqtts://broker", key_file="/etc/k.pem")


def test_a_password_file_without_a_user_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"password_file .* without mqtt\.username"):
        target(url="mqtt://broker", password_file="/etc/pw")


def test_a_list_of_brokers_is_a_cluster_each_node_named_once() -> None:
    cluster = target(url="mqtt://n1:1883,n2:1883,n3:1883")
    assert [str(e) for e in cluster.endpoints] == ["n1:1883", "n2:1883", "n3:1883"]
    assert cluster.describe() == "mqtt://n1:1883,n2:1883,n3:1883"
    with pytest.raises(ConfigError, match="names a broker twice"):
        target(url="mqtt://n1:1883,n2,n1")


def test_failover_moves_to_the_next_node_after_each_failure_and_wraps() -> None:
    cluster = target(url="mqtts://n1,n2:8884,n3")
    failover = Failover(cluster)
    tried = [str(failover.next_attempt()) for _ in range(5)]
    assert tried == ["n1:8883", "n2:8884", "n3:8883", "n1:8883", "n2:8884"]
    assert failover.where() == "mqtts://n2:8884"
    alone = Failover(target(url="mqtt://b"), "gw-1")
    assert {str(alone.next_attempt()) for _ in range(3)} == {"b:1883"}


def test_a_fleet_given_one_list_spreads_over_the_nodes_the_same_way_each_start() -> None:
    cluster = target(url="mqtt://n1,n2,n3")
    first = {f"gw-{n}": str(Failover(cluster, f"gw-{n}").next_attempt()) for n in range(300)}
    per_node = Counter(first.values())
    assert set(per_node) == {"n1:1883", "n2:1883", "n3:1883"}
    assert min(per_node.values()) > 60  # about 100 each
    assert first["gw-7"] == str(Failover(cluster, "gw-7").next_attempt())  # stable


def test_user_in_the_url_or_the_setting_but_not_both_different() -> None:
    assert target(url="mqtt://dev-a@broker").username == "dev-a"
    assert target(url="mqtt://dev-a@broker", username="dev-a").username == "dev-a"
    with pytest.raises(ConfigError, match="give the user in one place"):
        target(url="mqtt://dev-a@broker", username="dev-b")


def test_protocol_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.protocol .* must be 5 or 3\.1\.1"):
        target(url="mqtt://broker", protocol="4")
    assert not target(url="mqtt://broker", protocol="3.1.1").v5


def test_settings_are_checked_at_load_with_the_variable_named() -> None:
    with pytest.raises(ConfigError, match=r"STREETSENSE_MQTT_URL\) = 'ssl//broker'"):
        load_settings(None, environ={"STREETSENSE_MQTT_URL": "ssl//broker"})
    assert load_settings(None, environ={}).mqtt.url == ""  # empty: the demo's broker


def test_the_agent_config_is_checked_with_its_own_variables(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[device]\nsite = "s1"\nid = "d1"\n[mqtt]\nurl = "mqtt://b"\nca_file = "x"\n')
    with pytest.raises(ConfigError, match=r"STREETSENSE_EDGE_MQTT_CA_FILE"):
        load_config(path, environ={})


def test_password_from_file_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\nignored\n")
    assert target(url="mqtt://u@b", password_file=str(secret)).password() == "s3cret"
    monkeypatch.setenv("STREETSENSE_MQTT_PASSWORD", "from-env")
    assert target(url="mqtt://b").password() == "from-env"
    secret.write_text("\n")
    with pytest.raises(ConfigError, match=r"mqtt\.password_file .* is empty"):
        target(url="mqtt://u@b", password_file=str(secret)).password()
    with pytest.raises(ConfigError, match=r"mqtt\.password_file .* cannot be read"):
        target(url="mqtt://u@b", password_file=str(tmp_path / "missing")).password()


def test_tls_context_checks_the_broker_and_names_bad_files(tmp_path: Path) -> None:
    context = target(url="mqtts://b").ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert target(url="mqtt://b").ssl_context() is None
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file .* cannot be loaded"):
        target(url="mqtts://b", ca_file=str(tmp_path / "missing.pem")).ssl_context()
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"mqtt\.cert_file .* cannot be loaded"):
        target(url="mqtts://b", cert_file=str(junk)).ssl_context()


def test_describe_never_shows_credentials() -> None:
    described = target(url="wss://dev-a@broker:8443/mqtt").describe()
    assert described == "wss://broker:8443/mqtt"


def test_reason_codes_are_named_with_their_own_fix() -> None:
    assert reason(132).name == "unsupported protocol version"
    assert "mqtt.protocol" in reason(132).fix
    assert "password" not in reason(132).fix
    assert "mqtt.password_file" in reason(134).fix
    assert reason(135).name == "not authorized"
    assert "ACL" in reason(135).fix
    # an MQTT 3.1.1 broker's return code 1 is the same refusal as 132
    assert explain(1, v311_connack=True) == explain(132)
    assert "client_id" in reason(0x8E).fix  # session taken over
    assert reason(0x9E).name == "shared subscriptions not supported"
    assert reason(0xFE).name == "reason code 254"


def test_connect_errors_say_what_to_fix() -> None:
    tls = target(url="mqtts://broker:8883")
    assert "start the broker" in connect_error(ConnectionRefusedError(111, "refused"), tls)
    assert "does not resolve" in connect_error(socket.gaierror(-2, "Name unknown"), tls)
    wrong_port = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    assert "is it a TLS listener? Use mqtt://" in connect_error(wrong_port, tls)
    assert "did not answer in time" in connect_error(TimeoutError(), tls)
    cluster = target(url="mqtt://n1,n2:1884")
    said = connect_error(ConnectionRefusedError(111, "refused"), cluster, cluster.endpoints[1])
    assert said.startswith("mqtt://n2:1884 refused the connection")
