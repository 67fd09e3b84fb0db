"""Light handshakes (track.light): tcpeek's bulk path must change nothing but speed.

The main check runs a deliberately awkward mix of handshakes — retransmitted and
replaced SYNs, duplicate SYN/ACKs, RSTs from either side, ICMP errors, FINs
before the ACK, simultaneous opens, one and two VLAN tags and IP options on some packets,
truncated frames, 4-tuples reused at once, late SYN copies after a reject,
timeouts, timestamps out of order — through tcpeek with the bulk path and
without it (the exact, per-packet path alone), at several batch sizes so that
handshakes straddle batch boundaries, and compares every byte of output.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tcpscope import engine, pipeline
from tcpscope.capture import RawBatch
from tcpscope.cli import tcpeek
from tcpscope.decode.columns import columns
from tcpscope.engine import Engine
from tcpscope.track.light import WANT_ACK, Ahead, LightHandshakes
from tcpscope.track.prefilter import member
from tests.support import frames as f
from tests.support.cli import handshake_lines, run_main
from tests.support.pcapwrite import write_pcap

SECOND = 1_000_000_000
BASE = 1_700_000_000 * SECOND
Frame = tuple[int, bytes]

KINDS = (
    "ok", "ok", "ok", "ok", "ok_data", "dupsyn", "newsyn", "dupsynack", "reject",
    "client_rst", "unanswered", "icmp", "icmp_other_seq", "fin_early", "ack_fin",
    "simultaneous", "vlan_syn", "vlan_ack", "qinq_syn", "ip_options", "truncated", "late_copy",
    "reuse", "self", "not_local", "ecn", "slow", "stray_ack_first",
)  # fmt: skip


class Mix:
    """Frames of many handshakes, each a small script of packets at given times."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.frames: list[Frame] = []

    def add(self, t: float, frame: bytes) -> None:
        self.frames.append((BASE + int(t * SECOND), frame))

    def handshake(self, kind: str) -> None:
        rng = self.rng
        t = rng.uniform(0, 20)
        client = f"198.18.{rng.randrange(3)}.{rng.randrange(1, 60)}"
        cport = rng.randrange(30000, 30040)  # few ports: 4-tuples meet again
        server = f"198.19.0.{rng.randrange(1, 4)}"
        sport = rng.choice((80, 443))
        if kind == "not_local":
            client = f"198.19.1.{rng.randrange(1, 60)}"
        if kind == "self":
            server, sport = client, cport
        cseq, sseq = rng.getrandbits(32), rng.getrandbits(32)

        def gap() -> float:
            return rng.expovariate(1 / 0.05) if rng.random() < 0.8 else rng.uniform(0.3, 3.5)

        def c(
            flags: str | int, seq: int = cseq + 1, ack: int = sseq + 1, payload: bytes = b""
        ) -> bytes:
            return f.tcp_frame(client, cport, server, sport, flags, seq, ack, payload)

        def s(flags: str, seq: int = sseq + 1, ack: int = cseq + 1) -> bytes:
            return f.tcp_frame(server, sport, client, cport, flags, seq, ack)

        syn = c("S", cseq, 0)
        synack = s("SA", sseq, cseq + 1)
        ack = c("A")

        def step(frame: bytes) -> None:
            nonlocal t
            self.add(t, frame)
            t += gap()

        if kind in ("ok", "self", "not_local"):
            step(syn), step(synack), step(ack)
        elif kind == "ok_data":
            step(syn), step(synack), step(ack)
            step(c("PA", payload=b"x" * 10)), step(s("A", ack=cseq + 11))
            step(c("FA", seq=cseq + 11))
        elif kind == "dupsyn":
            step(syn), step(syn), step(synack), step(ack)
        elif kind == "newsyn":
            step(syn), step(c("S", cseq + 7, 0)), step(s("SA", sseq, cseq + 8)), step(ack)
        elif kind == "dupsynack":
            step(syn), step(synack), step(synack), step(ack)
        elif kind == "reject":
            step(syn), step(s("RA", 0, cseq + 1))
        elif kind == "client_rst":
            step(syn), step(synack), step(c("R"))
        elif kind == "unanswered":
            step(syn)
            if rng.random() < 0.5:
                step(syn)
        elif kind in ("icmp", "icmp_other_seq"):
            quoted = f.ipv4(client, server, f.tcp(cport, sport, cseq + (kind != "icmp"), 0, "S"))
            step(syn), step(f.unreach_frame(server, client, 3, quoted[:28]))
            if rng.random() < 0.5:
                step(synack), step(ack)
        elif kind == "fin_early":
            step(syn), step(synack), step(c("FA")), step(ack)
        elif kind == "ack_fin":
            step(syn), step(synack), step(c("FA"))
        elif kind == "simultaneous":
            step(syn), step(s("S", sseq, 0)), step(s("SA", sseq, cseq + 1))
            step(c("SA", cseq, sseq + 1))
        elif kind == "vlan_syn":
            step(f.ether(f.ipv4(client, server, f.tcp(cport, sport, cseq, 0, "S")), vlans=(5,)))
            step(synack), step(ack)
        elif kind == "qinq_syn":  # two tags: a SYN only the exact decoder reads
            syn2 = f.tcp(cport, sport, cseq, 0, "S")
            step(f.ether(f.ipv4(client, server, syn2), vlans=((0x88A8, 5), 7)))
            step(synack), step(ack)
        elif kind == "vlan_ack":
            step(syn), step(synack)
            tagged_ack = f.tcp(cport, sport, cseq + 1, sseq + 1, "A")
            step(f.ether(f.ipv4(client, server, tagged_ack), vlans=(5,)))
        elif kind == "ip_options":
            step(syn)
            step(f.ether(f.ipv4(server, client, f.tcp(sport, cport, sseq, cseq + 1, "SA"),
                                options=b"\x01" * 4)))  # fmt: skip
            step(ack)
        elif kind == "truncated":
            step(syn), step(synack[:40]), step(synack), step(ack)
        elif kind == "late_copy":
            step(syn), step(s("RA", 0, cseq + 1)), step(syn), step(synack), step(ack)
        elif kind == "reuse":
            step(syn), step(synack), step(ack)
            step(c("S", cseq + 100000, 0)), step(s("SA", sseq + 5, cseq + 100001))
            step(c("A", cseq + 100001, sseq + 6))
        elif kind == "ecn":
            step(c(0x02 | 0x40 | 0x80, cseq, 0)), step(synack), step(ack)
        elif kind == "slow":
            self.add(t, syn)
            self.add(t + rng.uniform(1.5, 4.0), synack)
            self.add(t + rng.uniform(4.0, 6.0), ack)
        elif kind == "stray_ack_first":
            step(c("A", cseq - 5, 9)), step(syn), step(synack), step(ack)

    def build(self, handshakes: int) -> list[Frame]:
        for _ in range(handshakes):
            self.handshake(self.rng.choice(KINDS))
        self.frames.sort(key=lambda fr: fr[0])
        # A few timestamps a little out of order, as captures from several CPUs are.
        for i in self.rng.sample(range(len(self.frames)), len(self.frames) // 50):
            ts, frame = self.frames[i]
            self.frames[i] = (ts - self.rng.randrange(0, 3 * SECOND // 1000), frame)
        return self.frames


@pytest.fixture(scope="module")
def mix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("light") / "mix.pcap"
    write_pcap(path, Mix(seed=11).build(1500))
    return path


def run(argv: list[str]) -> tuple[str, str]:
    return run_main(tcpeek.main, argv)


def without_times(text: str) -> list[str]:
    return [line for line in text.splitlines() if "time :" not in line]


class CountingEngine(Engine):
    """The engine, remembering how many handshakes it settled in bulk."""

    settled_total = 0
    ahead_total = 0

    def finish(self, now: int) -> None:
        super().finish(now)
        CountingEngine.settled_total += self.settled
        CountingEngine.ahead_total += self.ahead


@pytest.mark.parametrize("ahead", [False, True])
@pytest.mark.parametrize("batch", [1, 7, 97, 8192, 16384])
@pytest.mark.parametrize("mode", [["--json", "-q"], [], ["-q"]])
def test_bulk_path_changes_nothing(
    mix: Path, batch: int, mode: list[str], ahead: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [*mode, "-t", "2", "--icmp", "--local", "198.18.0.0/16", "-r", str(mix)]
    monkeypatch.setattr(tcpeek, "READ_BATCH", batch)
    monkeypatch.setattr(pipeline, "Engine", CountingEngine)
    # ahead: every batch planned with the sort and the sequence numbers the reading
    # thread works out (Engine.prepare), as a SYN flood's are; the mix has fewer SYNs.
    monkeypatch.setattr(engine, "AHEAD_SYN_SHARE", -1.0 if ahead else 2.0)
    CountingEngine.settled_total = CountingEngine.ahead_total = 0
    bulk_out, bulk_err = run(argv)
    if batch >= engine.SMALL_BATCH:  # smaller batches take the exact path whole
        assert CountingEngine.settled_total > 300
        assert (CountingEngine.ahead_total > 0) == ahead
    else:
        assert CountingEngine.settled_total == 0
    exact_out, exact_err = run([*argv, "--paths", "exact"])
    assert bulk_out == exact_out
    assert without_times(bulk_err) == without_times(exact_err)
    if "--json" in mode:
        results = [line.split('"result":"')[1].split('"')[0] for line in handshake_lines(bulk_out)]
        assert {"success", "reject", "timeout", "unreach"} <= set(results)
        assert '"dupsyn":1' in bulk_out and '"dupsynack":1' in bulk_out


def test_bulk_path_with_the_filters_of_the_spec(mix: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = [
        "-q", "--json", "--local", "198.18.0.0/16", "-r", str(mix),
        "web:TX@*:80", "tls:TX@198.19.0.1:443,198.19.0.2:443", ":TX@198.19.0.3:*",
    ]  # fmt: skip
    bulk_out, bulk_err = run(argv)
    exact_out, exact_err = run([*argv, "--paths", "exact"])
    assert bulk_out == exact_out
    assert without_times(bulk_err) == without_times(exact_err)
    assert '"filters":["TX","web"]' in bulk_out and '"filters":["TX","tls"]' in bulk_out
    assert '"filters":[]' in bulk_out  # excluded


# ------------------------------------------------------------- unit tests


def cols_of(frames: list[Frame]) -> tuple[object, bytes]:
    batch = RawBatch.of_frames(frames)
    cols = columns(1, batch.buf, batch.meta)
    assert cols is not None
    return cols, batch.buf


def everything_local(addresses: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
    return np.ones(addresses.size, dtype=bool)


def handshake(cport: int, t0: float = 0.0) -> list[Frame]:
    syn = f.tcp_frame("198.18.0.1", cport, "198.18.0.2", 80, "S", 100, 0)
    synack = f.tcp_frame("198.18.0.2", 80, "198.18.0.1", cport, "SA", 500, 101)
    ack = f.tcp_frame("198.18.0.1", cport, "198.18.0.2", 80, "A", 101, 501)
    return [(BASE + int((t0 + i * 0.01) * SECOND), fr) for i, fr in enumerate((syn, synack, ack))]


NONE = np.zeros(0, dtype=np.uint64)


def test_a_plan_with_what_was_worked_out_ahead_is_the_same() -> None:
    # SYNs left waiting (their sequence numbers kept in the rows), whole
    # handshakes, and a SYN/ACK for a SYN of the first batch in the second.
    frames: list[Frame] = []
    for port in range(40000, 40060):
        if port % 3 == 0:
            frames += handshake(port, t0=port - 40000)
        else:  # a SYN alone, its sequence number its own
            syn = f.tcp_frame("198.18.0.1", port, "198.18.0.2", 80, "S", port * 7, 0)
            frames.append((BASE + (port - 40000) * SECOND // 100, syn))
    frames.sort(key=lambda fr: fr[0])
    later = [f.tcp_frame("198.18.0.2", 80, "198.18.0.1", 40001, "SA", 500, 40001 * 7 + 1)]
    second = [(BASE + 100 * SECOND, later[0])]
    tables = []
    for worked_out in (False, True):
        light = LightHandshakes(300 * SECOND, everything_local)
        plans = []
        for batch in (frames, second):
            cols, buf = cols_of(batch)
            ahead = Ahead.of(cols, buf) if worked_out else None  # type: ignore[arg-type]
            plans.append(light.plan(cols, buf, NONE, ahead=ahead))  # type: ignore[arg-type]
        tables.append((plans, light))
    (plans, light), (plans_ahead, light_ahead) = tables
    assert plans[0].success_at.size == 20 and len(light) == 40
    for plan, plan_ahead in zip(plans, plans_ahead, strict=True):
        for field, got in zip(plan, plan_ahead, strict=True):
            if isinstance(field, np.ndarray):
                assert field.tolist() == got.tolist()
            else:
                assert field == got
    for column in ("canon", "seq", "want", "syn_ts", "last_ts"):
        assert getattr(light, column)[: light.n].tolist() == getattr(light_ahead, column)[
            : light_ahead.n
        ].tolist()
    waiting = [p * 7 for p in range(40000, 40060) if p % 3]
    assert sorted(light.seq[: light.n][light.alive[: light.n]].tolist()) == waiting


def test_a_handshake_across_two_batches_is_a_success_where_its_ack_is() -> None:
    light = LightHandshakes(30 * SECOND, everything_local)
    frames = handshake(40000)
    cols, buf = cols_of(frames[:2])
    first = light.plan(cols, buf, NONE)  # type: ignore[arg-type]
    assert first.bulk.tolist() == [0, 1] and not first.success_at.size
    assert len(light) == 1 and int(light.want[0]) == WANT_ACK
    cols, buf = cols_of([frames[2]])
    second = light.plan(cols, buf, NONE)  # type: ignore[arg-type]
    assert second.success_at.tolist() == [0] and second.bulk.tolist() == [0]
    assert second.start.tolist() == [frames[0][0]] and second.outbound.tolist() == [True]
    assert len(light) == 0
    assert light.arenas == {} and light.arena_refs == {}  # the kept frames went with it


def test_a_misfit_hands_the_handshake_over_with_its_frames() -> None:
    light = LightHandshakes(30 * SECOND, everything_local)
    frames = handshake(40001)
    cols, buf = cols_of(frames[:2])
    light.plan(cols, buf, NONE)  # type: ignore[arg-type]
    rst = (frames[1][0] + 5, f.tcp_frame("198.18.0.1", 40001, "198.18.0.2", 80, "R", 101, 0))
    cols, buf = cols_of([frames[0], rst])  # a SYN copy comes first: it does not fit
    plan = light.plan(cols, buf, NONE)  # type: ignore[arg-type]
    assert plan.promote_at.tolist() == [0] and not plan.promote_first.any()
    assert plan.promote_frames == [frames[:2]]  # replayed: the SYN, then the SYN/ACK
    assert plan.force.tolist() == [0, 1] and not plan.bulk.size
    assert len(light) == 0


@pytest.mark.parametrize("mostly_kept", [True, False])
def test_kept_frames_replay_the_same_from_a_copy_or_from_the_batch(mostly_kept: bool) -> None:
    """The frames a handshake keeps are copied out of their batch, unless they are
    most of it (a SYN flood): then the batch buffer itself is kept, no copy."""
    light = LightHandshakes(30 * SECOND, everything_local)
    frames = handshake(40006)
    # Another 4-tuple's established data: a large frame the light handshakes leave.
    data = f.tcp_frame("198.18.0.9", 5000, "198.18.0.2", 80, "PA", 7, 9, payload=b"x" * 1400)
    first = frames[:2] if mostly_kept else [*frames[:2], (frames[1][0] + 1, data)]
    cols, buf = cols_of(first)
    light.plan(cols, buf, NONE)  # type: ignore[arg-type]
    (arena,) = light.arenas.values()
    assert (arena is buf) is mostly_kept
    assert (len(arena) < len(buf) - 1000) is not mostly_kept  # only the two short frames copied
    rst = (frames[1][0] + 5, f.tcp_frame("198.18.0.1", 40006, "198.18.0.2", 80, "R", 101, 0))
    cols, buf = cols_of([rst])
    plan = light.plan(cols, buf, NONE)  # type: ignore[arg-type]
    assert plan.promote_frames == [frames[:2]]  # the SYN, then the SYN/ACK, byte for byte
    assert light.arenas == {} and light.arena_refs == {}


def test_a_handshake_a_tick_could_time_out_leaves_before_the_batch() -> None:
    light = LightHandshakes(2 * SECOND, everything_local)
    frames = handshake(40002)
    cols, buf = cols_of(frames[:1])
    light.plan(cols, buf, NONE)  # type: ignore[arg-type]
    late = [(frames[0][0] + 3 * SECOND, frames[1][1])]
    cols, buf = cols_of(late)
    plan = light.plan(cols, buf, NONE)  # type: ignore[arg-type]
    assert plan.promote_first.tolist() == [True]
    assert plan.promote_frames == [frames[:1]]
    assert plan.force.tolist() == [0]


def test_exact_only_tuples_are_left_to_the_exact_path() -> None:
    light = LightHandshakes(30 * SECOND, everything_local)
    cols, buf = cols_of(handshake(40003))
    plan = light.plan(cols, buf, cols.key[:1])  # type: ignore[attr-defined]
    assert not plan.bulk.size and not plan.success_at.size and len(light) == 0


def test_a_waiting_handshake_named_exact_only_leaves_first_when_no_other_continues() -> None:
    # As in a flood: the batch holds no packet of any waiting handshake, only new SYNs,
    # while an odd packet (here: `exact_only`) belongs to one that waits.
    light = LightHandshakes(30 * SECOND, everything_local)
    waiting = handshake(40007)
    cols, buf = cols_of(waiting[:1])
    light.plan(cols, buf, NONE)  # type: ignore[arg-type]
    named = np.concatenate((cols.key[:1], cols.rkey[:1]))  # type: ignore[attr-defined]  # both ways
    fresh = handshake(40008, t0=1.0)
    cols, buf = cols_of(fresh[:1])
    plan = light.plan(cols, buf, named)  # type: ignore[arg-type]
    assert plan.promote_first.tolist() == [True]
    assert plan.promote_frames == [waiting[:1]]
    assert plan.bulk.tolist() == [0] and len(light) == 1  # the new SYN waits in its place


def test_an_evacuation_replays_the_oldest_first() -> None:
    light = LightHandshakes(30 * SECOND, everything_local)
    a, b = handshake(40004, t0=1.0), handshake(40005, t0=0.0)
    cols, buf = cols_of([a[0], b[0], b[1]])
    light.plan(cols, buf, NONE)  # type: ignore[arg-type]
    assert light.arena_refs == {0: 3}  # both SYNs and one SYN/ACK, kept from one batch
    assert light.evacuate() == [[b[0], b[1]], [a[0]]]
    assert len(light) == 0 and light.arenas == {}


@pytest.mark.parametrize("size", [1, 10, 1000, 50_000])
def test_member_never_misses_and_rarely_says_maybe(size: int) -> None:
    rng = np.random.default_rng(size)
    table = rng.integers(0, 2**64, size, dtype=np.uint64)
    others = rng.integers(0, 2**64, 100_000, dtype=np.uint64)
    assert member(table, table).all()
    wrong = member(others, table).mean()
    assert wrong < 0.01


@pytest.mark.parametrize(("values", "size"), [(1, 16_000), (16, 16_384), (16, 4), (3, 3)])
def test_member_of_few_pairs_says_no_maybe(values: int, size: int) -> None:
    rng = np.random.default_rng(values + size)
    table = rng.integers(0, 2**64, size, dtype=np.uint64)
    asked = rng.integers(0, 2**64, values, dtype=np.uint64)
    there = min((values + 1) // 2, size)
    asked[: 2 * there : 2] = table[:there]  # every other one is there
    assert member(asked, table).tolist() == np.isin(asked, table).tolist()


def test_member_of_nothing_is_nothing() -> None:
    values = np.arange(5, dtype=np.uint64)
    empty: Callable[[], np.ndarray] = lambda: np.zeros(0, dtype=np.uint64)  # type: ignore[type-arg]  # noqa: E731
    assert not member(values, empty()).any()


def test_gathered_frames_are_the_frames_whatever_their_lengths_and_places() -> None:
    """Kept SYN and SYN/ACK frames are copied out of the batch in bulk (whole
    words, junk after each frame's end): every copy must be its frame exactly,
    for frames at the very end of the buffer and frames too long for the words."""
    from tcpscope.track.light import GATHER_WORDS, _gather

    rng = np.random.default_rng(7)
    for _ in range(300):
        buf = rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes()
        offsets = rng.integers(0, len(buf), int(rng.integers(1, 20)))
        longest = 8 * GATHER_WORDS + 100
        lengths = np.minimum(rng.integers(1, longest, offsets.size), len(buf) - offsets)
        arena, at = _gather(buf, offsets.astype(np.int64), lengths.astype(np.int64))
        places = zip(at.tolist(), lengths.tolist(), offsets.tolist(), strict=True)
        for start, length, offset in places:
            assert arena[start : start + length] == buf[offset : offset + length]
    assert _gather(b"abc", np.zeros(0, np.int64), np.zeros(0, np.int64))[0] == b""
