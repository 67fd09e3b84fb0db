"""cli.runloop.gather: a short live batch waits (at most GATHER_S) for the packets
that follow, so the engine gets fewer, larger batches; files are read as they are."""

from __future__ import annotations

import time
from typing import Any

from tcpscope.capture import RawBatch
from tcpscope.cli import runloop


def batch(first: int, count: int) -> RawBatch:
    return RawBatch.of_frames(
        [(n * 1000, n.to_bytes(4, "big")) for n in range(first, first + count)]
    )


class ScriptedLive:
    """A live capture whose reads return the given batches, then nothing."""

    live = True
    name = "scripted"

    def __init__(self, batches: list[RawBatch], ready: bool = True) -> None:
        self.batches = batches
        self.ready = ready
        self.waits: list[float] = []

    def read_raw(self, max_packets: int = 4096) -> RawBatch:
        return self.batches.pop(0) if self.batches else RawBatch(b"", b"")

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        if not self.ready or not self.batches:
            time.sleep(timeout)
            return False
        return True


class Fed:
    last_ts: int | None = None

    def __init__(self) -> None:
        self.batches: list[RawBatch] = []

    def feed_batch(self, b: RawBatch) -> None:
        self.batches.append(b)

    def tick(self, now: int) -> None:
        pass


def numbers(b: RawBatch) -> list[int]:
    return [int.from_bytes(f, "big") for _, f in b.frames()]


def test_short_batches_are_joined_up_to_the_size() -> None:
    cap: Any = ScriptedLive([batch(0, 3), batch(3, 4), batch(7, 5), batch(12, 1)])
    engine = Fed()
    runloop.step(cap, engine, 10)
    assert [numbers(b) for b in engine.batches] == [list(range(12))]
    runloop.step(cap, engine, 10)  # what is left, once the wait runs out
    assert numbers(engine.batches[1]) == [12]


def test_the_wait_is_bounded() -> None:
    cap: Any = ScriptedLive([batch(0, 3)], ready=False)
    engine = Fed()
    start = time.monotonic()
    runloop.step(cap, engine, 10)
    assert time.monotonic() - start < runloop.GATHER_S + 0.5
    assert sum(cap.waits) <= runloop.GATHER_S + 1e-6
    assert numbers(engine.batches[0]) == [0, 1, 2]


def test_a_full_batch_is_fed_at_once() -> None:
    cap: Any = ScriptedLive([batch(0, 10), batch(10, 2)])
    engine = Fed()
    runloop.step(cap, engine, 10)
    assert cap.waits == [] and numbers(engine.batches[0]) == list(range(10))
