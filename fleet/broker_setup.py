"""Prepare a Mosquitto broker with dynamic security for streetsense: the services' roles and
clients, and deny by default (`streetsense fleet broker init`, deploy/mosquitto/dynsec.conf).

Devices are not made here: the fleet service gives each enrolled device a client and a role of
its own at run time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from fleet.dynsec import Acl, DynSec, reads
from streetsense.fleet_protocol import FleetTopics
from streetsense.topics import FEEDS_SITE, Topics

CONTROL_TOPICS: Final = "$CONTROL/dynamic-security/#"


@dataclass(frozen=True, slots=True)
class ServiceClient:
    """A service's broker client: user name, role (fleet, ingest, feeds, operator, public)."""

    username: str
    role: str
    password: str


def service_roles(topics: Topics, fleet: FleetTopics) -> dict[str, list[Acl]]:
    """Return each service role's ACLs, by role name (`streetsense-<role>`)."""
    data = f"{topics.prefix}/#"
    feeds = f"{topics.prefix}/{FEEDS_SITE}/#"
    device = f"{topics.prefix}/+/+"
    return {
        # enrolment, credentials and releases; it alone may manage the broker's clients
        "fleet": [
            Acl("publishClientSend", CONTROL_TOPICS), *reads(CONTROL_TOPICS, pattern=True),
            Acl("publishClientSend", f"{fleet.root}/#"), *reads(f"{fleet.root}/#", pattern=True),
            Acl("publishClientSend", f"{device}/config"),
            *reads(f"{device}/config", pattern=True),  # the intended config, for drift
        ],
        # reads every device's data (on the shared subscription), writes confirmations only
        "ingest": [
            Acl("publishClientSend", f"{device}/ack"),
            *reads(data, pattern=True),
            Acl("subscribePattern", f"$share/+/{data}"),
            *reads("$SYS/broker/#", pattern=True),
        ],
        "feeds": [Acl("publishClientSend", feeds)],
        "operator": [
            Acl("publishClientSend", f"{device}/config"),
            *reads(f"{device}/config-reply", pattern=True),
            *reads(f"{device}/status", pattern=True),
            *reads("$SYS/#", pattern=True),
        ],
        "public": reads(feeds, pattern=True),
    }  # fmt: skip


def role_name(role: str) -> str:
    """Return the broker role name of a service role."""
    return f"streetsense-{role}"


def prepare(
    dynsec: DynSec, topics: Topics, fleet: FleetTopics, clients: Iterable[ServiceClient]
) -> list[str]:
    """Deny by default, (re)make every service role, and make the given service clients.

    Returns:
        What was done, one line each.
    """
    done = []
    dynsec.set_default_access(publishClientSend=False, publishClientReceive=False,
                              subscribe=False, unsubscribe=True)  # fmt: skip
    done.append("default access: deny publishing, receiving and subscribing")
    roles = service_roles(topics, fleet)
    for role, acls in roles.items():
        dynsec.replace_role(role_name(role), acls)
        done.append(f"role {role_name(role)}: {len(acls)} ACLs")
    for client in clients:
        if client.role not in roles:
            raise ValueError(f"unknown service role {client.role!r}; one of {sorted(roles)}")
        dynsec.replace_client(client.username, client.password, [role_name(client.role)])
        done.append(f"client {client.username} with role {role_name(client.role)}")
    return done
