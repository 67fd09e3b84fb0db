"""The vectorised key -> row table of track.light, against a dict."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpscope.track.keytable import GONE, USED, KeyTable, _bits_for, _capacity, distinct

keys = st.integers(0, 2**64 - 1)


@settings(max_examples=60)
@given(
    st.lists(st.tuples(st.sampled_from(["insert", "remove", "set"]), st.lists(keys, max_size=300)))
)
def test_the_table_answers_as_a_dict_would(steps: list[tuple[str, list[int]]]) -> None:
    table, expected = KeyTable(), {}
    serial = 0
    for action, batch in steps:
        if action == "insert":
            new = list(dict.fromkeys(k for k in batch if k not in expected))
            values = np.arange(serial, serial + len(new), dtype=np.int64)
            serial += len(new)
            table.insert(np.array(new, dtype=np.uint64), values)
            expected.update(zip(new, values.tolist(), strict=True))
        elif action == "remove":
            table.remove(np.array(batch, dtype=np.uint64))
            for k in batch:
                expected.pop(k, None)
        else:
            there = [k for k in batch if k in expected]
            table.set(np.array(there, dtype=np.uint64), np.full(len(there), -7, dtype=np.int64))
            expected.update(dict.fromkeys(there, -7))
        probe = np.array(batch + list(expected)[:50], dtype=np.uint64)
        assert table.get(probe).tolist() == [expected.get(k, -1) for k in probe.tolist()]
        assert len(table) == len(expected)
        assert_counts_hold(table)


def assert_counts_hold(table: KeyTable) -> None:
    """The counts of keys and of freed slots (which decide when to rebuild) are
    those of the slots."""
    assert len(table) == int(np.count_nonzero(table._state == USED))
    assert table._gone == int(np.count_nonzero(table._state == GONE))


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(
            st.lists(keys, max_size=300),
            st.lists(keys, max_size=100),
            st.sampled_from(["", "clear", "insert"]),
        )
    )
)
def test_inserts_where_a_find_said_answer_as_a_dict_would(
    steps: list[tuple[list[int], list[int], str]],
) -> None:
    """As track.light does: find a batch's keys, remove others, insert the new ones
    at the found slots; in between, sometimes, a clear or other inserts (and their
    rebuilds), after which the found slots are stale."""
    table, expected = KeyTable(), {}
    serial = 0

    def fresh_values(count: int) -> np.ndarray:
        nonlocal serial
        serial += count
        return np.arange(serial - count, serial, dtype=np.int64)

    for batch, removed, between in steps:
        probe = np.array(batch, dtype=np.uint64)
        found = table.find(probe)
        assert found.values.tolist() == [expected.get(k, -1) for k in batch]
        table.remove(np.array(removed, dtype=np.uint64))
        for k in removed:
            expected.pop(k, None)
        if between == "clear":
            table.clear()
            expected.clear()
        elif between == "insert":
            extra = [k + 1 for k in removed if k + 1 < 2**64 and k + 1 not in expected]
            extra = [k for k in dict.fromkeys(extra) if k not in batch]
            values = fresh_values(len(extra))
            table.insert(np.array(extra, dtype=np.uint64), values)
            expected.update(zip(extra, values.tolist(), strict=True))
        new_at = {k: i for i, k in enumerate(batch) if k not in expected}
        new = list(new_at)
        at = np.array(list(new_at.values()), dtype=np.intp)
        values = fresh_values(len(new))
        table.insert(np.array(new, dtype=np.uint64), values, (found.free[at], found.layout))
        expected.update(zip(new, values.tolist(), strict=True))
        every = np.array(list(expected) + batch, dtype=np.uint64)
        assert table.get(every).tolist() == [expected.get(k, -1) for k in every.tolist()]
        assert len(table) == len(expected)


def test_a_find_gives_the_slot_an_insert_then_takes() -> None:
    rng = np.random.default_rng(5)
    table = KeyTable()
    table.insert(rng.integers(0, 2**64, 300, dtype=np.uint64), np.zeros(300, dtype=np.int64))
    new = np.unique(rng.integers(0, 2**64, 200, dtype=np.uint64))
    found = table.find(new)
    assert (found.values == -1).all() and (found.free >= 0).all()
    slots, counts = np.unique(found.free, return_counts=True)
    alone = np.isin(found.free, slots[counts == 1])  # no other new key was told that slot
    assert alone.sum() > 150
    table.insert(new, np.arange(new.size, dtype=np.int64), (found.free, found.layout))
    assert (table._keys[found.free[alone]] == new[alone]).all()
    assert (table.get(new) == np.arange(new.size)).all()


def test_keys_that_share_a_home_slot_and_a_found_free_slot() -> None:
    table = KeyTable()
    inverse = pow(0x9FB21C651E98DF25, -1, 2**64)
    crowd = np.array([((9 << 49) + j) * inverse % 2**64 for j in range(3000)], dtype=np.uint64)
    table.insert(crowd[:1000], np.arange(1000, dtype=np.int64))
    table.remove(crowd[:1000:3])  # freed slots along the chain
    found = table.find(crowd[1000:])
    assert len(set(found.free.tolist())) == 1  # all 2000 were told the same first free slot
    table.insert(crowd[1000:], np.arange(1000, 3000, dtype=np.int64), (found.free, found.layout))
    kept = np.setdiff1d(np.arange(3000), np.arange(0, 1000, 3))
    assert (table.get(crowd[kept]) == kept).all()
    assert (table.get(crowd[:1000:3]) == -1).all()
    assert_counts_hold(table)


def test_keys_that_meet_at_a_freed_slot_count_it_taken_once() -> None:
    table = KeyTable()
    rng = np.random.default_rng(11)
    others = np.unique(rng.integers(0, 2**64, 3000, dtype=np.uint64))
    table.insert(others, np.zeros(others.size, dtype=np.int64))
    inverse = pow(0x9FB21C651E98DF25, -1, 2**64)
    crowd = np.array([((7 << 49) + j) * inverse % 2**64 for j in range(300)], dtype=np.uint64)
    table.insert(crowd[:200], np.arange(200, dtype=np.int64))
    table.remove(crowd[:200:2])
    layout = table.layout
    found = table.find(crowd[200:])
    table.insert(crowd[200:], np.arange(200, 300, dtype=np.int64), (found.free, found.layout))
    assert table.layout == layout  # no rebuild: the newcomers met at the freed slots
    assert_counts_hold(table)
    assert (table.get(crowd[1:200:2]) == np.arange(1, 200, 2)).all()
    assert (table.get(crowd[200:]) == np.arange(200, 300)).all()


def test_keys_that_share_a_home_slot_all_find_their_values() -> None:
    table = KeyTable()
    # keys whose mixed top 15 bits are equal: one home slot for all 5000 at any size
    inverse = pow(0x9FB21C651E98DF25, -1, 2**64)
    crowd = np.array([((5 << 49) + j) * inverse % 2**64 for j in range(5000)], dtype=np.uint64)
    table.insert(crowd, np.arange(crowd.size, dtype=np.int64))
    assert (table.get(crowd) == np.arange(crowd.size)).all()
    table.remove(crowd[::2])
    assert (table.get(crowd[1::2]) == np.arange(1, crowd.size, 2)).all()
    assert (table.get(crowd[::2]) == -1).all()
    assert len(table) == crowd.size // 2


def test_a_rebuild_wraps_a_crowd_at_the_last_slots_round_to_the_first() -> None:
    table = KeyTable()
    # keys whose mixed top 15 bits are all ones: homes in the table's last slots
    inverse = pow(0x9FB21C651E98DF25, -1, 2**64)
    top = (2**15 - 1) << 49
    crowd = np.array([(top + j) * inverse % 2**64 for j in range(3000)], dtype=np.uint64)
    table.insert(crowd, np.arange(crowd.size, dtype=np.int64))
    rng = np.random.default_rng(9)
    others = np.setdiff1d(rng.integers(0, 2**64, 6000, dtype=np.uint64), crowd)
    layout = table.layout
    table.remove(crowd[::5])  # tombstones, which a rebuild drops
    table.insert(others, np.full(others.size, -3, dtype=np.int64))
    assert table.layout > layout  # the second insert rebuilt the table around the crowd
    assert np.isin(crowd, table._keys[: crowd.size]).sum() > 2000  # most of it went round
    kept = np.setdiff1d(np.arange(crowd.size), np.arange(0, crowd.size, 5))
    assert (table.get(crowd[kept]) == kept).all()
    assert (table.get(crowd[::5]) == -1).all()
    assert (table.get(others) == -3).all()
    assert len(table) == kept.size + others.size


def test_a_million_keys() -> None:
    rng = np.random.default_rng(3)
    many = np.unique(rng.integers(0, 2**64, 1_000_000, dtype=np.uint64))
    table = KeyTable()
    for part in np.array_split(many, 100):
        table.insert(part, np.zeros(part.size, dtype=np.int64))
    assert len(table) == many.size and (table.get(many[::997]) == 0).all()


def test_a_rebuild_leaves_room_for_as_many_keys_again() -> None:
    # Otherwise a table near a size boundary would rebuild on every insert.
    for entries in [*range(1, 70_000, 37), 4096, 4097, 8192, 8193, 1_000_000, 3_000_000]:
        assert _capacity(_bits_for(entries)) >= 2 * entries, entries


def test_small_tables_stay_sparse_and_large_ones_at_most_half_full() -> None:
    table = KeyTable()
    rng = np.random.default_rng(5)
    keys = np.unique(rng.integers(0, 2**64, 300_000, dtype=np.uint64))
    rng.shuffle(keys)
    at = 0
    for size in (100, 1000, 3000, 5000, 20_000, 100_000, 150_000):
        part = keys[at : at + size]
        at += size
        table.insert(part, np.arange(part.size, dtype=np.int64))
        slots = table._state.size
        filled = len(table) + table._gone
        assert filled <= (slots // 8 if slots <= 2**16 else slots // 2), (size, slots, filled)
        table.remove(part[::3])  # tombstones count toward the load too
        assert (table.get(part[1::3]) == np.arange(1, part.size, 3)).all()


@pytest.mark.parametrize("size", [0, 1, 2, 7, 1000])
def test_distinct_is_what_np_unique_gives(size: int) -> None:
    rng = np.random.default_rng(size)
    for dtype in (np.int64, np.uint64, np.intp, np.int32):
        values = rng.integers(0, max(size // 3, 1) + 1, size=size).astype(dtype)
        got = distinct(values)
        assert got.dtype == values.dtype
        assert got.tolist() == np.unique(values).tolist()
