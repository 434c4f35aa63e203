"""Clients that hold the feeds open: too many live streams or connections from one address or
in all, half-sent request heads (slowloris), clients that stop reading. Each is refused with a
429 problem document or dropped within a bounded time, and gives its slot back.

The attack that made this file (issue 14): one address held 10,000 live streams, and 900
clients that sent half their headers stayed connected past 60 s.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import httpx
import psycopg

from streetsense.config import Settings
from tests.feeds.clients import events
from tests.feeds.conftest import Server, feeds_settings

STREAM = "/v1/parking/stream"
HALF_HEAD = b"GET /v1/parking/lots HTTP/1.1\r\nHost: feeds\r\nAccept: application/json\r\n"
DEADLINE_S = 20.0  # what "bounded" means here: far above the timeouts set, far below forever


@contextmanager
def _stream(server: Server, local: str = "127.0.0.1") -> Iterator[httpx.Response]:
    """Open a live stream from `local` and read its first event (the snapshot)."""
    transport = httpx.HTTPTransport(local_address=local)
    with (
        httpx.Client(base_url=server.url, transport=transport, timeout=10) as client,
        client.stream("GET", STREAM) as response,
    ):
        received = events(response)  # kept: closing the reader would close the stream
        if response.status_code == 200:
            next(received)
        yield response


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {DEADLINE_S} s"
        time.sleep(0.05)


def _read_all(sock: socket.socket) -> bytes:
    """Read until the server closes (EOF or reset), at most DEADLINE_S."""
    sock.settimeout(DEADLINE_S)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def _assert_problem(response: httpx.Response, detail: str) -> None:
    response.read()
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert detail in response.json()["detail"]


def test_one_address_holds_at_most_its_share_of_live_streams(
    city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    server = start_server(feeds_settings(settings, streams_per_client=3, streams_max=0))
    with ExitStack() as held:
        for _ in range(3):
            assert held.enter_context(_stream(server)).status_code == 200
        with _stream(server) as fourth:
            _assert_problem(fourth, "this client address holds 3 live streams already")
        with _stream(server, local="127.0.0.2") as other_address:
            assert other_address.status_code == 200  # another client is not held back
        assert server.metric("streetsense_feeds_streams_refused_total", cap="per_client") == 1
    # Every stream gave its slot back when its client left.
    _wait_until(lambda: server.metric("streetsense_feeds_streams_open") == 0, "slots back")
    with _stream(server) as again:
        assert again.status_code == 200


def test_the_server_holds_at_most_its_total_of_live_streams(
    city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    server = start_server(feeds_settings(settings, streams_per_client=0, streams_max=2))
    with _stream(server) as first, _stream(server, local="127.0.0.2") as second:
        assert (first.status_code, second.status_code) == (200, 200)
        with _stream(server, local="127.0.0.3") as third:
            _assert_problem(third, "the server holds 2 live streams")


def test_half_sent_request_heads_are_dropped_within_the_header_timeout(
    city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    server = start_server(feeds_settings(settings, header_timeout_s=1.0, connections_per_client=0))
    host, port = "127.0.0.1", int(server.url.rsplit(":", 1)[1])
    with ExitStack() as held:
        silent = [held.enter_context(socket.create_connection((host, port))) for _ in range(20)]
        halves = [held.enter_context(socket.create_connection((host, port))) for _ in range(20)]
        for sock in halves:
            sock.sendall(HALF_HEAD)
        trickling = held.enter_context(socket.create_connection((host, port)))
        started = time.monotonic()
        for byte in HALF_HEAD:  # a byte at a time must not stretch the deadline
            try:
                trickling.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break  # the server has closed it: what is wanted
            time.sleep(0.05)  # the client's pace, not a wait for the server
        assert time.monotonic() - started < DEADLINE_S
        for sock in [*silent, *halves, trickling]:
            answer = _read_all(sock)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b"urn:streetsense:problem:request-timeout" in answer
    assert server.metric("streetsense_feeds_connections_dropped_total", reason="slow_head") == 41
    with server.client() as client:  # the server itself is fine
        assert client.get("/v1/parking/lots").status_code == 200


def test_a_kept_alive_connection_gets_a_new_head_deadline(
    city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    server = start_server(feeds_settings(settings, header_timeout_s=1.0, idle_timeout_s=60))
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(HALF_HEAD + b"\r\n")  # one whole request, kept alive
        sock.settimeout(DEADLINE_S)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        sock.sendall(HALF_HEAD)  # then half of a second one
        answer = _read_all(sock)
    assert b"HTTP/1.1 408 " in answer, answer[:200]


def test_one_address_holds_at_most_its_share_of_connections(
    city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    server = start_server(feeds_settings(settings, connections_per_client=5))
    address = ("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
    with ExitStack() as held:
        idle = [held.enter_context(socket.create_connection(address)) for _ in range(5)]
        with socket.create_connection(address) as sixth:
            answer = _read_all(sixth)
        assert answer.startswith(b"HTTP/1.1 429 "), answer[:200]
        assert b"retry-after: " in answer.lower()
        assert b"holds 5 connections already" in answer
        idle[0].close()
        _wait_until(
            lambda: server.metric("streetsense_feeds_connections_open") == 4, "a slot given back"
        )
        with server.client() as client:
            assert client.get("/v1/parking/lots").status_code == 200


def test_a_client_that_stops_reading_is_dropped(
    city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    server = start_server(feeds_settings(settings, write_timeout_s=1.0))
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
        # 9 MB it never reads (six 1.5 MB answers in a row): more than the kernel buffers
        # take, so the server's own buffer fills, then it gives up on the client.
        request = b"GET /docs/assets/swagger-ui-bundle.js HTTP/1.1\r\nHost: feeds\r\n\r\n"
        sock.sendall(request * 6)
        _wait_until(
            lambda: (
                server.metric("streetsense_feeds_connections_dropped_total", reason="slow_reader")
                == 1
            ),
            "the slow reader dropped",
        )
    _wait_until(lambda: server.metric("streetsense_feeds_connections_open") == 0, "slot back")


def test_a_stream_whose_client_left_gives_its_slot_back(
    city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    server = start_server(feeds_settings(settings, streams_per_client=1))
    for _ in range(3):  # each one leaves, so the next one is let in
        with _stream(server) as stream:
            assert stream.status_code == 200
        _wait_until(lambda: server.metric("streetsense_feeds_streams_open") == 0, "slot back")
