"""Sequence bookkeeping: what the ack says, and what counts as lost."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harness.ingest import (
    SITE,
    AckWatcher,
    Publisher,
    count,
    ingest_thread,
    readings,
    register,
    wait_until,
)
from ingest.sequences import SequenceState
from streetsense.config import Settings
from streetsense.readings import encode_readings
from streetsense.topics import Channel, Topics


def test_contiguous_stops_at_a_gap_and_moves_when_it_fills() -> None:
    state = SequenceState()
    state.handle([1, 2, 3, 5, 6])
    assert (state.contiguous, state.pending) == (3, [(5, 6)])
    state.handle([4])
    assert (state.contiguous, state.pending, state.max_seq) == (6, [], 6)


def test_a_floor_closes_the_gap_and_counts_the_loss() -> None:
    state = SequenceState()
    state.handle([1, 2, 10, 11, 12])
    assert state.handle([], floor=8) == 5  # 3..7 will never come
    assert (state.contiguous, state.lost) == (2 + 5, 5)
    assert state.handle([8, 9]) == 0
    assert state.contiguous == 12


def test_a_floor_below_what_is_confirmed_changes_nothing() -> None:
    state = SequenceState()
    state.handle(range(1, 101))
    assert state.handle([50], floor=40) == 0
    assert (state.contiguous, state.lost) == (100, 0)


def test_stored_form_round_trips() -> None:
    state = SequenceState()
    state.handle([1, 5, 6, 9])
    again = SequenceState.from_row(state.contiguous, state.max_seq, state.flat_pending(), 0)
    assert again == state


@given(st.lists(st.integers(1, 300), max_size=200), st.integers(0, 320))
def test_contiguous_is_the_first_gap_below_any_floor(seqs: list[int], floor: int) -> None:
    state = SequenceState()
    for chunk in range(0, len(seqs), 7):
        state.handle(seqs[chunk : chunk + 7])
    state.handle([], floor=floor)
    seen = set(seqs) | set(range(1, floor))
    expected = 0
    while expected + 1 in seen:
        expected += 1
    assert state.contiguous == expected
    # lost: the holes below the floor that lie under a seq seen before the floor came
    limit = min(floor - 1, max(seqs, default=0))
    assert state.lost == len(set(range(1, limit + 1)) - set(seqs))


def test_a_first_floor_far_above_is_where_numbering_starts() -> None:
    state = SequenceState()  # a new device; our agent numbers from its buffer's epoch ms
    start = 1_763_884_800_000
    assert state.handle(range(start, start + 5), floor=start) == 0
    assert (state.contiguous, state.lost) == (start + 4, 0)
    # a new buffer, numbered from a later millisecond: a jump, not a loss
    assert state.handle(range(start + 90_000, start + 90_003), floor=start + 90_000) == 0
    assert state.contiguous == start + 90_002


def test_acks_report_gaps_and_floors_end_to_end(settings: Settings, topics: Topics) -> None:
    register(settings.database.url, ["d1", "d2"])
    url = settings.database.url
    with ingest_thread(settings):
        acks = AckWatcher(settings.mqtt.url, topics)
        publisher = Publisher(settings.mqtt.url, topics)
        publisher.send_readings(SITE, "d1", readings("d1", 1, 10))
        publisher.send_readings(SITE, "d1", readings("d1", 21, 10))  # 11..20 not sent yet
        publisher.send_readings(SITE, "d2", readings("d2", 1, 5))
        publisher.send_readings(SITE, "d2", readings("d2", 10, 5))  # 6..9 missing
        assert wait_until(lambda: acks.acks.get("d1") == 10 and acks.acks.get("d2") == 5)
        publisher.send_readings(SITE, "d1", readings("d1", 11, 10))  # the gap fills
        assert wait_until(lambda: acks.acks.get("d1") == 30)
        # d2 dropped 6..9 at its buffer cap and says so with seq_floor
        topic = topics.device(SITE, "d2", Channel.PARKING)
        publisher.send(topic, encode_readings(readings("d2", 15, 2), seq_floor=10))
        assert wait_until(lambda: acks.acks.get("d2") == 16)
        publisher.close()
        acks.close()
    assert count(url, "SELECT lost FROM device_sequences WHERE device_id = 'd2'") == 4
    assert count(url, "SELECT lost FROM device_sequences WHERE device_id = 'd1'") == 0
    assert count(url, "SELECT count(*) FROM readings") == 42
