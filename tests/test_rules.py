"""The fast paths' facts (tcpscope.rules): the hash invariant as a property,
and each numpy form against its Python form on arbitrary inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as s

from tcpscope import rules
from tcpscope.decode.records import ACK, FIN, RST, SYN
from tcpscope.track import states as st

u32 = s.integers(0, 2**32 - 1)
u16 = s.integers(0, 2**16 - 1)


@given(u32, u32, u16, u16)
def test_a_key_and_the_addresses_pin_the_ports(src: int, dst: int, sport: int, dport: int) -> None:
    ports = sport << 16 | dport
    key = rules.key_of(src, dst, ports)
    assert rules.ports_of(key, src << 32 | dst) == ports


@given(u32, u32, u16, u16, u16, u16)
def test_same_addresses_and_key_means_same_ports(
    src: int, dst: int, sport: int, dport: int, sport2: int, dport2: int
) -> None:
    a, b = sport << 16 | dport, sport2 << 16 | dport2
    same_key = rules.key_of(src, dst, a) == rules.key_of(src, dst, b)
    assert same_key == (a == b)


def test_colliding_keys_are_told_apart_by_the_addresses() -> None:
    """Two different 4-tuples built to share a key: possible, but their addresses
    differ, so (key, addresses) still tells them apart."""
    key = rules.key_of(0xC6120001, 0xC6130001, 40000 << 16 | 443)
    other_ports = 40001 << 16 | 80
    addresses = key ^ ((other_ports * rules.KEY_MULTIPLIER) & rules.MASK64)
    src, dst = addresses >> 32, addresses & 0xFFFFFFFF
    assert rules.key_of(src, dst, other_ports) == key
    assert addresses != 0xC6120001 << 32 | 0xC6130001


@given(s.lists(s.tuples(u32, u32, u32), min_size=1, max_size=50))
def test_numpy_hash_and_swap_match_python(rows: list[tuple[int, int, int]]) -> None:
    src, dst, ports = (np.array(col, dtype=np.uint64) for col in zip(*rows, strict=True))
    assert rules.key_np(src, dst, ports).tolist() == [rules.key_of(*r) for r in rows]
    assert rules.reverse_ports_np(ports).tolist() == [rules.reverse_ports(r[2]) for r in rows]
    swapped = [rules.reverse_ports(rules.reverse_ports(r[2])) for r in rows]
    assert swapped == [r[2] for r in rows]


def test_key_hashes_are_the_two_directions() -> None:
    forward, backward = rules.key_hashes(b"\xc6\x12\x00\x01", 40000, b"\xc6\x13\x00\x01", 443)
    assert forward == rules.key_hash(b"\xc6\x12\x00\x01", 40000, b"\xc6\x13\x00\x01", 443)
    assert backward == rules.key_hash(b"\xc6\x13\x00\x01", 443, b"\xc6\x12\x00\x01", 40000)
    assert rules.canonical_key(forward, backward) == rules.canonical_key(backward, forward)


def test_opening_flags_match_the_states_module() -> None:
    every = np.arange(256, dtype=np.uint8)
    opening = rules.opens_session_np(every)
    assert opening.tolist() == [st.opens_session(int(f)) for f in every]
    assert opening[SYN] and opening[SYN | 0x40 | 0x80]  # ECN bits do not matter
    assert not opening[SYN | ACK] and not opening[SYN | FIN] and not opening[SYN | RST]


def test_the_handshake_is_what_the_states_establish() -> None:
    assert rules.HANDSHAKE == ((True, SYN), (False, SYN | ACK), (True, ACK))


@given(s.lists(s.integers(0, 5), min_size=0, max_size=60))
def test_grouping_keeps_batch_order_inside_each_group(keys: list[int]) -> None:
    canonical = np.array(keys, dtype=np.uint64)
    idx = np.arange(len(keys), dtype=np.intp)
    packets, starts, sizes, group = rules.group_by_connection(canonical, idx)
    assert sorted(packets.tolist()) == list(range(len(keys)))
    assert sizes.sum() == len(keys) and len(set(canonical[packets[starts]].tolist())) == len(starts)
    for g, start in enumerate(starts.tolist()):
        members = packets[start : start + sizes[g]]
        assert (np.diff(members) > 0).all()  # batch order
        assert (canonical[members] == canonical[members[0]]).all()
        assert (group[start : start + sizes[g]] == g).all()


@given(
    s.lists(s.integers(0, 5), min_size=0, max_size=60),
    s.lists(s.booleans(), min_size=60, max_size=60),
)
def test_grouping_in_an_order_worked_out_ahead_is_the_same(
    keys: list[int], chosen: list[bool]
) -> None:
    # The reading thread may sort the whole batch once (Engine.prepare); any part
    # of it taken from that order must be grouped as a sort of the part would.
    canonical = np.array(keys, dtype=np.uint64)
    idx = np.flatnonzero(np.array(chosen[: len(keys)], dtype=bool))
    sorted_here = rules.group_by_connection(canonical, idx)
    ahead = rules.group_by_connection(canonical, idx, rules.connection_order(canonical))
    for here, there in zip(sorted_here, ahead, strict=True):
        assert here.tolist() == there.tolist()
