"""A device refuses every release bundle it must not run, and says why (real openssl).

The attacker can put bytes on the release topic (a compromised fleet host, a broker
misconfiguration) but does not hold the city's release key, or holds an old signed bundle.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from harness.releases import ReleaseKeys, altered, manifest_of, release_keys, signed_release
from harness.releases import unsigned as without_signature
from streetsense.release_bundle import (
    MAX_BUNDLE_BYTES,
    BundleRefusedError,
    Manifest,
    check,
    sha256,
    unpack,
)
from streetsense.signature import sign

HAVE = {"python": "3.11.2", "paho-mqtt": "2.1.0"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> ReleaseKeys:
    return release_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def good(keys: ReleaseKeys, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return signed_release(tmp_path_factory.mktemp("release"), "0.2.0", keys)


def _refusal(data: bytes, keys: ReleaseKeys, running: str = "0.1.0") -> BundleRefusedError:
    with pytest.raises(BundleRefusedError) as caught:
        check(data, keys.public, running, installed=HAVE.get)
    return caught.value


def test_a_good_bundle_passes_every_check(good: bytes, keys: ReleaseKeys) -> None:
    manifest, bundle = check(good, keys.public, "0.1.0", installed=HAVE.get)
    assert manifest.version == "0.2.0"
    assert sha256(bundle.agent) == manifest.agent_sha256
    assert manifest.requires["paho-mqtt"] == ">=2.1,<3"


def test_an_unsigned_bundle_is_refused(good: bytes, keys: ReleaseKeys) -> None:
    assert _refusal(without_signature(good), keys).code == "unsigned"


def test_a_bundle_signed_by_another_key_is_refused(
    good: bytes, keys: ReleaseKeys, tmp_path: Path
) -> None:
    other = release_keys(tmp_path, "attacker")
    forged = altered(good, signature=sign(unpack(good).manifest_bytes, other.private))
    refusal = _refusal(forged, keys)
    assert refusal.code == "signature"
    assert "release key" in refusal.reason


def test_an_agent_changed_after_signing_is_refused(good: bytes, keys: ReleaseKeys) -> None:
    agent = bytearray(unpack(good).agent)
    agent[len(agent) // 2] ^= 0xFF
    refusal = _refusal(altered(good, agent=bytes(agent)), keys)
    assert (refusal.code, refusal.reason) == ("tampered", "agent.pyz is not the file the "
                                              "manifest signed")  # fmt: skip
    refusal = _refusal(altered(good, config=b"[mqtt]\nurl = 'mqtt://evil:1883'\n"), keys)
    assert refusal.code == "tampered"


def test_a_manifest_changed_after_signing_is_refused(good: bytes, keys: ReleaseKeys) -> None:
    body = json.loads(unpack(good).manifest_bytes)
    body["version"] = "9.0.0"
    refusal = _refusal(altered(good, manifest=json.dumps(body).encode()), keys)
    assert refusal.code == "signature"


def test_an_older_or_same_signed_release_is_refused(good: bytes, keys: ReleaseKeys) -> None:
    for running in ("0.2.0", "0.2", "0.10.0", "1.0"):
        refusal = _refusal(good, keys, running)
        assert refusal.code == "downgrade", running
        assert f"not newer than {running}" in refusal.reason


def test_a_release_needing_what_the_device_lacks_is_refused(good: bytes, keys: ReleaseKeys) -> None:
    with pytest.raises(BundleRefusedError) as caught:
        check(good, keys.public, "0.1.0", installed={"python": "3.11.2", "paho-mqtt": "1.6.1"}.get)
    assert caught.value.code == "requirements"
    assert "paho-mqtt >=2.1,<3; 1.6.1 installed" in caught.value.reason


def test_oversize_and_malformed_bundles_are_refused_before_any_signature_check(
    good: bytes, keys: ReleaseKeys
) -> None:
    assert _refusal(b"x" * (MAX_BUNDLE_BYTES + 1), keys).code == "oversize"
    assert _refusal(b"not a zip at all", keys).code == "malformed"
    extra = io.BytesIO()
    with zipfile.ZipFile(extra, "w") as archive:
        for info in zipfile.ZipFile(io.BytesIO(good)).infolist():
            archive.writestr(info.filename, zipfile.ZipFile(io.BytesIO(good)).read(info))
        archive.writestr("../../etc/cron.d/evil", b"* * * * * root sh\n")
    assert _refusal(extra.getvalue(), keys).code == "malformed"
    # a member claiming a huge size (a zip bomb) is refused from the directory, not inflated
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", b"{}")
        archive.writestr("agent.pyz", b"\0" * (MAX_BUNDLE_BYTES + 1))
        archive.writestr("agent.toml", b"")
    assert len(bomb.getvalue()) < MAX_BUNDLE_BYTES
    assert _refusal(bomb.getvalue(), keys).code == "oversize"


def test_a_signed_manifest_of_another_format_is_refused(keys: ReleaseKeys, good: bytes) -> None:
    body = json.loads(unpack(good).manifest_bytes)
    body["format"] = 2
    manifest = json.dumps(body).encode()
    forged = altered(good, manifest=manifest, signature=sign(manifest, keys.private))
    assert _refusal(forged, keys).code == "malformed"
    assert manifest_of(good) == Manifest.decode(unpack(good).manifest_bytes)
