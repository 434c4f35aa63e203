"""An in-process MQTT 3.1.1 broker (amqtt) for the demo, on its own thread and event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Final

from streetsense.demo.ports import free_port
from streetsense.errors import ServiceUnavailableError

log = logging.getLogger(__name__)
START_TIMEOUT_S: Final = 15.0
STOP_TIMEOUT_S: Final = 10.0
DRAIN_S: Final = 2.0


class SnapshotDict(dict[Any, Any]):
    """A dict whose iteration walks a copy of its keys or items, taken when it starts."""

    def __iter__(self) -> Iterator[Any]:
        return iter(list(super().keys()))

    def keys(self) -> Any:  # a list: a view would follow the dict as it changes
        return list(super().keys())

    def items(self) -> Any:
        return list(super().items())

    def values(self) -> Any:
        return list(super().values())


def contain_subscription_race(broker: Any) -> None:
    """Make amqtt's broker iterate its subscriptions over a snapshot.

    amqtt 0.12 walks `Broker._subscriptions` with an `await` inside the loop: on each CONNECT
    (to send the retained messages of every filter) and for each broadcast. A client that
    subscribes to a new filter meanwhile grows the dict, and the connecting client's handler
    dies with "RuntimeError: dictionary changed size during iteration" (a traceback on the
    demo's first screen: the backfill leaves hundreds of retained acks, then the real agents
    connect and subscribe at once), and the client is taken over when it reconnects.
    tests/demo/test_embedded_services.py reproduces it and fails without this.
    """
    subscriptions = getattr(broker, "_subscriptions", None)  # amqtt 0.12's private state
    if not isinstance(subscriptions, dict):
        raise RuntimeError(
            "this amqtt keeps its subscriptions differently from the tested 0.12; install "
            "the version in constraints.txt"
        )
    broker._subscriptions = SnapshotDict(subscriptions)


class EmbeddedBroker:
    """amqtt on 127.0.0.1: MQTT 3.1.1 only, anonymous, no `$share` (clients must not use it)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        """The mqtt:// URL children connect to."""
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        """Start the broker thread and wait until it listens.

        Raises:
            ServiceUnavailableError: amqtt is missing or could not bind its port.
        """
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="demo-broker", daemon=True)
        self._thread.start()
        started: Future[None] = asyncio.run_coroutine_threadsafe(self._start(), loop)
        try:
            started.result(START_TIMEOUT_S)
        except (OSError, TimeoutError, ImportError, RuntimeError) as exc:
            self._stop_loop()
            raise ServiceUnavailableError(
                f"cannot start the demo MQTT broker on {self.host}:{self.port}: {exc}. Fix: "
                "install the embedded extra (pip install 'streetsense[embedded]') or set "
                "STREETSENSE_MQTT_URL to a running broker"
            ) from exc
        log.info("demo MQTT broker (amqtt) listening on %s", self.url)
        return self

    async def _start(self) -> None:
        with warnings.catch_warnings():
            # amqtt warns about its own deprecated config fields on import
            warnings.simplefilter("ignore", DeprecationWarning)
            from amqtt.broker import Broker  # noqa: PLC0415  (optional dependency)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        for noisy in ("amqtt", "transitions"):
            # their INFO lines describe every connection and state change: too much for a demo
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._broker = Broker(config)
        contain_subscription_race(self._broker)
        await self._broker.start()

    def stop(self) -> None:
        """Shut the broker down and end its thread (idempotent)."""
        if self._loop is None:
            return
        if self._broker is not None:
            stopped = asyncio.run_coroutine_threadsafe(self._shutdown(self._broker), self._loop)
            try:
                stopped.result(STOP_TIMEOUT_S)
            except (TimeoutError, RuntimeError) as exc:
                log.warning("demo MQTT broker did not shut down cleanly: %s", exc)
            self._broker = None
        self._stop_loop()

    @staticmethod
    async def _shutdown(broker: Any) -> None:
        # Clients that have just said goodbye are let go first: amqtt's shutdown leaves the
        # sockets of connections it is still handling open (unclosed-socket warnings).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_S
        while loop.time() < deadline and any(
            session.transitions.state == "connected" for session, _ in broker.sessions.values()
        ):
            await asyncio.sleep(0.05)
        handlers = [handler for _, handler in broker.sessions.values()]
        await broker.shutdown()
        for handler in handlers:
            # amqtt 0.12 drains before closing a connection's writer: a peer that reset the
            # connection makes the drain raise, and the socket is never closed.
            stream = getattr(getattr(handler, "writer", None), "_writer", None)
            if isinstance(stream, asyncio.StreamWriter) and not stream.is_closing():
                stream.close()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)
        if not loop.is_running():
            loop.close()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
