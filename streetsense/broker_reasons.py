"""What the broker's reason codes mean and what to do about each: one table for every client.

MQTT 5 reason codes (CONNACK, SUBACK, DISCONNECT; OASIS MQTT 5.0, section 2.4). An MQTT 3.1.1
broker answers CONNECT with return codes 1-5, which paho-mqtt and aiomqtt report as the MQTT 5
codes of the same meaning (1 is 132, "unsupported protocol version"); `explain` takes either.
"""

from __future__ import annotations

from typing import Final, NamedTuple


class Reason(NamedTuple):
    """A reason code's name and the fix an operator should try."""

    name: str
    fix: str


UNSUPPORTED_PROTOCOL: Final = 0x84
SHARED_NOT_SUPPORTED: Final = 0x9E
_CREDENTIALS: Final = (
    "check mqtt.username and mqtt.password_file (or the MQTT_PASSWORD variable) against the "
    "broker's password file"
)
_ACL: Final = "grant this user the topics in the broker's ACL (deploy/mosquitto/acl)"
_RETRY: Final = "retry later; the broker is overloaded or restarting"

REASONS: Final[dict[int, Reason]] = {
    0x80: Reason("unspecified error", "read the broker's log for the cause"),
    0x81: Reason("malformed packet", "upgrade the broker or this client; they disagree on MQTT"),
    0x82: Reason("protocol error", "upgrade the broker or this client; they disagree on MQTT"),
    0x83: Reason("implementation specific error", "read the broker's log for the cause"),
    0x84: Reason(
        "unsupported protocol version",
        'the broker does not speak this MQTT version: set mqtt.protocol = "3.1.1" for a broker '
        'without MQTT 5 (amqtt, Mosquitto before 1.6), or "5"',
    ),
    0x85: Reason(
        "client identifier not valid",
        "set mqtt.client_id to 1-23 letters and digits, or allow longer ids on the broker",
    ),
    0x86: Reason("bad user name or password", _CREDENTIALS),
    0x87: Reason(
        "not authorized",
        # Mosquitto answers a wrong password with this code, not with 0x86
        _CREDENTIALS + "; for a topic, " + _ACL,
    ),
    0x88: Reason("server unavailable", _RETRY),
    0x89: Reason("server busy", _RETRY),
    0x8A: Reason("banned", "ask the broker's operator why this client is banned"),
    0x8B: Reason("server shutting down", "wait for the broker to come back"),
    0x8C: Reason(
        "bad authentication method", "the broker wants another authentication; check its config"
    ),
    0x8D: Reason(
        "keep alive timeout",
        "the link went silent longer than mqtt.keepalive_s; check the network or raise it",
    ),
    0x8E: Reason(
        "session taken over",
        "another client connected with the same client id: give each process its own "
        "mqtt.client_id",
    ),
    0x8F: Reason("topic filter invalid", "check mqtt.topic_prefix and mqtt.shared_group"),
    0x90: Reason("topic name invalid", "check mqtt.topic_prefix"),
    0x93: Reason("receive maximum exceeded", "upgrade the client; it broke the broker's window"),
    0x95: Reason("packet too large", "raise the broker's message_size_limit or send less at once"),
    0x97: Reason("quota exceeded", "raise the broker's limits for this client, or send less"),
    0x99: Reason("payload format invalid", "the broker refused the payload's format"),
    0x9A: Reason("retain not supported", "use a broker that keeps retained messages"),
    0x9B: Reason("QoS not supported", "use a broker that supports QoS 1"),
    0x9C: Reason("use another server", "point mqtt.url at the server the broker names"),
    0x9D: Reason("server moved", "point mqtt.url at the broker's new address"),
    0x9E: Reason(
        "shared subscriptions not supported",
        "use a broker with MQTT 5 shared subscriptions (Mosquitto 2, EMQX, HiveMQ), or set "
        "mqtt.shared_group empty and run a single ingest",
    ),
    0x9F: Reason("connection rate exceeded", "slow down reconnects; " + _RETRY),
    0xA1: Reason("subscription identifiers not supported", "upgrade the broker"),
    0xA2: Reason("wildcard subscriptions not supported", "use a broker that allows '+' and '#'"),
}
# MQTT 3.1.1 CONNACK return codes and the MQTT 5 codes of the same meaning.
V311_CONNACK: Final = {1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}


def reason(code: int, *, v311_connack: bool = False) -> Reason:
    """Return the name and fix of a reason code (an MQTT 3.1.1 CONNACK code if so flagged)."""
    if v311_connack:
        code = V311_CONNACK.get(code, code)
    if code < 0x80:
        return Reason("success", "")
    return REASONS.get(code, Reason(f"reason code {code}", "read the broker's log for the cause"))


def explain(code: int, *, v311_connack: bool = False) -> str:
    """Return `name (code): fix`, for a log line or a doctor finding."""
    if v311_connack:
        code = V311_CONNACK.get(code, code)
    found = reason(code)
    return f"{found.name} ({code}): {found.fix}" if found.fix else f"{found.name} ({code})"
