"""The broker side of ingest: a persistent MQTT session, manual acks, end-to-end acks.

With several brokers in `mqtt.url` (the nodes of a cluster that keeps sessions, such as NATS
with JetStream), each reconnect goes to the next node (streetsense.broker.Failover): the
session, and the messages it holds unacknowledged, are the cluster's, so ingest resumes them
wherever it lands.
"""

from __future__ import annotations

import logging
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from importlib.metadata import version
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.inbox import Inbox, Message
from ingest.metrics import IngestMetrics
from streetsense.backoff import Backoff
from streetsense.broker import Failover, configure_client, connect_error
from streetsense.broker_reasons import explain
from streetsense.config import Settings
from streetsense.topics import Channel, Topics

log = logging.getLogger(__name__)
SESSION_EXPIRY_S: Final = 14 * 86_400  # as long as the broker keeps the session
_RECV_CHUNK: Final = 256 * 1024
_PUBACK_COMMAND: Final = 0x40
_PUBLISH_COMMAND: Final = 0x30
_PUBACK: Final = struct.Struct("!BBH")  # command, remaining length 2, packet id
_U16: Final = struct.Struct("!H")


# topic (bytes), payload, packet id, QoS, retain
FastHandler = Callable[[bytes, bytes, int, int, bool], None]
# The paho-mqtt internals the fast path overrides or reads; pyproject pins the range tested
# (tests/ingest/test_fast_path.py fails when the fast path is no longer taken).
PAHO_INTERNALS: Final = (
    "_sock_recv",
    "_packet_read",
    "_handle_publish",
    "_in_packet",
    "_msgtime_mutex",
    "_last_bytes_received",
    "_protocol",
    "_packet_queue",
    "_reset_sockets",
    "_reconnect_wait",
    "_sock",
)


class BufferedClient(mqtt.Client):
    """paho's client with a lean receive path for QoS 0/1 PUBLISH packets.

    Profiling showed paho's network thread spending most of its time per message on small
    recv() calls (two or three per packet), on MQTT 5 property objects and on topic matching
    for per-topic callbacks we do not use. This client reads the socket in large chunks and
    hands each PUBLISH straight to `fast_handler`. It relies on paho 2.x internals
    (PAHO_INTERNALS); without one of them it says so and stays on paho's own path.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._fast_handler: FastHandler | None = None
        self.missing_internals = [name for name in PAHO_INTERNALS if not hasattr(self, name)]
        # PUBLISH packets taken from the read buffer in place, and one at a time from paho's
        # reader: together, every message the fast path delivered
        self.taken_in_place = 0
        self.taken_from_paho = 0
        self.reconnect_backoff = Backoff(1.0, 30.0)
        self.stopping = threading.Event()  # ends a reconnect wait at once
        self.failover: Failover | None = None  # set by `aim`
        # QoS 1 message ids of other partitions' messages, acknowledged after each read
        self.skipped: list[int] = []
        self._connect_options: dict[str, Any] = {}

    @property
    def fast_handler(self) -> FastHandler | None:
        """Where PUBLISH packets go without paho's message objects; None: paho's on_message."""
        return self._fast_handler

    @fast_handler.setter
    def fast_handler(self, handler: FastHandler | None) -> None:
        if handler is not None and self.missing_internals:
            log.warning(
                "paho-mqtt %s lacks %s: ingest receives through paho's slower path; install "
                "the paho-mqtt range pyproject.toml pins",
                version("paho-mqtt"),
                ", ".join(self.missing_internals),
            )
            handler = None
        self._fast_handler = handler

    def _handle_publish(self) -> MQTTErrorCode:
        command = self._in_packet["command"]
        packet = self._in_packet["packet"]
        handler = self._fast_handler
        fields = None if handler is None else self._publish_fields(command, packet, 0, len(packet))
        if handler is None or fields is None:
            return super()._handle_publish()  # QoS 2 or a topic alias: paho's way
        self.taken_from_paho += 1
        handler(*fields)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packet_read(self) -> MQTTErrorCode:
        # Whole PUBLISH packets waiting in the buffer are taken in place, many per call;
        # paho's reader costs per packet a dict reset, a mutex, byte-by-byte length reads and
        # copies. Anything else, or a packet cut by the end of the buffer, goes paho's way.
        handler = self._fast_handler
        if handler is not None and self._in_packet["command"] == 0 and self._take_buffered(handler):
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._packet_read()

    def _take_buffered(self, handler: FastHandler) -> bool:
        """Deliver the complete QoS 0/1 PUBLISH packets at the head of the buffer."""
        buffer, end = self._rbuf, len(self._rbuf)
        taken = False
        while self._rpos < end:
            position = self._rpos
            command = buffer[position]
            if command & 0xF0 != _PUBLISH_COMMAND:
                break
            try:
                length, start = _varint(buffer, position + 1)
                stop = start + length
                fields = self._publish_fields(command, buffer, start, stop) if stop <= end else None
            except (IndexError, ValueError, struct.error):
                fields = None  # malformed: paho's reader refuses it with its own error
            if fields is None:
                break
            self._rpos, taken = stop, True
            self.taken_in_place += 1
            handler(*fields)
        if taken:
            with self._msgtime_mutex:
                self._last_bytes_received = time.monotonic()  # paho's keepalive clock
        return taken

    def _publish_fields(
        self, command: int, packet: bytes | bytearray, start: int, stop: int
    ) -> tuple[bytes, bytes, int, int, bool] | None:
        """Return a PUBLISH as the handler takes it; None for what paho must handle."""
        qos = (command & 0x06) >> 1
        (length,) = _U16.unpack_from(packet, start)
        if qos == 2 or length == 0:
            return None
        position = start + 2 + length
        topic = packet[start + 2 : position]
        mid = 0
        if qos:
            (mid,) = _U16.unpack_from(packet, position)
            position += 2
        if self._protocol == mqtt.MQTTv5:
            properties_length, position = _varint(packet, position)
            position += properties_length
        if position > stop:
            raise ValueError("PUBLISH header runs past the packet")
        return bytes(topic), bytes(packet[position:stop]), mid, qos, bool(command & 0x01)

    def close_sockets(self) -> None:
        """Close the broker socket and paho's wake-up pair now, not in __del__ at collection."""
        self._reset_sockets()

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(_RECV_CHUNK)
            if not data:
                return b""
            self._rbuf, self._rpos = data, 0
        end = min(self._rpos + bufsize, len(self._rbuf))
        chunk = self._rbuf[self._rpos : end]
        self._rpos = end
        return chunk

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read packets until the buffer is drained (select() only sees the socket)."""
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._rpos < len(self._rbuf):
            if self._sock is None:
                break
            rc = super().loop_read(max_packets)
        if self.skipped:
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self.ack_many(self.skipped)  # one write for the read's other-part messages
            self.skipped = []  # else: ids of a lost connection, redelivered on the next
        return rc

    def ack_many(self, mids: list[int]) -> None:
        """Queue PUBACKs for QoS 1 messages as one write (paho's ack() writes one per call)."""
        if mids:
            packet = b"".join(_PUBACK.pack(_PUBACK_COMMAND, 2, mid) for mid in mids)
            self._packet_queue(_PUBACK_COMMAND, packet, 0, 1)

    def aim(self, failover: Failover, keepalive: int, **options: Any) -> None:
        """Connect (from the network thread) to the failover's nodes with connect_async options."""
        self.failover = failover
        self._connect_options = {"keepalive": keepalive, **options}
        first = failover.endpoint
        self.connect_async(first.host, first.port, **self._connect_options)

    def reconnect(self) -> MQTTErrorCode:
        """Drop what the old socket left in the buffer, then connect to the next node."""
        self._rbuf, self._rpos = b"", 0
        self.skipped = []
        if self.failover is not None:
            # Every call after the first follows a failure: connect_async (public) re-aims the
            # client, which paho's host setter refuses while a reconnect is under way.
            endpoint = self.failover.next_attempt()
            self.connect_async(endpoint.host, endpoint.port, **self._connect_options)
        return super().reconnect()

    def _reconnect_wait(self) -> None:
        # paho doubles its delay in step; ours is jittered so restarted fleets spread out.
        self.stopping.wait(self.reconnect_backoff.next_delay())


def _varint(data: bytes | bytearray, position: int) -> tuple[int, int]:
    """Decode an MQTT variable byte integer; return (value, position after it)."""
    value = 0
    for shift in (0, 7, 14, 21):
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
    raise ValueError("malformed variable byte integer in a PUBLISH packet")


def default_client_id() -> str:
    """Return a client id stable across restarts of the same host's ingest."""
    return f"streetsense-ingest-{socket.gethostname()}"[:64]


class BrokerLink:
    """Subscribe, hand messages to the inbox, ack them after commit, publish device acks."""

    def __init__(
        self, settings: Settings, inbox: Inbox, metrics: IngestMetrics, client_id: str | None = None
    ) -> None:
        self.settings = settings
        self.inbox = inbox
        self.metrics = metrics
        self.topics = Topics(settings.mqtt.topic_prefix)
        self.target = settings.broker()
        self.v5 = self.target.v5
        self.generation = 0
        self.paho_messages = 0
        self.other_part = 0  # messages left to the other partitions' processes
        self.connected = threading.Event()
        self.partition = settings.partition()
        # each part keeps a session of its own: sharing one, a process would acknowledge (and
        # so drop) the messages of the other part
        base = client_id or settings.mqtt.client_id or default_client_id()
        self.client_id = base + self.partition.client_suffix
        self.client = self._client(self.client_id)
        paths = metrics.receive_path
        paths.labels("in_place").set_function(lambda: self.client.taken_in_place)
        paths.labels("paho_reader").set_function(lambda: self.client.taken_from_paho)
        paths.labels("paho_message").set_function(lambda: self.paho_messages)
        metrics.other_part.set_function(lambda: self.other_part)

    def _client(self, client_id: str) -> BufferedClient:
        client = BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
            clean_session=None if self.v5 else False,
            manual_ack=True,
            transport=self.target.transport,
        )
        configure_client(client, self.target)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.fast_handler = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    def start(self) -> None:
        """Connect in the background; paho's network thread reconnects on its own."""
        failover = Failover(self.target, self.client_id)
        keepalive = self.settings.mqtt.keepalive_s
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            properties.ReceiveMaximum = max(1, min(self.settings.ingest.receive_maximum, 65_535))
            self.client.aim(failover, keepalive, clean_start=False, properties=properties)
        else:
            self.client.aim(failover, keepalive)
        self.client.loop_start()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("the broker refused the connection: %s", explain(reason.value))
            return
        self.client.reconnect_backoff.reset()
        # Message ids are only valid on the connection that delivered them.
        self.generation += 1
        self.metrics.broker_connects.inc()
        group = self.settings.mqtt.shared_group if self.v5 else ""
        topic_filter = self.topics.subscription(group or None)
        if self.v5:
            client.subscribe(topic_filter, options=SubscribeOptions(qos=1))
        else:
            client.subscribe(topic_filter, qos=1)
        log.info(
            "connected to the broker at %s as %s (session present: %s), subscribing to %s%s",
            self.node(),
            self.client_id,
            getattr(flags, "session_present", "?"),
            topic_filter,
            "" if self.partition.whole else f", part {self.partition.label}",
        )

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        # paho calls this while handling the connect's OSError, and passes no error of its own
        error = sys.exc_info()[1] or OSError("unknown error")
        failover = self.client.failover
        endpoint = failover.endpoint if failover is not None else None
        log.error("cannot connect to the broker: %s", connect_error(error, self.target, endpoint))

    def node(self) -> str:
        """Name the broker node of the latest connection attempt, for logs."""
        failover = self.client.failover
        return failover.where() if failover is not None else self.target.describe()

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _properties: Any
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            log.error(
                "the broker refused the subscription: %s",
                "; ".join(explain(r.value) for r in reasons if r.is_failure),
            )
            return
        log.info("subscribed; ingesting")
        self.connected.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        self.connected.clear()
        log.warning(
            "disconnected from the broker at %s (%s); reconnecting with backoff%s",
            self.node(),
            explain(reason.value),
            " to the next node" if len(self.target.endpoints) > 1 else "",
        )

    def _other_part(self, topic: bytes, mid: int, qos: int) -> bool:
        """Acknowledge (after this read) a message another partition ingests; tell if it was."""
        if self.partition.owns(topic):
            return False
        self.other_part += 1
        if qos == 1:
            self.client.skipped.append(mid)
        return True

    def _on_publish(self, topic: bytes, payload: bytes, mid: int, qos: int, retain: bool) -> None:
        if not self.partition.whole and self._other_part(topic, mid, qos):
            return
        try:
            text = topic.decode()
        except UnicodeDecodeError:
            text = repr(topic)  # kept (and rejected) as the bytes it was
        self.inbox.put(Message(text, payload, mid, qos, retain, time.time(), self.generation))

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.paho_messages += 1  # QoS 2, topic aliases, or the fast path is off
        if not self.partition.whole and not self.partition.owns(msg._topic):
            self.other_part += 1
            if msg.qos:
                self.client.ack(msg.mid, msg.qos)
            return
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = repr(msg._topic)
        self.inbox.put(
            Message(
                topic,
                bytes(msg.payload),
                msg.mid,
                msg.qos,
                bool(msg.retain),
                time.time(),
                self.generation,
            )
        )

    def ack(self, messages: Iterable[Message]) -> int:
        """Acknowledge committed messages delivered on the current connection; return how many."""
        current = self.generation
        mids = [m.mid for m in messages if m.qos == 1 and m.generation == current]
        self.client.ack_many(mids)
        return len(mids)

    def publish_acks(self, acks: dict[str, tuple[str, bytes]]) -> None:
        """Publish each device's signed ack payload (retained, QoS 1)."""
        for device_id, (site, payload) in acks.items():
            topic = self.topics.device(site, device_id, Channel.ACK)
            self.client.publish(topic, payload, qos=1, retain=True)
        self.metrics.acks_published.inc(len(acks))

    def stop(self) -> None:
        """Disconnect; unacknowledged messages stay with the broker for the next session."""
        self.inbox.close()  # a network thread waiting for room would hold up loop_stop
        self.client.stopping.set()
        self.client.disconnect()
        self.client.loop_stop()
        self.client.close_sockets()
