"""`streetsense config sample|show`: every setting with its default and environment variable."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from streetsense.config import ENV_PREFIX, Settings, load_settings

_SECRET_WORDS = ("password", "secret", "token")
MASK = "***"
# user:password@ after a scheme; the password runs to the last @ (an unencoded one included).
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:@/\s]*:)[^\s]*@")
# password=... in a URL query or a libpq key=value string, quoted or not.
_KEY_SECRET = re.compile(
    r"(?P<head>\b(?:ssl)?(?:password|passwd|secret|token|api_key)=)(?:'(?:[^'\\]|\\.)*'|[^&\s]*)",
    re.IGNORECASE,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `config` command."""
    parser = subparsers.add_parser("config", help="print a sample settings file or the settings")
    actions = parser.add_subparsers(dest="config_action", required=True)
    actions.add_parser("sample", help="print streetsense.toml with every default").set_defaults(
        handler=lambda args: _write(sample_toml())
    )
    actions.add_parser("show", help="print the settings in force (secrets masked)").set_defaults(
        handler=lambda args: _write(show_settings(load_settings(args.config)))
    )


def _write(text: str) -> int:
    sys.stdout.write(text)
    return 0


def sample_toml() -> str:
    """Return a documented TOML file holding every setting at its default."""
    lines = [
        "# streetsense settings. Every key is optional; shown at its default.",
        f"# Each can be set by the environment too: {ENV_PREFIX}<SECTION>_<KEY>.",
        "",
    ]
    for section in fields(Settings):
        cls = (
            section.type
            if isinstance(section.type, type)
            else type(getattr(Settings(), section.name))
        )
        lines.append(f"# {(cls.__doc__ or '').strip()}")
        lines.append(f"[{section.name}]")
        defaults = getattr(Settings(), section.name)
        for item in fields(defaults):
            env = f"{ENV_PREFIX}{section.name}_{item.name}".upper()
            lines.append(f"# {item.metadata.get('doc', '')} (env {env})")
            lines.append(f"{item.name} = {_toml_value(getattr(defaults, item.name))}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return json.dumps(value) if isinstance(value, str) else repr(value)


def mask_credentials(text: str) -> str:
    """Return `text` with the password of any URL and any password=/token= value masked."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _KEY_SECRET.sub(lambda m: f"{m['head']}{MASK}", text)


def _shown(name: str, value: Any) -> Any:
    if isinstance(value, str) and value:
        if name.endswith("_file"):  # a path to a secret says where it is, not what it is
            return value
        if any(word in name for word in _SECRET_WORDS):
            return MASK
        return mask_credentials(value)
    return value


def show_settings(settings: Settings) -> str:
    """Return the settings in force as TOML, secrets masked."""
    lines: list[str] = []
    for section in fields(settings):
        values = getattr(settings, section.name)
        if not is_dataclass(values) or section.default is not MISSING:
            continue
        lines.append(f"[{section.name}]")
        for item in fields(values):
            value = _shown(item.name, getattr(values, item.name))
            lines.append(f"{item.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)
