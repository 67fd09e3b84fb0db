"""The facts the fast paths rely on, each written once: its Python form (the
exact path's) and its numpy form (the bulk paths') side by side, the numpy
form checked against the Python one, or against the transition table, when
this module is imported.

- the 4-tuple hash, and why a hash with the two addresses pins a session;
- the port swap (a 4-tuple's reverse direction);
- the canonical key of a connection, and grouping a batch by connection;
- the flags that decide a transition, and what opens a session;
- the plain handshake: SYN, SYN/ACK, ACK, the three packets a success needs.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from tcpscope.decode.records import ACK, SYN
from tcpscope.track import states as st

U64 = npt.NDArray[np.uint64]
Mask = npt.NDArray[np.bool_]
Index = npt.NDArray[np.intp]

# ------------------------------------------------------------------ the hash
#
# key = (src << 32 | dst) XOR (ports * K mod 2**64), ports = sport << 16 | dport.
#
# Why a key and the two addresses pin the whole 4-tuple: given the key and
# A = src << 32 | dst, ports * K = key XOR A. K is odd, so multiplying by it is
# a bijection on 64-bit words (K has an inverse mod 2**64, KEY_INVERSE): there is
# exactly one `ports` for that product, and so one 4-tuple for (key, A). Two
# sessions may share a key (then their A differ), never a (key, A) pair. The
# tracker's plain-segment entry (Tracker.feed_plain) and the light handshakes
# rely on this: a hash match confirmed by the addresses is the session.
KEY_MULTIPLIER: Final = 0x9E3779B97F4A7C15
MASK64: Final = (1 << 64) - 1
KEY_INVERSE: Final = pow(KEY_MULTIPLIER, -1, 1 << 64)
_K = np.uint64(KEY_MULTIPLIER)
_U16 = np.uint64(0xFFFF)
_16 = np.uint64(16)
_32 = np.uint64(32)


def key_of(src: int, dst: int, ports: int) -> int:
    """The hash of a directional IPv4 4-tuple (addresses as integers)."""
    return ((src << 32) | dst) ^ ((ports * KEY_MULTIPLIER) & MASK64)


def key_hashes(src: bytes, sport: int, dst: bytes, dport: int) -> tuple[int, int]:
    """The hash of a 4-tuple and of its reverse."""
    s = int.from_bytes(src, "big")
    d = int.from_bytes(dst, "big")
    ports = (sport << 16) | dport
    return key_of(s, d, ports), key_of(d, s, reverse_ports(ports))


def key_hash(src: bytes, sport: int, dst: bytes, dport: int) -> int:
    """The hash of one directional 4-tuple given as packed addresses."""
    return key_of(int.from_bytes(src, "big"), int.from_bytes(dst, "big"), (sport << 16) | dport)


def ports_of(key: int, addresses: int) -> int:
    """The one `ports` word that `key` can hold with these addresses (the invariant)."""
    return ((key ^ addresses) * KEY_INVERSE) & MASK64


def key_np(src: U64, dst: U64, ports: U64) -> U64:
    """`key_of`, for columns."""
    with np.errstate(over="ignore"):
        key: U64 = ((src << _32) | dst) ^ (ports * _K)
    return key


# -------------------------------------------------------------- the port swap


def reverse_ports(ports: int) -> int:
    """sport << 16 | dport of the reverse direction."""
    return ((ports & 0xFFFF) << 16) | (ports >> 16)


def reverse_ports_np(ports: U64) -> U64:
    swapped: U64 = ((ports & _U16) << _16) | (ports >> _16)
    return swapped


# ------------------------------------------------------- grouping by connection


def canonical_key(key: int, rkey: int) -> int:
    """One key for both directions of a connection."""
    return min(key, rkey)


def canonical_key_np(key: U64, rkey: U64) -> U64:
    canonical: U64 = np.minimum(key, rkey)
    return canonical


class ByConnection(NamedTuple):
    """Packets grouped by connection (canonical key), batch order inside each group."""

    packets: Index  # batch indices, group after group
    starts: Index  # where each group begins in `packets`
    sizes: Index  # each group's packet count
    group: Index  # each packet's group number


def connection_order(canonical: U64) -> Index:
    """Every packet of a batch in connection order, batch order inside each
    connection (a stable sort): `group_by_connection`'s `order`, worked out ahead."""
    order: Index = np.argsort(canonical, kind="stable")
    return order


def group_by_connection(canonical: U64, idx: Index, order: Index | None = None) -> ByConnection:
    """Group the packets `idx` (in batch order) by their `canonical` key, batch
    order inside each group. `order`: the batch's `connection_order`, when the
    reading thread worked it out; then no sort is needed here, since the packets
    of `idx` taken from a stable sort of all keep the order a stable sort of
    theirs alone gives."""
    if order is None:
        packets = idx[np.argsort(canonical[idx], kind="stable")]
    else:
        chosen = np.zeros(canonical.size, dtype=bool)
        chosen[idx] = True
        packets = order[chosen[order]]
    keys = canonical[packets]
    starts = (
        np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        if packets.size
        else np.zeros(0, dtype=np.intp)
    )
    sizes = np.diff(np.r_[starts, packets.size])
    group = np.repeat(np.arange(starts.size), sizes)
    return ByConnection(packets, starts, sizes, group)


# ------------------------------------------------------------- the flags

DECISIVE_FLAGS: Final = st.DECISIVE_FLAGS  # only these decide a transition
opens_session = st.opens_session


def decisive_np(flags: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    decisive: npt.NDArray[np.uint8] = flags & np.uint8(DECISIVE_FLAGS)
    return decisive


def opens_session_np(flags: npt.NDArray[np.uint8]) -> Mask:
    """`states.opens_session`, for a column of flags bytes."""
    opening: Mask = decisive_np(flags) == SYN
    return opening


# ----------------------------------------------------- the plain handshake

# (from the client?, flags after masking with DECISIVE_FLAGS) for each of the
# three packets of a handshake that succeeds with nothing else in between.
HANDSHAKE: Final = ((True, SYN), (False, SYN | ACK), (True, ACK))


def _require(fact: bool, what: str) -> None:
    """An import-time check of a numpy form against its rule (not an assert: -O keeps it)."""
    if not fact:
        raise ImportError(f"tcpscope.rules: {what}")


def _handshake_from_the_table() -> None:
    """HANDSHAKE is what the transition table makes a success of: the SYN opens
    (SYN_SENT / SYN_RECV), the SYN/ACK and the ACK each establish a side, and
    nothing in it is unexpected."""
    from_client, flags = HANDSHAKE[0]
    _require(from_client and opens_session(flags), "the handshake must open with a SYN")
    client, server = st.SYN_SENT, st.SYN_RECV
    for from_client, flags in HANDSHAKE[1:]:
        if from_client:
            client, server, outcome = st.step(flags, client, server)
        else:
            server, client, outcome = st.step(flags, server, client)
        _require(
            bool(outcome & st.ESTABLISHING) and not outcome & (st.UNEXPECTED | st.IS_RST),
            f"handshake step {flags:#x} must establish a side",
        )
    _require(client == server == st.ESTABLISHED, "the handshake must establish both sides")


def _numpy_forms_agree() -> None:
    every = np.arange(256, dtype=np.uint8)
    opening = [opens_session(int(f)) for f in every]
    _require(opens_session_np(every).tolist() == opening, "opens_session_np")
    ports = np.array([0, 1, 0xFFFF, 0x10000, 0x1234ABCD, 0xFFFFFFFF], dtype=np.uint64)
    swapped = [reverse_ports(int(p)) for p in ports]
    _require(reverse_ports_np(ports).tolist() == swapped, "reverse_ports_np")
    src = np.array([0, 0xC6120001, 0xFFFFFFFF, 1, 2, 3], dtype=np.uint64)
    dst = src[::-1].copy()
    expected = [key_of(int(s), int(d), int(p)) for s, d, p in zip(src, dst, ports, strict=True)]
    _require(key_np(src, dst, ports).tolist() == expected, "key_np")
    _require((KEY_MULTIPLIER * KEY_INVERSE) & MASK64 == 1, "KEY_INVERSE")


_handshake_from_the_table()
_numpy_forms_agree()
