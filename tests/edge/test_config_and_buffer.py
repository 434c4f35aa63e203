"""Agent config errors name the key and fix; the SQLite buffer keeps its contract."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.buffer import Buffer
from edge.config import apply_remote, load_config
from edge.state import describe
from streetsense.errors import ConfigError, ServiceUnavailableError
from streetsense.readings import Reading

GOOD = '[device]\nsite = "central"\nid = "gw-1"\n'


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[device]\nsite = "central"\nid = "gw/1"\n', "device.id"),
        (GOOD + '[driver]\nkind = "usb"\n', "driver.kind"),
        (GOOD + '[driver]\nkind = "replay"\n', "driver.path"),
        (GOOD + "[traffic]\ninterval_s = 7\n", "divide a day"),
        (GOOD + '[buffer]\nconfirm = "never"\n', "buffer.confirm"),
        (GOOD + "[buffer]\ncap_byte = 5\n", "did you mean 'buffer.cap_bytes'"),
        (GOOD + '[mqtt]\nurl = "http://x"\n', "mqtt.url"),
        (GOOD + "[mqtt]\nbackoff_min_s = 90.0\n", "mqtt.backoff_min_s"),
        (GOOD + '[clock]\nvalid_after = "2025-01-01"\n', "UTC offset"),
    ],
)
def test_config_errors_name_the_key_and_the_fix(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_config(_config(tmp_path, text), environ={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = load_config(
        _config(tmp_path, GOOD), environ={"STREETSENSE_EDGE_BUFFER_CAP_BYTES": "1000"}
    )
    assert config.buffer.cap_bytes == 1000
    assert config.state_path == Path(config.buffer.path + ".state.json")


def test_remote_config_is_all_or_nothing(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, GOOD), environ={})
    changed = apply_remote(config, {"version": 2, "parking": {"occupied_after_s": 10}})
    assert changed.parking.occupied_after_s == 10
    for bad in (
        {"parking": {"occupied_after_s": 10}, "mqtt": {"url": "mqtt://evil"}},
        {"traffic": {"interval_s": 7}},
        {"buffer": {"drain_rate": "fast"}},
        {"parking": {"heartbeat_s": 0}},
    ):
        with pytest.raises(ConfigError):
            apply_remote(config, bad)


def _readings(count: int, start: int = 0) -> list[Reading]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Reading("gw-1", "lamp_power", base + timedelta(seconds=start + n), float(n % 100))
        for n in range(count)
    ]


def test_sequence_numbers_continue_across_restarts_and_only_acks_free_rows(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    buffer = Buffer(path, "gw-1", cap_bytes=1_000_000)
    first = buffer.put(_readings(10))
    buffer.close()
    buffer = Buffer(path, "gw-1", cap_bytes=1_000_000)
    second = buffer.put(_readings(5, 10))
    assert second[0] == first[-1] + 1
    assert [r.seq for r in buffer.unsent(100)] == first + second
    buffer.mark_sent(first[0], second[-1], 1)
    assert buffer.unsent(100) == []
    assert buffer.ack(first[4]) == 5
    assert buffer.stats().depth == 10
    assert buffer.rewind(2) == 10
    assert [r.seq for r in buffer.unsent(3)] == first[5:8]
    assert buffer.seq_floor() == first[5]
    buffer.close()


def test_a_buffer_from_before_revisions_keeps_its_readings_and_takes_revised_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "buffer.sqlite"
    Buffer(path, "gw-1", cap_bytes=1_000_000).close()
    with sqlite3.connect(path) as old:  # the table as agents before revisions made it
        old.execute("DROP TABLE readings")
        old.execute(
            "CREATE TABLE readings (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, sub_id TEXT, "
            "observed_ms INTEGER NOT NULL, value REAL NOT NULL, clock_suspect INTEGER NOT NULL, "
            "size INTEGER NOT NULL, sent_ms INTEGER NOT NULL DEFAULT 0)"
        )
        old.execute("INSERT INTO readings VALUES (7, 'vehicle_count', 'L1', 1000, 3, 0, 60, 0)")
    old.close()
    buffer = Buffer(path, "gw-1", cap_bytes=1_000_000)
    revised = Reading("gw-1", "vehicle_count", datetime(2026, 1, 1, tzinfo=UTC), 5.0, "L1",
                      revision=2)  # fmt: skip
    buffer.put([revised])
    kept, sent = buffer.unsent(10)
    assert (kept.seq, kept.value, kept.revision) == (7, 3.0, 0)
    assert (sent.value, sent.revision) == (5.0, 2)
    buffer.close()


def test_a_new_buffer_numbers_above_an_old_one(tmp_path: Path) -> None:
    old = Buffer(tmp_path / "old.sqlite", "gw-1", cap_bytes=1_000_000)
    issued = old.put(_readings(3))
    old.close()
    new = Buffer(tmp_path / "new.sqlite", "gw-1", cap_bytes=1_000_000)
    assert new.put(_readings(1))[0] > issued[-1]
    # An ack above anything issued (a clock that went back) renumbers what is held, in order.
    held = new.put(_readings(2, 5))
    new.ack(held[-1] + 1000)
    renumbered = [r.seq for r in new.unsent(10)]
    assert len(renumbered) == 3 and renumbered == sorted(renumbered)
    assert renumbered[0] > held[-1] + 1000
    new.close()


def test_the_cap_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite", "gw-1", cap_bytes=3_000)
    seqs = buffer.put(_readings(200))
    stats = buffer.stats()
    assert stats.bytes <= 3_000
    assert stats.dropped == 200 - stats.depth
    held = [r.seq for r in buffer.unsent(1000)]
    assert held == seqs[stats.dropped :]
    assert buffer.seq_floor() == seqs[stats.dropped]
    buffer.close()


def test_a_read_error_raises_instead_of_looking_empty(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite", "gw-1", cap_bytes=1_000_000)
    buffer.put(_readings(3))
    buffer._conn.close()
    with pytest.raises(ServiceUnavailableError, match="cannot read the buffer"):
        buffer.unsent(10)


def test_a_damaged_buffer_is_moved_aside_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    buffer = Buffer(path, "gw-1", cap_bytes=1_000_000)
    assert buffer.put(_readings(1))
    assert list(tmp_path.glob("b.sqlite.corrupt-*"))
    buffer.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_status_lines_say_what_to_do_when_the_agent_is_down() -> None:
    lines = describe({"running": False, "updated_at": 0, "link": "down"}, now=100.0)
    assert "NOT RUNNING" in lines[0]
    assert lines[-1].startswith("fix:")
