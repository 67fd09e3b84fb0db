"""Live capture on several processes: N handles on one interface joined in one
Linux PACKET_FANOUT group, so the kernel hands each packet to exactly one of them.

    group = join(cap)             # the first handle: a fresh group id from the kernel
    join(other_cap, group)        # the others join that id
    batch = drop_before(batch, start_ns)   # a worker's packets from the common start

What the kernel does (net/packet/af_packet.c), and why these choices:

- A socket joins with `setsockopt(SOL_PACKET, PACKET_FANOUT, id | type_flags << 16)`
  (pcapy-ng's `set_fanout(id, type_flags)`). The kernel refuses it until the socket
  is bound and running, so it comes *after* `pcap_activate()`: pcapy-ng's
  set_fanout works on an activated handle only (before, there is no socket).
- PACKET_FANOUT_HASH picks the member with `__skb_get_hash_symmetric()`: the flow
  dissector's hash with the two endpoints sorted, so both directions of a TCP
  connection (addresses and ports) go to the same socket. The tests check it.
- The member is `hash * members >> 32`: while members join, flows move between
  them. Hence `drop_before`: every worker starts counting at one instant taken
  after the last one joined, and discards what it was given before.
- IP fragments: the dissector does not read the ports of a fragment, so without
  help a fragmented segment would be hashed on its addresses alone and could
  reach another worker than the rest of its connection. PACKET_FANOUT_FLAG_DEFRAG
  makes the kernel reassemble IPv4 fragments before hashing, so the datagram
  follows its flow - whole: a worker sees the reassembled segment, not fragments
  (miruo's `F` mark and fragment count stay 0 for IPv4 under --workers). The
  kernel has no such step for IPv6 fragments: those are hashed on their
  addresses and may reach another worker (README, "--workers").
- PACKET_FANOUT_FLAG_UNIQUEID (newer kernels) lets the kernel choose a group id
  no other group of the network namespace uses; where it is refused, an id from
  the process id is used.
"""

from __future__ import annotations

import os
import socket
import struct

from tcpscope.capture.source import Capture, RawBatch

SOL_PACKET = 263
PACKET_FANOUT = 18
PACKET_FANOUT_HASH = 0
PACKET_FANOUT_FLAG_UNIQUEID = 0x2000
PACKET_FANOUT_FLAG_DEFRAG = 0x8000
# What every member asks for (members of one group must agree on it).
TYPE_FLAGS = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG
MAX_MEMBERS = 256  # the kernel's PACKET_FANOUT_MAX

_META = struct.Struct("=IIII")  # capture.source's per-packet record


def group_of(cap: Capture) -> int:
    """The fan-out group id the handle's socket is in (as the kernel reports it)."""
    probe = socket.socket(fileno=os.dup(cap.fileno()))
    try:
        value = probe.getsockopt(SOL_PACKET, PACKET_FANOUT)
    finally:
        probe.close()  # our duplicate only: the capture keeps its socket
    return int(value) & 0xFFFF


def join(cap: Capture, group: int | None = None) -> int:
    """Join `cap` to fan-out group `group`, or (None) to a new group; the group id."""
    if group is not None:
        cap.set_fanout(group, TYPE_FLAGS)
        return group
    try:
        cap.set_fanout(0, TYPE_FLAGS | PACKET_FANOUT_FLAG_UNIQUEID)
    except Exception:  # a kernel without UNIQUEID: an id of our own
        cap.set_fanout(os.getpid() & 0xFFFF, TYPE_FLAGS)
    return group_of(cap)


def drop_before(batch: RawBatch, start_ns: int) -> RawBatch:
    """The packets of `batch` stamped at or after `start_ns` (the buffer is kept:
    the meta records still point into it)."""
    sec, usec = divmod(start_ns // 1000, 1_000_000)
    meta = batch.meta
    kept = [
        meta[i : i + _META.size]
        for i in range(0, len(meta), _META.size)
        if _META.unpack_from(meta, i)[:2] >= (sec, usec)
    ]
    if len(kept) * _META.size == len(meta):
        return batch
    return RawBatch(batch.buf, b"".join(kept))
