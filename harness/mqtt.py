"""Closing paho clients in tests."""

from __future__ import annotations

import paho.mqtt.client as mqtt


def close_client(client: mqtt.Client) -> None:
    """Disconnect, stop the network thread and close the client's sockets now.

    paho 2.x leaves its sockets to Client.__del__; when the client sits in a reference cycle
    the collector may finalise the sockets first, and pytest then fails the session on an
    "unclosed socket" warning.
    """
    client.disconnect()
    client.loop_stop()
    client._reset_sockets()  # paho has no public close
