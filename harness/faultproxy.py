"""A small TCP fault proxy: forwards to a target, or black-holes traffic (a half-open link)."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from typing import Final

_CHUNK: Final = 65_536


class FaultProxy:
    """Listen on a free loopback port and forward every connection to `target`.

    `blackhole()` keeps every socket open but silently discards what either side sends, as a
    dead cellular link does: no RST, no FIN, nothing. `restore()` forwards again (new
    connections; the black-holed ones stay dead, as after a real outage).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._pairs: dict[socket.socket, tuple[socket.socket, bool]] = {}  # sock -> (peer, dead)
        self._holing = False
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The mqtt:// URL that goes through the proxy."""
        return f"mqtt://127.0.0.1:{self.port}"

    def blackhole(self) -> None:
        """Discard all traffic from now on, on every open and new connection."""
        with self._lock:
            self._holing = True
            self._pairs = {sock: (peer, True) for sock, (peer, _dead) in self._pairs.items()}

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._holing = False

    def close(self) -> None:
        """Stop the proxy and close every socket."""
        self._closing.set()
        self._thread.join(5)
        for sock in list(self._pairs):
            sock.close()
        self._listener.close()

    def _run(self) -> None:
        while not self._closing.is_set():
            for key, _events in self._selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                else:
                    self._forward(sock)

    def _accept(self) -> None:
        client, _address = self._listener.accept()
        with self._lock:
            holing = self._holing
        try:
            upstream = socket.create_connection(self.target, timeout=2)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ)
        with self._lock:
            self._pairs[client] = (upstream, holing)
            self._pairs[upstream] = (client, holing)

    def _forward(self, sock: socket.socket) -> None:
        if sock.fileno() == -1:
            return  # closed with its pair earlier in this round of events
        try:
            data = sock.recv(_CHUNK)
        except OSError:
            data = b""
        with self._lock:
            peer, dead = self._pairs.get(sock, (None, True))
        if not data and dead:
            self._forget(sock)  # a dead link carries no FIN: the other side never hears of it
            return
        if not data:
            self._drop(sock)
            return
        if dead or peer is None:
            return  # black-holed: swallowed, no error on either side
        try:
            peer.sendall(data)
        except OSError:
            self._drop(sock)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._pairs.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        sock.close()

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            peer, _dead = self._pairs.pop(sock, (None, True))
            if peer is not None:
                self._pairs.pop(peer, None)
        for one in (sock, peer):
            if one is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(one)
                one.close()
