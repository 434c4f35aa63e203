"""Clients, roles and ACLs in Mosquitto's dynamic security plugin, as the fleet needs them.

Mosquitto 2.0's plugin (`mosquitto_dynamic_security.so`) is managed with JSON commands on
`$CONTROL/dynamic-security/v1`; changes apply at once, without a restart. Its ACL topics are
literal (no `%u` patterns in 2.0), so every device gets a role of its own that names its topics:
a device can write its readings and read its confirmations, nothing of any other device.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from streetsense.errors import StreetsenseError
from streetsense.fleet_protocol import FleetTopics
from streetsense.topics import Channel, Topics

DEVICE_WRITES: Final = (
    Channel.PARKING, Channel.TRAFFIC, Channel.LIGHT, Channel.STATUS, Channel.CONFIG_REPLY,
)  # fmt: skip
DEVICE_READS: Final = (Channel.ACK, Channel.CONFIG)
# Not found is fine when making sure something is gone.
_GONE: Final = ("not found", "does not exist")


class DynSecError(StreetsenseError):
    """The broker's dynamic security plugin refused a command; the message says which and why."""


class Control(Protocol):
    """Sends dynamic security commands and returns the responses (fleet.link.FleetLink)."""

    def control(
        self, commands: list[dict[str, Any]], timeout_s: float = 10.0
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Acl:
    """One ACL entry: `publishClientSend`, `publishClientReceive`, `subscribeLiteral`,
    `subscribePattern` or `unsubscribePattern` on a topic, allowed or denied."""

    kind: str
    topic: str
    allow: bool = True

    def command(self, role: str) -> dict[str, Any]:
        """Return the addRoleACL command."""
        return {"command": "addRoleACL", "rolename": role, "acltype": self.kind,
                "topic": self.topic, "allow": self.allow}  # fmt: skip


def reads(topic: str, *, pattern: bool = False) -> list[Acl]:
    """Return ACLs that let a client subscribe to `topic` and receive what it matches."""
    return [Acl("subscribePattern" if pattern else "subscribeLiteral", topic),
            Acl("publishClientReceive", topic)]  # fmt: skip


def device_role_name(device_id: str) -> str:
    """Return the name of a device's own role."""
    return f"device-{device_id}"


def batch_role_name(batch_id: str) -> str:
    """Return the name of a batch's bootstrap role."""
    return f"claim-{batch_id}"


def device_acls(topics: Topics, fleet: FleetTopics, site: str, device_id: str) -> list[Acl]:
    """Return what one device may do: its readings, health and config replies out; its
    confirmations, config, provisioning, commands and the releases in."""
    acls = [Acl("publishClientSend", topics.device(site, device_id, c)) for c in DEVICE_WRITES]
    acls.append(Acl("publishClientSend", fleet.device(device_id, "report")))
    for channel in DEVICE_READS:
        acls += reads(topics.device(site, device_id, channel))
    for what in ("provision", "command"):
        acls += reads(fleet.device(device_id, what))
    acls += reads(fleet.releases(), pattern=True)
    return acls


def batch_acls(fleet: FleetTopics, batch_id: str) -> list[Acl]:
    """Return what a batch's bootstrap client may do: ask to enrol and read the answers."""
    return [Acl("publishClientSend", fleet.enrol_requests(batch_id)),
            *reads(fleet.enrol_replies(batch_id), pattern=True)]  # fmt: skip


class DynSec:
    """Typed dynamic security commands over a connection that may use them."""

    def __init__(self, link: Control, timeout_s: float = 10.0) -> None:
        self.link = link
        self.timeout_s = timeout_s

    def run(
        self, commands: Sequence[dict[str, Any]], *, gone_ok: bool = False
    ) -> list[dict[str, Any]]:
        """Run commands in one message; return their responses.

        Raises:
            DynSecError: a command failed (unless it failed for being gone and `gone_ok`).
        """
        responses = self.link.control(list(commands), self.timeout_s)
        for command, response in zip(commands, responses, strict=True):
            error = response.get("error")
            if not error:
                continue
            if gone_ok and any(word in str(error).lower() for word in _GONE):
                continue
            name = command.get("username") or command.get("rolename") or ""
            raise DynSecError(
                f"the broker's dynamic security refused {command['command']} {name}: {error}"
            )
        return responses

    def replace_role(self, role: str, acls: Iterable[Acl]) -> None:
        """Make a role hold exactly these ACLs (deleting any role of that name first)."""
        self.run([{"command": "deleteRole", "rolename": role}], gone_ok=True)
        self.run([{"command": "createRole", "rolename": role},
                  *(acl.command(role) for acl in acls)])  # fmt: skip

    def replace_client(
        self, username: str, password: str, roles: Iterable[str], client_id: str | None = None
    ) -> None:
        """Make a client with this password and roles (replacing one of that name)."""
        self.delete_client(username)
        command: dict[str, Any] = {
            "command": "createClient", "username": username, "password": password,
            "roles": [{"rolename": role} for role in roles],
        }  # fmt: skip
        if client_id is not None:
            command["clientid"] = client_id
        self.run([command])

    def set_password(self, username: str, password: str) -> None:
        """Replace a client's password; the broker disconnects its sessions at once."""
        self.run([{"command": "setClientPassword", "username": username, "password": password}])

    def disable(self, username: str) -> None:
        """Refuse a client from now on; the broker disconnects it at once."""
        self.run([{"command": "disableClient", "username": username}])

    def enable(self, username: str) -> None:
        """Accept a disabled client again."""
        self.run([{"command": "enableClient", "username": username}])

    def delete_client(self, username: str) -> None:
        """Delete a client if it exists; the broker disconnects it at once."""
        self.run([{"command": "deleteClient", "username": username}], gone_ok=True)

    def delete_role(self, role: str) -> None:
        """Delete a role if it exists."""
        self.run([{"command": "deleteRole", "rolename": role}], gone_ok=True)

    def client(self, username: str) -> dict[str, Any] | None:
        """Return what the broker holds of a client (roles, disabled), or None."""
        response = self.run([{"command": "getClient", "username": username}], gone_ok=True)[0]
        found = response.get("data", {}).get("client")
        return found if isinstance(found, dict) else None

    def set_default_access(self, **allow: bool) -> None:
        """Set what is allowed when no ACL matches (publishClientSend=False, ...)."""
        acls = [{"acltype": kind, "allow": value} for kind, value in allow.items()]
        self.run([{"command": "setDefaultACLAccess", "acls": acls}])
