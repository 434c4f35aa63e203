"""Real receivers for delivery tests: an HTTP webhook endpoint and an SMTP server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from alerts.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


class WebhookReceiver:
    """An HTTP server on a fixed port that checks signatures and keeps what it received.

    `start()` and `stop()` can be called repeatedly: a receiver that is down refuses connections.
    `failing` makes it answer 503 while it is up.
    """

    def __init__(self, port: int, secret: bytes) -> None:
        self.port = port
        self.secret = secret
        self.received: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.failing = False
        self.arrived = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = verify(
                    receiver.secret,
                    self.headers.get(TIMESTAMP_HEADER, ""),
                    body,
                    self.headers.get(SIGNATURE_HEADER, ""),
                )
                if receiver.failing or not ok:
                    receiver.bad_signatures += 0 if ok else 1
                    self.send_response(503 if ok else 401)
                    self.end_headers()
                    return
                with receiver.arrived:
                    receiver.received.append(
                        {"delivery": self.headers[DELIVERY_HEADER], **json.loads(body)}
                    )
                    receiver.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class MailBox:
    """An aiosmtpd server keeping the messages it accepts."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[bytes] = []
        self._controller: Controller | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        del server, session
        assert isinstance(envelope.content, bytes)
        self.messages.append(envelope.content)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
