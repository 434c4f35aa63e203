"""Alert rules as data: a TOML file (plus the shipped defaults) read into checked dataclasses.

Every mistake is reported with the line, the key and the fix; all mistakes of a file are
reported at once so one `streetsense alerts check` run is enough to correct them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from alerts.channels import Channel, read_channels
from alerts.kinds import AUDIENCES, KINDS, SEVERITIES
from alerts.problems import NAME_RE, Problems, line_of, strings, suggest
from streetsense.errors import ConfigError

RULE_KEYS: Final = frozenset(
    {"name", "kind", "severity", "audience", "for_min", "clear_for_min", "every_min", "notify",
     "quiet_hours", "scope", "enabled"}
)  # fmt: skip
# Keys a kind no longer takes, with what replaced them.
RENAMED: Final = MappingProxyType({
    ("traffic_incident", "intervals"): "use slow_for_min, minutes of data the rule judges: "
    "intervals = 2 of 5-minute data was slow_for_min = 10; the default 6 fires on two "
    "5-minute intervals, or on 1-minute readings once two rolling 5-minute windows were slow",
})  # fmt: skip
SCOPE_KEYS: Final = ("sites", "areas", "lots", "segments", "devices", "device_kinds")
MAINTENANCE_KEYS: Final = frozenset({"name", "start", "end", "rules", *SCOPE_KEYS})
_HOURS_RE: Final = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})\Z")


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a rule or window applies; an empty tuple means everywhere."""

    sites: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    lots: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    device_kinds: tuple[str, ...] = ()

    @property
    def everywhere(self) -> bool:
        """Return whether nothing narrows this scope."""
        return not any(getattr(self, name) for name in SCOPE_KEYS)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily stretch of local time in which a rule's notifications wait (may cross midnight)."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        """Return whether a local wall-clock time falls inside the stretch."""
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule: a kind of condition with its parameters, durations and recipients."""

    name: str
    kind: str
    severity: str
    audience: str
    params: MappingProxyType[str, float]
    for_s: float = 0.0
    clear_for_s: float = 0.0
    every_s: float = 0.0  # evaluate at most this often (0: every round)
    notify: tuple[str, ...] = ()
    quiet_hours: QuietHours | None = None
    scope: Scope = field(default_factory=Scope)


@dataclass(frozen=True, slots=True)
class Maintenance:
    """A window in which matching subjects raise no new alerts (work on site, planned outage)."""

    name: str
    start: datetime
    end: datetime
    rules: tuple[str, ...]
    scope: Scope

    def active(self, now: datetime) -> bool:
        """Return whether the window is open at `now`."""
        return self.start <= now < self.end


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Everything a rules file defines."""

    rules: tuple[Rule, ...]
    channels: MappingProxyType[str, Channel]
    maintenance: tuple[Maintenance, ...]

    def rule(self, name: str) -> Rule:
        """Return the rule with this name."""
        return next(r for r in self.rules if r.name == name)


def load_rules(path: str | Path | None, *, with_defaults: bool = True) -> RuleSet:
    """Read a rules file (None: the shipped defaults alone).

    Args:
        path: the TOML rules file.
        with_defaults: add the shipped default rules whose names the file does not use
            (a file may also say `defaults = false` at its top).

    Raises:
        ConfigError: the file is missing or wrong; the message lists every mistake with its line.
    """
    defaults_text = resources.files("alerts").joinpath("defaults.toml").read_text("utf-8")
    defaults = parse_rules(defaults_text, "alerts/defaults.toml")
    if path is None:
        return defaults
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the alert rules file {str(path)!r}: {exc}") from exc
    own = parse_rules(text, str(path))
    if not with_defaults or _top_flag(text, str(path)) is False:
        return own
    names = {r.name for r in own.rules}
    merged = own.rules + tuple(r for r in defaults.rules if r.name not in names)
    return RuleSet(merged, own.channels, own.maintenance)


def _top_flag(text: str, source: str) -> bool | None:
    value = tomllib.loads(text).get("defaults")
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"{source}: `defaults` must be true or false")
    return value


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Parse rules from TOML text; raise ConfigError listing every mistake with its line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}. Fix the syntax there") from exc
    problems = Problems(source, text)
    for key in data:
        if key not in ("rule", "channel", "maintenance", "defaults"):
            hint = suggest(key, ("rule", "channel", "maintenance", "defaults"))
            problems.add(key, None, None, f"unknown table or key '{key}'{hint}")
    channels = read_channels(data.get("channel", {}), problems)
    rules = _rules(data.get("rule", []), set(channels), problems)
    windows = _maintenance(data.get("maintenance", []), {r.name for r in rules}, problems)
    if problems.messages:
        raise ConfigError(
            f"{len(problems.messages)} mistake(s) in the alert rules:\n  "
            + "\n  ".join(sorted(problems.messages, key=line_of))
        )
    return RuleSet(tuple(rules), MappingProxyType(channels), tuple(windows))


def _rules(items: Any, channels: set[str], problems: Problems) -> list[Rule]:
    if not isinstance(items, list):
        problems.add("rule", None, None, "rules are written [[rule]] (an array of tables)")
        return []
    rules: list[Rule] = []
    for index, item in enumerate(items):
        rule = _rule(index, item, channels, problems)
        if rule is None:
            continue
        if any(r.name == rule.name for r in rules):
            problems.add("rule", index, "name", f"rule name '{rule.name}' is used twice")
            continue
        rules.append(rule)
    return rules


def _rule(  # noqa: PLR0912 - one check per key, in the order a reader meets them
    index: int, item: Mapping[str, Any], channels: set[str], p: Problems
) -> Rule | None:
    def bad(key: str | None, message: str) -> None:
        p.add("rule", index, key, message)

    before = len(p.messages)
    name = item.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        bad("name", "every rule needs `name`: lower-case letters, digits, '-' or '_' (max 63)")
        name = f"#{index + 1}"
    kind_name = item.get("kind")
    kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        bad(
            "kind",
            f"rule '{name}': kind {kind_name!r} is unknown{suggest(str(kind_name), list(KINDS))}",
        )
        return None
    for key in item:
        if (kind.name, key) in RENAMED:
            bad(key, f"rule '{name}': '{key}' was replaced: {RENAMED[kind.name, key]}")
        elif key not in RULE_KEYS and key not in kind.params:
            choices = sorted(RULE_KEYS | set(kind.params))
            bad(
                key,
                f"rule '{name}': unknown key '{key}' for kind {kind.name}{suggest(key, choices)}",
            )
    params = {}
    for key, spec in kind.params.items():
        value = item.get(key, spec.default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            bad(key, f"rule '{name}': {key} = {value!r} must be a number ({spec.doc})")
            continue
        if not spec.minimum <= value <= spec.maximum:
            bad(
                key,
                f"rule '{name}': {key} = {value} is outside {spec.minimum}..{spec.maximum} "
                f"({spec.doc})",
            )
        params[key] = float(value)
    severity = item.get("severity", "warning")
    if severity not in SEVERITIES:
        bad(
            "severity",
            f"rule '{name}': severity {severity!r} must be one of {', '.join(SEVERITIES)}",
        )
    audience = item.get("audience", kind.audience)
    if audience not in AUDIENCES:
        bad(
            "audience",
            f"rule '{name}': audience {audience!r} must be one of {', '.join(AUDIENCES)}",
        )
    durations = {}
    for key in ("for_min", "clear_for_min", "every_min"):
        value = item.get(key, 0)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value <= 10_080
        ):
            bad(key, f"rule '{name}': {key} = {value!r} must be minutes between 0 and 10080")
            value = 0
        durations[key] = float(value) * 60.0
    notify = strings(item.get("notify", []), lambda m: bad("notify", f"rule '{name}': notify {m}"))
    for channel in notify:
        if channel not in channels:
            known = ", ".join(sorted(channels)) or "none defined"
            bad(
                "notify",
                f"rule '{name}': channel '{channel}' is not defined (add [channel.{channel}]; "
                f"defined: {known})",
            )
    quiet = _quiet_hours(
        item.get("quiet_hours"), lambda m: bad("quiet_hours", f"rule '{name}': {m}")
    )
    scope = _scope(item.get("scope", {}), lambda k, m: bad(k, f"rule '{name}': scope {m}"))
    if item.get("enabled", True) is False or len(p.messages) > before:
        return None
    return Rule(
        name=name, kind=kind.name, severity=severity, audience=audience,
        params=MappingProxyType(_derived(kind.name, params)), for_s=durations["for_min"],
        clear_for_s=durations["clear_for_min"], every_s=durations["every_min"], notify=notify,
        quiet_hours=quiet, scope=scope,
    )  # fmt: skip


def _derived(kind: str, params: dict[str, float]) -> dict[str, float]:
    """Fill hysteresis edges left at their 'derive me' default of -1."""
    if kind == "lot_occupancy" and params["clear_below"] < 0:
        params["clear_below"] = max(params["above"] - 0.05, 0.0)
    if kind == "battery_low" and params["clear_above_v"] < 0:
        params["clear_above_v"] = params["below_v"] + 0.1
    return params


def _quiet_hours(value: Any, complain: Any) -> QuietHours | None:
    if value is None:
        return None
    match = _HOURS_RE.match(value) if isinstance(value, str) else None
    if match is None:
        complain(f"quiet_hours = {value!r} must read 'HH:MM-HH:MM' in the city's time zone")
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) == (h2, m2):
        complain(f"quiet_hours = {value!r} is not a stretch of the day (00:00 to 23:59)")
        return None
    return QuietHours(time(h1, m1), time(h2, m2))


def _scope(value: Any, complain: Any) -> Scope:
    if not isinstance(value, Mapping):
        complain("scope", 'must be a table, e.g. scope = { areas = ["old-town"] }')
        return Scope()
    lists = {}
    for key in value:
        if key not in SCOPE_KEYS:
            complain("scope", f"has unknown key '{key}'{suggest(key, SCOPE_KEYS)}")
    for key in SCOPE_KEYS:

        def named(message: str, key: str = key) -> None:
            complain("scope", f"{key} {message}")

        lists[key] = strings(value.get(key, []), named)
    return Scope(**lists)


def _maintenance(items: Any, rules: set[str], problems: Problems) -> list[Maintenance]:
    if not isinstance(items, list):
        problems.add("maintenance", None, None, "windows are written [[maintenance]]")
        return []
    windows = []
    for index, item in enumerate(items):

        def bad(key: str | None, message: str, index: int = index) -> None:
            problems.add("maintenance", index, key, message)

        before = len(problems.messages)
        for key in item:
            if key not in MAINTENANCE_KEYS:
                bad(
                    key,
                    f"maintenance: unknown key '{key}'{suggest(key, sorted(MAINTENANCE_KEYS))}",
                )
        name = str(item.get("name", f"#{index + 1}"))
        start, end = item.get("start"), item.get("end")
        for key, value in (("start", start), ("end", end)):
            if not isinstance(value, datetime) or value.tzinfo is None:
                bad(key, f"maintenance '{name}': {key} must be a date-time with its offset, "
                    "e.g. 2026-12-01T08:00:00+01:00")  # fmt: skip
        if (
            isinstance(start, datetime)
            and isinstance(end, datetime)
            and start.tzinfo
            and end.tzinfo
            and end <= start
        ):
            bad("end", f"maintenance '{name}': end must come after start")
        names = strings(item.get("rules", []), lambda m: bad("rules", f"maintenance rules {m}"))
        for rule in names:
            if rule not in rules:
                bad("rules", f"maintenance '{name}': rule '{rule}' is not defined")
        scope = _scope(
            {k: v for k, v in item.items() if k in SCOPE_KEYS}, lambda k, m: bad(None, m)
        )
        if len(problems.messages) == before:
            assert isinstance(start, datetime) and isinstance(end, datetime)
            windows.append(
                Maintenance(name, start.astimezone(UTC), end.astimezone(UTC), names, scope)
            )
    return windows
