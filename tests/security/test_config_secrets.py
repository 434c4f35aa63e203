"""`streetsense config show` never prints a credential, wherever in a setting it hides."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streetsense.config_cli import mask_credentials

SECRETS = ("S3cret!", "pg-query-pw", "Br0ker:pw", "kv pw", "tok-123")


def _show(tmp_path: Path, environ: dict[str, str]) -> str:
    settings = tmp_path / "streetsense.toml"
    settings.write_text(
        # A password in mqtt.url is refused at load (streetsense.broker); the user name stays.
        '[mqtt]\nurl = "mqtts://device-7@broker.city.example:8883"\n'
        'password_file = "/etc/streetsense/mqtt-password"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    env.update(environ)
    done = subprocess.run(
        [sys.executable, "-m", "streetsense.cli", "--config", str(settings), "config", "show"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_config_show_masks_the_password_in_the_database_url(tmp_path: Path) -> None:
    shown = _show(
        tmp_path,
        {"STREETSENSE_DATABASE_URL": "postgresql://ingest:S3cret!@db.city.example:5432/ss"},
    )
    assert "S3cret!" not in shown, shown
    # What an operator needs to check the settings stays readable.
    assert 'url = "postgresql://ingest:***@db.city.example:5432/ss"' in shown
    assert 'url = "mqtts://device-7@broker.city.example:8883"' in shown
    assert 'password_file = "/etc/streetsense/mqtt-password"' in shown


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:S3cret!@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:S3cret!@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
        ("postgresql://u@h/db?password=pg-query-pw&sslmode=require",
         "postgresql://u@h/db?password=***&sslmode=require"),
        ("postgresql:///db?host=/run/pg&PassWord=pg-query-pw", "postgresql:///db?host=/run/pg&PassWord=***"),
        ("mqtts://dev:Br0ker:pw@b:8883", "mqtts://dev:***@b:8883"),
        ("mqtt://:S3cret!@b", "mqtt://:***@b"),
        ("host=db user=u password='kv pw' dbname=ss", "host=db user=u password=*** dbname=ss"),
        ("host=db password=S3cret! dbname=ss", "host=db password=*** dbname=ss"),
        ("https://h/api?token=tok-123", "https://h/api?token=***"),
        ("mqtt://broker:1883", "mqtt://broker:1883"),
        ("postgresql://user@h/db", "postgresql://user@h/db"),
    ],
)  # fmt: skip
def test_credentials_are_masked_in_any_url_or_conninfo(text: str, masked: str) -> None:
    assert mask_credentials(text) == masked
    assert not any(secret in mask_credentials(text) for secret in SECRETS)
