"""E-mail notifications over SMTP (the standard library's client: it reports exactly which
recipient or command failed, which the outbox keeps; a notification library hides that)."""

from __future__ import annotations

import json
import os
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from alerts.webhook import DeliveryError


def render(payload: Mapping[str, Any], outbox_id: int, sender: str, to: list[str]) -> EmailMessage:
    """Return the message of one notification: its title as subject, subjects listed."""
    message = EmailMessage()
    message["Subject"] = f"[streetsense] {payload['title']}"
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(usegmt=True)
    # The same outbox row always gets the same id: mail systems drop a resend as a duplicate.
    message["Message-ID"] = make_msgid(idstring=f"alert-{outbox_id}", domain="streetsense")
    message["X-Streetsense-Delivery"] = str(outbox_id)
    lines = [str(payload["title"]), ""]
    for subject in payload.get("subjects", []):
        lines.append(f"- {subject['summary']} (since {subject['since']})")
    if payload.get("more"):
        lines.append(f"... and {payload['more']} more")
    lines += ["", "Details (JSON):", json.dumps(payload, indent=1)]
    message.set_content("\n".join(lines))
    return message


def send(
    options: Mapping[str, Any], payload: Mapping[str, Any], outbox_id: int, timeout_s: float
) -> str:
    """Send one notification; return a note of refused recipients ('' when none).

    Raises:
        DeliveryError: nothing was accepted; the message has the server's answer.
    """
    to = list(options["to"])
    message = render(payload, outbox_id, str(options["sender"]), to)
    host, port = str(options["host"]), int(options.get("port", 25))
    try:
        with smtplib.SMTP(host, port, timeout=timeout_s) as client:
            if options.get("starttls", False):
                client.starttls(context=ssl.create_default_context())
            if options.get("username"):
                password = os.environ.get(str(options.get("password_env", "")), "")
                client.login(str(options["username"]), password)
            refused = client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {host}:{port}: {exc}") from exc
    # Some recipients took it: sending again would repeat it to them, so it counts as sent.
    return f"refused by the server: {sorted(refused)}" if refused else ""
