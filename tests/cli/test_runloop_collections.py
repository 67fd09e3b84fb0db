"""cli.runloop.fewer_collections: young collections rare while the engine works
and while the last sessions close, and on the way out nothing left young for
the next collection to walk; cyclic garbage is still collected."""

from __future__ import annotations

import gc

from tcpscope.cli import runloop


class _Held:
    """A tracked object standing for a session's held segments."""

    def __init__(self) -> None:
        self.segments: list[object] = []


def test_the_threshold_is_raised_inside_and_restored_after() -> None:
    before = gc.get_threshold()
    with runloop.fewer_collections():
        assert gc.get_threshold() == (runloop.GC_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before


def test_what_the_run_left_young_is_aged_without_a_walk() -> None:
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    with runloop.fewer_collections(age_young=True):
        held = [_Held() for _ in range(10_000)]
        gc.callbacks.append(count)
    try:
        oldest = {id(o) for o in gc.get_objects(generation=2)}
        assert all(id(h) in oldest for h in held[:: 997])
        assert gc.get_count()[0] < 100  # the young generation starts empty
        assert not collections  # and leaving walked nothing
    finally:
        gc.callbacks.remove(count)


def test_the_api_leaves_its_hosts_young_objects_young() -> None:
    with runloop.fewer_collections():  # as tcpscope.stream calls it
        held = _Held()
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert id(held) not in oldest


def test_cycles_made_inside_are_still_collected() -> None:
    with runloop.fewer_collections(age_young=True):
        a, b = _Held(), _Held()
        a.segments.append(b)
        b.segments.append(a)
        del a, b
    assert gc.collect() >= 2


def test_the_last_sessions_close_with_collections_rare() -> None:
    seen: list[int] = []
    cut = runloop.finish_unless_stopped(lambda: seen.append(gc.get_threshold()[0]))
    assert cut is False
    assert seen == [runloop.GC_THRESHOLD]
