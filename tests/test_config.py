"""Settings: defaults, TOML, environment, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from streetsense.config import load_settings
from streetsense.config_cli import sample_toml
from streetsense.errors import ConfigError


def test_defaults_then_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[ingest]\nbatch_max_age_ms = 50\n[mqtt]\nurl = "mqtt://file:1883"\n')
    settings = load_settings(path, environ={"STREETSENSE_MQTT_URL": "mqtt://env:1883"})
    assert settings.ingest.batch_max_age_ms == 50
    assert settings.mqtt.url == "mqtt://env:1883"
    assert settings.ingest.late_window_s == 7 * 86_400


def test_environment_values_are_typed() -> None:
    settings = load_settings(
        None, environ={"STREETSENSE_INGEST_AUTO_REGISTER": "yes", "STREETSENSE_FEEDS_PORT": "9"}
    )
    assert settings.ingest.auto_register is True
    assert settings.feeds.port == 9


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("[ingest]\nbatch_max_age = 5\n", {}, "unknown setting 'ingest.batch_max_age'; did you"),
        ("[ingest]\nbatch_max_age_ms = 'x'\n", {}, "must be a int"),
        ("[nonsense]\n", {}, "unknown setting 'nonsense'"),
        ("ingest = 3\n", {}, "'ingest' must be a table"),
        ("[ingest\n", {}, "not valid TOML"),
        ("", {"STREETSENSE_FEEDS_PORT": "eighty"}, "STREETSENSE_FEEDS_PORT"),
        ("", {"STREETSENSE_INGEST_AUTO_REGISTER": "maybe"}, "true or false"),
        ("[feeds]\nport = 99999\n", {}, "not a TCP port"),
        ("[ingest]\ndevice_rate_per_s = nan\n", {}, "finite number >= 0"),
        ("", {"STREETSENSE_INGEST_LATE_WINDOW_S": "-5"}, "finite number >= 0"),
        ("[ingest]\nlate_window_s = 99999999999999999999\n", {}, "is too large"),
        ("[ingest]\ndevice_rate_per_s = 1e300\n", {}, "is too large"),
    ],
)
def test_wrong_settings_name_the_key(
    tmp_path: Path, text: str, environ: dict[str, str], message: str
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, environ=environ)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_sample_is_loadable_and_documents_every_variable(tmp_path: Path) -> None:
    path = tmp_path / "sample.toml"
    path.write_text(sample_toml())
    assert load_settings(path, environ={}) == load_settings(None, environ={})
    assert "STREETSENSE_DATABASE_URL" in sample_toml()
    assert "STREETSENSE_INGEST_LATE_WINDOW_S" in sample_toml()
