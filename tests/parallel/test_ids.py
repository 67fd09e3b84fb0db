"""parallel.ids: ids in the order sessions opened across workers."""

from __future__ import annotations

from tcpscope.parallel.ids import Ids


def test_ids_follow_the_open_positions_across_workers() -> None:
    ids = Ids(2)
    ids.assign({0: [10, 30], 1: [20]})  # opened at positions 10 (w0), 20 (w1), 30 (w0)
    assert [ids.of(0, 1), ids.of(1, 1), ids.of(0, 2)] == [1, 2, 3]
    ids.assign({0: [], 1: [41, 45]})
    ids.assign({0: [50], 1: []})
    assert [ids.of(1, 2), ids.of(1, 3), ids.of(0, 3)] == [4, 5, 6]


def test_closed_sessions_are_forgotten_open_ones_kept() -> None:
    ids = Ids(1)
    for round_ in range(5):
        ids.assign({0: [round_ * 10, round_ * 10 + 1]})
    ids.forget({0: 5})  # serials 1-4 closed: the first two chunks go
    assert ids.of(0, 5) == 5 and ids.of(0, 10) == 10
    assert len(ids._chunks[0]) == 3
