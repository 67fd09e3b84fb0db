"""The vectorised key -> row table of track.light, against a dict."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpscope.track.keytable import KeyTable, _bits_for, _capacity, distinct

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
