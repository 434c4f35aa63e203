"""Rules files: what a good one gives, and every mistake reported with its line and fix."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from alerts.kinds import KINDS
from alerts.rules import load_rules, parse_rules
from streetsense.errors import ConfigError

GOOD = """
[[rule]]
name = "garage-full"
kind = "lot_occupancy"
above = 0.97
for_min = 5
severity = "critical"
notify = ["ops", "mail"]
quiet_hours = "22:30-06:00"
scope = { areas = ["old-town"], lots = ["garage"] }

[channel.ops]
type = "webhook"
url = "https://ops.city.example/hook"
secret_env = "OPS_HOOK_SECRET"

[channel.mail]
type = "email"
host = "smtp.city.example"
port = 587
starttls = true
sender = "alerts@city.example"
to = ["ops@city.example"]

[[maintenance]]
name = "garage works"
start = 2026-12-01T08:00:00+01:00
end = 2026-12-01T12:00:00+01:00
lots = ["garage"]
"""


def test_a_good_file() -> None:
    rules = parse_rules(GOOD)
    rule = rules.rule("garage-full")
    assert rule.params["above"] == 0.97
    assert rule.params["clear_below"] == pytest.approx(0.92)  # derived hysteresis edge
    assert rule.for_s == 300 and rule.severity == "critical" and rule.audience == "planners"
    assert rule.quiet_hours is not None
    assert rule.quiet_hours.contains(time(23, 0)) and rule.quiet_hours.contains(time(5, 59))
    assert not rule.quiet_hours.contains(time(6, 0))
    assert rule.scope.areas == ("old-town",) and rule.scope.lots == ("garage",)
    assert set(rules.channels) == {"ops", "mail"}
    window = rules.maintenance[0]
    assert window.start == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert window.active(datetime(2026, 12, 1, 10, 59, tzinfo=UTC))
    assert not window.active(datetime(2026, 12, 1, 11, 0, tzinfo=UTC))


def test_the_defaults_cover_every_kind_and_a_file_replaces_them_by_name(tmp_path: Path) -> None:
    defaults = load_rules(None)
    assert {r.kind for r in defaults.rules} == set(KINDS)
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nname = "device-offline"\nkind = "device_offline"\nafter_min = 5\n')
    merged = load_rules(path)
    assert merged.rule("device-offline").params["after_min"] == 5
    assert len(merged.rules) == len(defaults.rules)
    path.write_text("defaults = false\n" + path.read_text())
    assert [r.name for r in load_rules(path).rules] == ["device-offline"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ('above = 0.97', ":5: rule 'garage-full': above = 'x' must be a number"),
        ('kind = "lot_occupancy"', ":4: rule 'garage-full': kind 'lot_ocupancy' is unknown; "
                                   "did you mean 'lot_occupancy'?"),
        ('severity = "critical"', ":7: rule 'garage-full': severity 'urgent' must be one of"),
        ('quiet_hours = "22:30-06:00"', ":9: rule 'garage-full': quiet_hours = '10pm-6am' must"),
        ('scope = { areas', ":10: rule 'garage-full': scope has unknown key 'area'; did you mean"),
        ('notify = ["ops", "mail"]', ":8: rule 'garage-full': channel 'pager' is not defined"),
        ('url = "https://ops', ":14: channel 'ops': url must be an http:// or https://"),
        ('secret_env = "OPS', ":15: channel 'ops': secret_env must name the environment"),
        ('to = ["ops@', ":23: channel 'mail': to must be a list of e-mail addresses"),
        ('end = 2026-12-01T12', ":28: maintenance 'garage works': end must come after start"),
        ('start = 2026-12-01T08:00:00+01:00', ":27: maintenance 'garage works': start must be a "
                                              "date-time with its offset"),
    ],
)  # fmt: skip
def test_each_mistake_names_its_line_and_the_fix(change: str, expected: str) -> None:
    broken = {
        "above = 0.97": 'above = "x"',
        'kind = "lot_occupancy"': 'kind = "lot_ocupancy"',
        'severity = "critical"': 'severity = "urgent"',
        'quiet_hours = "22:30-06:00"': 'quiet_hours = "10pm-6am"',
        "scope = { areas": "scope = { area",
        'notify = ["ops", "mail"]': 'notify = ["ops", "pager"]',
        'url = "https://ops': 'url = "ftp://ops',
        'secret_env = "OPS': 'secret_env = "ops-',
        'to = ["ops@': 'to = ["ops-at-',
        "end = 2026-12-01T12": "end = 2026-11-01T12",
        "start = 2026-12-01T08:00:00+01:00": "start = 2026-12-01T08:00:00",
    }[change]
    text = GOOD.replace(change, broken, 1)
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, "city.toml")
    assert f"city.toml{expected}" in str(caught.value)


def test_every_mistake_at_once_and_bad_toml() -> None:
    text = GOOD.replace("above = 0.97", "above = 7").replace("port = 587", "port = 0")
    with pytest.raises(ConfigError, match=r"2 mistake\(s\)"):
        parse_rules(text, "city.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_rules("[[rule]\nname=", "city.toml")
    with pytest.raises(ConfigError, match="unknown table or key 'rules'; did you mean 'rule'"):
        parse_rules('[[rules]]\nname = "x"\n', "city.toml")
    with pytest.raises(ConfigError, match="used twice"):
        parse_rules('[[rule]]\nname = "a"\nkind = "battery_low"\n' * 2)


def test_the_example_rules_file_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "alerts.example.toml"
    rules = load_rules(example)
    assert rules.rule("traffic-incident").notify == ("planners", "traffic-centre")
    assert {c.type for c in rules.channels.values()} == {"webhook", "mqtt", "email"}


def test_a_rule_written_for_5_minute_intervals_is_told_what_replaced_them() -> None:
    text = '[[rule]]\nname = "incident"\nkind = "traffic_incident"\nintervals = 2\n'
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, "city.toml")
    assert (
        "city.toml:4: rule 'incident': 'intervals' was replaced: use slow_for_min, minutes of "
        "data the rule judges: intervals = 2 of 5-minute data was slow_for_min = 10"
    ) in str(caught.value)
    rule = parse_rules(text.replace("intervals = 2", "slow_for_min = 10")).rule("incident")
    assert rule.params["slow_for_min"] == 10.0 and rule.params["window_min"] == 5.0
