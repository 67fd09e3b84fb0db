"""tcpeek's analyzer: a verdict for every three-way handshake.

success: the SYN/ACK and the client's ACK (or, in a simultaneous open, both
SYN/ACKs); reject: an RST from either side first; unreach: an ICMP/ICMPv6
destination-unreachable quoting the SYN (with --icmp); timeout: nothing
completed it within -t seconds of its last packet (the tracker's half-open
timeout), or it was still pending when the capture ended.
Once judged, a session is dropped from the table, so the rest of an
established connection costs one failed lookup per packet.
"""

from __future__ import annotations

import heapq
import ipaddress
import logging
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from tcpscope.analyze.tcpeek_counters import Counters
from tcpscope.analyze.tcpeek_filters import FilterSet
from tcpscope.decode.records import ACK, SYN, IcmpError, Segment
from tcpscope.rules import U64, key_hashes
from tcpscope.track import states as st
from tcpscope.track.session import HS_ACK, HS_SYNACK, Session
from tcpscope.track.tracker import RETRANSMISSION, SECOND, Tracker

SUCCESS, REJECT, TIMEOUT, UNREACH = "success", "reject", "timeout", "unreach"
ICMP_FRAG_NEEDED = (4, 3, 4)  # (version, type, code): path-MTU news, not a failure
ANSWERS_KEPT = 65536  # remembered direction and filter answers (then started afresh)

log = logging.getLogger("tcpscope.tcpeek")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Mask = npt.NDArray[np.bool_]


class Handshake(NamedTuple):
    """One judged handshake (a table row, a JSON object, a count)."""

    client: bytes
    client_port: int
    server: bytes
    server_port: int
    start: int  # first SYN, ns
    end: int  # when the verdict fell, ns
    result: str
    icmp: tuple[int, int] | None  # (type, code) for unreach
    rtt: int | None  # handshake time in ns (success only)
    dupsyn: int
    dupsynack: int
    direction: str  # "RX" or "TX"
    filters: tuple[str, ...]


class LocalAddresses:
    """This host's addresses or networks: they decide RX (SYN to us) from TX (SYN from us)."""

    def __init__(self, networks: Iterable[Network]) -> None:
        exact: set[bytes] = set()
        # per address length (4 or 16): (network as an int, mask as an int)
        ranges: dict[int, list[tuple[int, int]]] = {4: [], 16: []}
        for net in networks:
            if net.prefixlen == net.max_prefixlen:
                exact.add(net.network_address.packed)
            else:
                ranges[len(net.network_address.packed)].append(
                    (int(net.network_address), int(net.netmask))
                )
        self._exact = frozenset(exact)
        self._ranges = {size: tuple(nets) for size, nets in ranges.items()}

    @classmethod
    def parse(cls, texts: Iterable[str]) -> LocalAddresses:
        return cls(ipaddress.ip_network(t, strict=False) for t in texts)

    def __contains__(self, packed: bytes) -> bool:
        if packed in self._exact:
            return True
        ranges = self._ranges.get(len(packed))
        if not ranges:
            return False
        value = int.from_bytes(packed, "big")
        return any(value & mask == network for network, mask in ranges)

    def __bool__(self) -> bool:
        return bool(self._exact or any(self._ranges.values()))

    def ipv4_mask(self, addresses: U64) -> npt.NDArray[np.bool_]:
        """Which of these IPv4 addresses (as integers) are local: `in`, for a whole array."""
        exact = np.array(
            [int.from_bytes(a, "big") for a in self._exact if len(a) == 4], dtype=np.uint64
        )
        found: npt.NDArray[np.bool_] = np.isin(addresses, exact)  # exact: not `member`
        for network, mask in self._ranges[4]:
            found |= (addresses & np.uint64(mask)) == np.uint64(network)
        return found


class _Pending:
    """What tcpeek keeps per handshake in `Session.ext`."""

    __slots__ = ("client_synack", "direction", "done", "simultaneous")

    def __init__(self, direction: str) -> None:
        self.direction = direction
        self.simultaneous = False
        self.client_synack = False
        self.done = False


class Failure:
    """A failed handshake remembered after its verdict: its SYN's seq, when it was
    judged, its start and its DUP SYN count (the record's, then copies since)."""

    __slots__ = ("at", "dupsyn", "seq", "start")

    def __init__(self, seq: int, at: int, start: int, dupsyn: int) -> None:
        self.seq = seq
        self.at = at
        self.start = start
        self.dupsyn = dupsyn


class LateDupSyn(NamedTuple):
    """A SYN sent again after its handshake's failure verdict (an ICMP error or an
    RST the client did not get): one more DUP SYN of that handshake's record,
    which was written at the verdict. `start` and the 4-tuple name the record;
    `dupsyn` is its count now."""

    client: bytes
    client_port: int
    server: bytes
    server_port: int
    start: int
    time: int  # the copy's stamp, ns
    dupsyn: int


class RecentFailures:
    """Failed handshakes judged lately: 4-tuple -> Failure, forgotten once the
    clock is `remember_ns` past their verdict; with the 64-bit hashes of both
    directions of the IPv4 ones (rules.key_hashes), which the bulk path must
    leave alone."""

    def __init__(self, remember_ns: int) -> None:
        self.remember_ns = remember_ns
        self._judged: dict[tuple[bytes, int, bytes, int], Failure] = {}
        self._hashes: dict[int, int] = {}  # hash -> how many 4-tuples have it
        # (verdict time, a counter, 4-tuple), earliest first: what to forget next
        self._by_age: list[tuple[int, int, tuple[bytes, int, bytes, int]]] = []
        self._added = 0

    def __bool__(self) -> bool:
        return bool(self._judged)

    def add(
        self, key: tuple[bytes, int, bytes, int], seq: int, at: int, start: int = 0,
        dupsyn: int = 0,
    ) -> None:  # fmt: skip
        judged = self._judged
        if key not in judged and len(key[0]) == 4:
            for h in key_hashes(*key):
                self._hashes[h] = self._hashes.get(h, 0) + 1
        judged[key] = Failure(seq, at, start, dupsyn)
        self._added += 1
        heapq.heappush(self._by_age, (at, self._added, key))

    def forget_before(self, horizon: int) -> None:
        """Forget every failure judged before `horizon`. Called at the clock's ticks
        (the same packets on every path, and in every worker of -j: not at a SYN's
        lookup, whose stamp may jump, nor at verdicts, which differ per worker),
        each failure by its own time."""
        by_age, judged = self._by_age, self._judged
        while by_age and by_age[0][0] < horizon:
            at, _, key = heapq.heappop(by_age)
            entry = judged.get(key)
            if entry is not None and entry.at == at:  # else judged again since
                del judged[key]
                self._unhash(key)

    def _unhash(self, key: tuple[bytes, int, bytes, int]) -> None:
        if len(key[0]) == 4:
            for h in key_hashes(*key):
                left = self._hashes.pop(h) - 1
                if left:
                    self._hashes[h] = left

    def late_copy(self, key: tuple[bytes, int, bytes, int], seq: int, now: int) -> Failure | None:
        """The failure a SYN with this `seq`, stamped `now`, is a late copy of (one
        judged at most `remember_ns` before), if any."""
        earlier = self._judged.get(key)
        if earlier is not None and earlier.seq == seq and earlier.at >= now - self.remember_ns:
            return earlier
        return None

    def is_late_copy(self, key: tuple[bytes, int, bytes, int], seq: int, now: int) -> bool:
        return self.late_copy(key, seq, now) is not None

    def hashes(self) -> Iterable[int]:
        return self._hashes.keys()


class TcpeekAnalyzer:
    """The tracker's listener for tcpeek."""

    def __init__(
        self,
        local: LocalAddresses,
        filters: FilterSet,
        counters: Counters,
        emit: Callable[[Handshake], None] | None,
        icmp: bool = False,
        remember_ns: int = 60 * SECOND,
    ) -> None:
        self.local = local
        self.filters = filters
        self.counters = counters
        self.emit = emit
        self.icmp = icmp
        self.tracker: Tracker | None = None  # set by whoever wires the two together
        # A SYN sent again after a failure verdict (the client never got the RST or
        # ICMP error we saw) is part of the judged attempt, not a new handshake.
        self._failures = RecentFailures(remember_ns)
        self.not_local = 0  # handshakes between two foreign hosts: not counted
        # SYNs sent again after their handshake's failure verdict (DUP SYNs of a
        # record already written), and who hears of each (tcpeek --json).
        self.late_dupsyns = 0
        self.emit_late: Callable[[LateDupSyn], None] | None = None
        self._warned_not_local = False
        # Most handshakes involve few addresses and ports: remember the answers.
        self._is_local: dict[bytes, bool] = {}
        self._matches: dict[tuple[str, bytes, int], tuple[str, ...]] = {}

    # ---------------------------------------------------------------- hooks
    def on_open(self, sess: Session, seg: Segment) -> None:
        if self._failures:
            failure = self._failures.late_copy(sess.key, seg.seq, seg.ts)
            if failure is not None:
                self._late_dupsyn(sess, failure, seg.ts)
                return
        direction = self._direction(seg.src, seg.dst)
        if direction is None:
            self._release(sess)
            return
        sess.ext = _Pending(direction)

    def on_segment(
        self, sess: Session, seg: Segment, outcome: int, original: Segment | None
    ) -> None:
        pending: _Pending | None = sess.ext
        if pending is None or pending.done:
            return
        if outcome & RETRANSMISSION:
            return  # counted by the tracker (syn_dups / synack_dups)
        flags = seg.flags & st.DECISIVE_FLAGS
        if outcome & st.IS_RST:
            self._judge(sess, REJECT, seg.ts)
        elif seg.dir == 1 and flags == SYN:
            pending.simultaneous = True  # the SYNs crossed
        elif pending.simultaneous and seg.dir == 0 and flags == SYN | ACK:
            pending.client_synack = True
            if sess.handshake & HS_SYNACK:
                self._judge(sess, SUCCESS, seg.ts)
        elif sess.handshake & HS_SYNACK and (sess.handshake & HS_ACK or pending.client_synack):
            self._judge(sess, SUCCESS, seg.ts)
        elif outcome & st.UNEXPECTED:
            log.debug("out-of-sequence segment in handshake %d ignored", sess.id)

    def on_close(self, sess: Session, reason: str, now: int) -> None:
        pending: _Pending | None = sess.ext
        if pending is None or pending.done:
            return
        # A timeout; a new SYN breaking this one; the end of the capture; a FIN
        # before the handshake completed: none of them completed it.
        self._judge(sess, TIMEOUT, now)

    def on_tick(self, now: int) -> None:
        """The clock's tick (Tracker.tick): failures older than -t's memory go."""
        self._failures.forget_before(now - self._failures.remember_ns)

    def on_icmp(self, sess: Session | None, icmp: IcmpError) -> None:
        if not self.icmp or sess is None:
            return
        pending: _Pending | None = sess.ext
        if pending is None or pending.done:
            return
        if (icmp.q_src, icmp.q_sport) != (sess.client, sess.cport):
            return  # it quotes the server's segment, not the SYN
        if icmp.q_seq is not None and icmp.q_seq != sess.syn_seq:
            return  # another connection on the same 4-tuple
        if (icmp.version, icmp.type, icmp.code) == ICMP_FRAG_NEEDED:
            return
        self._judge(sess, UNREACH, icmp.ts, (icmp.type, icmp.code))

    # ------------------------------------------- handshakes settled in bulk
    def exact_only(self) -> Iterable[int]:
        """Hashes of the 4-tuples whose next SYN may be a late copy (engine.HandshakeJudge)."""
        return self._failures.hashes()

    def local_ipv4(self, addresses: U64) -> npt.NDArray[np.bool_]:
        """Which IPv4 addresses (integers) are local (engine.HandshakeJudge)."""
        return self.local.ipv4_mask(addresses)

    @property
    def records_wanted(self) -> bool:
        """Does anyone want each handshake (table, JSON), or only the counts?"""
        return self.emit is not None

    def bulk_counts(
        self, result: str, client: U64, server: U64, ports: U64, outbound: Mask
    ) -> None:
        """Count handshakes judged in bulk (successes settled by track.light, or light
        ones still pending when the capture ends: timeouts), when nobody wants their
        records: the counts `settled` or `_judge` would make, added up by filters."""
        remote = np.where(outbound, server, client)
        numbers, names = self.filters.match_ipv4(outbound, remote, ports & np.uint64(0xFFFF))
        counts = np.bincount(numbers, minlength=len(names))
        for matched, times in zip(names, counts.tolist(), strict=True):
            if times:
                self.counters.record(matched, result, 0, 0, times)

    def settled(
        self,
        client: bytes,
        cport: int,
        server: bytes,
        sport: int,
        start: int,
        outbound: bool,
        end: int,
    ) -> None:
        """A SYN, its SYN/ACK and the ACK, and nothing else, followed by the engine
        (track.light): what on_open and on_segment make of those three. `outbound`:
        the client is local (TX); else the server is (RX)."""
        self._bulk_verdict(client, cport, server, sport, start, outbound, end, SUCCESS)

    def pending_at_end(
        self,
        client: bytes,
        cport: int,
        server: bytes,
        sport: int,
        start: int,
        outbound: bool,
        end: int,
    ) -> None:
        """A handshake followed in bulk still pending at the end (a SYN, maybe its
        SYN/ACK, no copies): what on_open and on_close make of its replay there, a
        timeout. Not remembered among the failures: no packet comes after the end."""
        self._bulk_verdict(client, cport, server, sport, start, outbound, end, TIMEOUT)

    def timed_out(
        self,
        client: bytes,
        cport: int,
        server: bytes,
        sport: int,
        start: int,
        outbound: bool,
        seq: int,
        end: int,
    ) -> None:
        """A handshake followed in bulk that a tick timed out (a SYN, maybe its
        SYN/ACK, no copies): what on_open and on_close make of its replay then, a
        timeout, remembered among the failures (a copy of its SYN may follow)."""
        self._failures.add((client, cport, server, sport), seq, end, start, 0)
        self._bulk_verdict(client, cport, server, sport, start, outbound, end, TIMEOUT)

    # ------------------------------------------------------------ internals
    def _bulk_verdict(
        self, client: bytes, cport: int, server: bytes, sport: int, start: int,
        outbound: bool, end: int, result: str,
    ) -> None:  # fmt: skip
        """A handshake followed in bulk, judged (no copies: DUP SYN and DUP S/A 0)."""
        direction = "TX" if outbound else "RX"
        names = self._filter_names(direction, server if outbound else client, sport)
        self.counters.record(names, result, 0, 0)
        if self.emit is not None:
            rtt = end - start if result == SUCCESS else None
            self.emit(
                Handshake(
                    client, cport, server, sport, start, end, result, None, rtt, 0, 0,
                    direction, names,
                )
            )  # fmt: skip

    def _judge(
        self, sess: Session, result: str, at: int, icmp: tuple[int, int] | None = None
    ) -> None:
        pending: _Pending = sess.ext
        pending.done = True
        remote = sess.server if pending.direction == "TX" else sess.client
        names = self._filter_names(pending.direction, remote, sess.sport)
        rtt = (sess.established_ts or at) - sess.first_ts if result == SUCCESS else None
        self.counters.record(names, result, sess.syn_dups, sess.synack_dups)
        if result != SUCCESS:
            self._failures.add(sess.key, sess.syn_seq, at, sess.first_ts, sess.syn_dups)
        if self.emit is None:  # counted, and nobody wants the record (-q without --json)
            self._release(sess)
            return
        self.emit(
            Handshake(
                client=sess.client,
                client_port=sess.cport,
                server=sess.server,
                server_port=sess.sport,
                start=sess.first_ts,
                end=at,
                result=result,
                icmp=icmp,
                rtt=rtt,
                dupsyn=sess.syn_dups,
                dupsynack=sess.synack_dups,
                direction=pending.direction,
                filters=names,
            )
        )
        self._release(sess)

    def _late_dupsyn(self, sess: Session, failure: Failure, ts: int) -> None:
        """A SYN of a failed handshake again, within -t of its verdict: a DUP SYN of
        that handshake, not a new one (Linux sends the SYN again after an ICMP
        error it takes as soft, and after an RST or ICMP error it never got)."""
        failure.dupsyn += 1
        self.late_dupsyns += 1
        if self.emit_late is not None:
            self.emit_late(
                LateDupSyn(
                    sess.client, sess.cport, sess.server, sess.sport, failure.start, ts,
                    failure.dupsyn,
                )
            )  # fmt: skip
        self._release(sess)

    def _direction(self, src: bytes, dst: bytes) -> str | None:
        """TX from a local address, RX to one; None (and counted) between two others."""
        if self._local(src):
            return "TX"
        if self._local(dst):
            return "RX"
        self.not_local += 1
        if not self._warned_not_local:
            self._warned_not_local = True
            log.debug("SYN between two non-local addresses: not counted (said once)")
        return None

    def _local(self, address: bytes) -> bool:
        known = self._is_local.get(address)
        if known is None:
            if len(self._is_local) >= ANSWERS_KEPT:
                self._is_local.clear()
            known = self._is_local[address] = address in self.local
        return known

    def _filter_names(self, direction: str, remote: bytes, port: int) -> tuple[str, ...]:
        key = (direction, remote, port)
        names = self._matches.get(key)
        if names is None:
            if len(self._matches) >= ANSWERS_KEPT:
                self._matches.clear()
            names = self._matches[key] = tuple(self.filters.match(direction, remote, port))
        return names

    def _release(self, sess: Session) -> None:
        if self.tracker is not None:
            self.tracker.forget(sess)
