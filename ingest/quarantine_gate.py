"""Bounds on quarantine: distinct unknown device ids per site, and payload bytes in all.

Quarantine keeps whole messages of devices the registry does not know, so that a device
installed before its registry entry loses nothing. Unbounded, it is a way to fill the database:
a stranger invents ids. The gate is consulted only for unknown devices (never on the path of a
known device's messages) and starts from what the database holds at each registry refresh; with
several ingest processes each counts its own additions between refreshes.
"""

from __future__ import annotations

from typing import Final

from store.quarantine import QuarantineUsage

# The bucket of every site the registry does not know: invented sites share one bound.
UNREGISTERED_SITES: Final = ""


class QuarantineGate:
    """Admit an unknown device's message to quarantine, or say why not."""

    def __init__(self, devices_per_site: int, max_bytes: int) -> None:
        self.devices_per_site = devices_per_site
        self.max_bytes = max_bytes
        self.sites: set[str] = set()
        self._devices: dict[str, set[str]] = {}
        self._bytes = 0

    def load(self, usage: QuarantineUsage, sites: set[str]) -> None:
        """Start again from what quarantine holds and the registry's sites."""
        self.sites = sites
        self._devices = {}
        for site, devices in usage.devices_by_site.items():
            self._devices.setdefault(self._bucket(site), set()).update(devices)
        self._bytes = usage.payload_bytes

    def refusal(self, site: str, device_id: str, size: int) -> tuple[str, str] | None:
        """Return (reason code, reason) when the message may not be kept; else count it in."""
        if self._bytes + size > self.max_bytes:
            return (
                "quarantine_full",
                f"quarantine holds {self._bytes} bytes, ingest.quarantine_max_bytes = "
                f"{self.max_bytes}; register the devices it holds and replay them "
                "(`streetsense ingest --replay-quarantine DEVICE`), or raise the bound",
            )
        bucket = self._bucket(site)
        devices = self._devices.setdefault(bucket, set())
        if device_id not in devices and len(devices) >= self.devices_per_site:
            where = f"site '{site}'" if bucket else "sites not in the registry"
            return (
                "quarantine_site_full",
                f"quarantine already holds {len(devices)} unknown device ids of {where} "
                f"(ingest.quarantine_devices_per_site = {self.devices_per_site}); register "
                "the devices (and their site), or raise the bound",
            )
        devices.add(device_id)
        self._bytes += size
        return None

    def _bucket(self, site: str) -> str:
        return site if site in self.sites else UNREGISTERED_SITES
