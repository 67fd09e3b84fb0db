"""Plain segments fed from their header fields (Tracker.feed_plain, the engine's
plain items): miruo's output must be the same as on the exact path, which decodes
every packet and looks its session up by the full 4-tuple.

The check runs an awkward mix of sessions — copies of quiet segments sent again
late (so a segment held in brief must be rebuilt), soon, or with new options;
half-closed sessions still sending, and timed out just before their next data;
data after an RST; one and two VLAN tags, IP options, fragments, TSO frames with no
IP length and frames cut by the snap length in the middle of sessions; URG/ECE/CWR
and ACK-less data; a new SYN on an open 4-tuple; half-open sessions that time out;
sockets connected to themselves; two sessions whose 4-tuple hashes collide (and
one of them outlives the other); one session long enough to prune what it holds —
through miruo with the prefilter (and so the plain items) and without it, in
several modes and at several batch sizes, and compares every byte.
"""

from __future__ import annotations

import ipaddress
import json
import random
from pathlib import Path

import pytest

from tcpscope.cli import miruo
from tcpscope.rules import KEY_MULTIPLIER, key_hash
from tcpscope.track.tracker import PER_SESSION_SEEN_MAX, Tracker
from tests.support import frames as f
from tests.support.cli import run_main, stable
from tests.support.pcapwrite import write_pcap

SECOND = 1_000_000_000
BASE = 1_700_000_000 * SECOND
MASK64 = (1 << 64) - 1
Frame = tuple[int, bytes]
Quad = tuple[str, int, str, int]

KINDS = (
    "plain", "plain", "plain", "late_copy", "late_copy_new_options", "soon_copy",
    "three_copies", "half_close", "rst_mid", "vlan_mid", "qinq_mid", "ip_options_mid",
    "fragment_mid",
    "urg_ecn", "no_ack", "tso", "dup_syn", "idle", "idle_data", "unanswered", "stray", "self",
    "window",
)  # fmt: skip


class Mix:
    """Frames of many sessions, each a small script of packets at given times."""

    def __init__(self, seed: int, link: f.LinkName = "ether") -> None:
        self.rng = random.Random(seed)
        self.link = link
        self.frames: list[Frame] = []

    def add(self, t: float, frame: bytes) -> None:
        self.frames.append((BASE + int(t * SECOND), frame))

    def session(self, kind: str) -> None:
        rng = self.rng
        client = f"198.18.{rng.randrange(4)}.{rng.randrange(1, 200)}"
        server = f"198.19.0.{rng.randrange(1, 4)}"
        cport, sport = rng.randrange(20000, 60000), rng.choice((80, 443))
        if kind == "self":
            server, sport = client, cport
        self.script(kind, client, cport, server, sport, rng.uniform(0, 40))

    def script(self, kind: str, client: str, cport: int, server: str, sport: int, t: float) -> None:
        rng = self.rng
        link = self.link
        seq = {"c": rng.getrandbits(32), "s": rng.getrandbits(32)}
        tsval = [rng.getrandbits(31)]

        def frame(
            side: str, flags: str | int, payload: bytes = b"", options: bytes | None = None,
            window: int = 65535,
        ) -> bytes:  # fmt: skip
            other = "s" if side == "c" else "c"
            ack = seq[other] if "A" in str(flags) or isinstance(flags, int) else 0
            if options is None:
                tsval[0] += 1
                options = f.nop() + f.nop() + f.timestamp(tsval[0], 7)
            src, sp, dst, dp = (client, cport, server, sport) if side == "c" else (
                server, sport, client, cport)  # fmt: skip
            fr = f.tcp_frame(src, sp, dst, dp, flags, seq[side], ack, payload, options, link,
                             window)  # fmt: skip
            if isinstance(flags, str):
                advance = len(payload) + ("S" in flags) + ("F" in flags)
                seq[side] = (seq[side] + advance) & 0xFFFFFFFF
            return fr

        def at(dt: float, fr: bytes) -> bytes:
            nonlocal t
            t += dt
            self.add(t, fr)
            return fr

        def gap() -> float:
            return rng.expovariate(1 / 0.03)

        def handshake() -> None:
            syn_options = f.mss(1460) + f.sack_perm() + f.nop() + f.wscale(7)
            at(0, frame("c", "S", options=syn_options))
            at(gap(), frame("s", "SA", options=syn_options))
            at(gap(), frame("c", "A"))

        def data(count: int) -> list[bytes]:
            sent = []
            for _ in range(count):
                side = rng.choice("cs")
                sent.append(at(gap(), frame(side, "PA", b"d" * rng.randrange(1, 400))))
                at(gap(), frame("s" if side == "c" else "c", "A"))
            return sent

        def close() -> None:
            at(gap(), frame("c", "FA"))
            at(gap(), frame("s", "FA"))
            at(gap(), frame("c", "A"))

        def ip_variant(fr: bytes, **ip: object) -> bytes:
            """The same TCP segment in an Ethernet/IPv4 frame built with `ip` options."""
            assert link == "ether"
            segment = fr[34:]
            return f.ether(f.ipv4(*_addresses(fr), segment, **ip))  # type: ignore[arg-type]

        if kind == "unanswered":
            syn = at(0, frame("c", "S"))
            at(rng.uniform(0.5, 1.5), syn)
            return
        if kind == "stray":  # nobody's session: ignored
            at(0, frame("c", "A", b"z" * 20))
            at(gap(), frame("s", "FA"))
            at(gap(), frame("s", "RA"))
            return
        handshake()
        sent = data(rng.randrange(2, 8))
        if kind in ("late_copy", "three_copies", "window"):
            copy = rng.choice(sent)
            if kind == "window":  # the same segment but for the window: still a copy
                copy = copy[:48] + b"\x10\x00" + copy[50:]
            at(rng.uniform(1.1, 2.0), copy)
            if kind == "three_copies":
                at(rng.uniform(1.1, 2.0), copy)
                at(0.1, copy)
        elif kind == "late_copy_new_options":
            copy = bytearray(rng.choice(sent))
            copy[65] ^= 0xFF  # the last byte of the options (the timestamp's echo)
            at(rng.uniform(1.1, 2.0), bytes(copy))
        elif kind == "soon_copy":
            at(rng.uniform(0.01, 0.5), rng.choice(sent))
        elif kind == "half_close":
            at(gap(), frame("c", "FA"))
            at(gap(), frame("s", "A"))
            for _ in range(rng.randrange(1, 4)):  # the server still sends; the client ACKs
                at(gap(), frame("s", "PA", b"h" * 50))
                at(gap(), frame("c", "A"))
            at(gap(), frame("s", "FA"))
            at(gap(), frame("c", "A"))
            return
        elif kind == "rst_mid":
            at(gap(), frame("c", "RA"))
            data(2)  # after the session ended: ignored
            return
        elif kind in ("vlan_mid", "qinq_mid", "ip_options_mid", "fragment_mid", "tso") and (
            link == "ether"
        ):
            fr = frame("c", "PA", b"v" * 100)
            if kind == "vlan_mid":  # one tag: plain all the same
                fr = f.ether(fr[14:], vlans=(7,))
            elif kind == "qinq_mid":  # two: for the exact decoder
                fr = f.ether(fr[14:], vlans=((0x88A8, 5), 7))
            elif kind == "ip_options_mid":
                fr = ip_variant(fr, options=b"\x01" * 4)
            elif kind == "fragment_mid":
                fr = ip_variant(fr, mf=True)
            else:
                fr = ip_variant(fr, total_length=0)
            at(gap(), fr)
            at(gap(), frame("s", "A"))
            data(2)
        elif kind == "urg_ecn":
            at(gap(), frame("c", "UPA", b"u" * 10))
            at(gap(), frame("s", 0x10 | 0x40 | 0x80))  # ECE|CWR|ACK: quiet too
            at(gap(), frame("c", "EA", b"e" * 10))
        elif kind == "no_ack":
            at(gap(), frame("c", "P", b"p" * 10))  # no ACK: unexpected
        elif kind == "dup_syn":
            seq["c"] = (seq["c"] + 100_000) & 0xFFFFFFFF
            handshake()  # a new connection on the same 4-tuple
            data(2)
        elif kind == "idle":  # left half-closed: timed out 30 s later
            at(gap(), frame("c", "FA"))
            at(gap(), frame("s", "A"))
            return
        elif kind == "idle_data":  # half-closed, then data just after the timeout's tick
            at(gap(), frame("c", "FA"))
            at(gap(), frame("s", "A"))
            at(rng.uniform(30.05, 31.5), frame("s", "PA", b"late"))
            return
        data(rng.randrange(0, 3))
        close()

    def collision(self, t: float) -> None:
        """Two sessions whose client-to-server hashes are the same, interleaved."""
        first = ("198.18.9.1", 41000, "198.19.9.1", 80)
        h = key_hash(*(f.addr(first[0]), first[1], f.addr(first[2]), first[3]))
        cport, sport = 42000, 8080
        addresses = h ^ ((((cport << 16) | sport) * KEY_MULTIPLIER) & MASK64)
        client = str(ipaddress.IPv4Address(addresses >> 32))
        server = str(ipaddress.IPv4Address(addresses & 0xFFFFFFFF))
        second = (client, cport, server, sport)
        assert key_hash(f.addr(client), cport, f.addr(server), sport) == h
        for i, kind in enumerate(("late_copy", "three_copies", "half_close", "plain")):
            self.script(kind, *(first if i % 2 == 0 else second), t)
            self.script(kind, *(second if i % 2 == 0 else first), t + 0.01)
            t += 6
        self.outlived(first, second, t)

    def outlived(self, first: Quad, second: Quad, t: float) -> None:
        """Of two sessions with colliding hashes, the one opened later ends first: the
        other's client packets then have no session under their hash, only under
        their 4-tuple, while its server's ACKs are still found by theirs; a late copy
        shows the segments numbered in between."""
        tcp, add = f.tcp_frame, self.add
        c, cp, s, sp = first
        add(t, tcp(c, cp, s, sp, "S", 100))
        add(t + 0.001, tcp(s, sp, c, cp, "SA", 500, 101))
        add(t + 0.002, tcp(c, cp, s, sp, "A", 101, 501))
        c2, cp2, s2, sp2 = second
        add(t + 0.003, tcp(c2, cp2, s2, sp2, "S", 900))
        add(t + 0.004, tcp(s2, sp2, c2, cp2, "SA", 300, 901))
        add(t + 0.005, tcp(c2, cp2, s2, sp2, "A", 901, 301))
        add(t + 0.010, tcp(c2, cp2, s2, sp2, "FA", 901, 301))
        add(t + 0.011, tcp(s2, sp2, c2, cp2, "FA", 301, 902))
        add(t + 0.012, tcp(c2, cp2, s2, sp2, "A", 902, 302))
        sent = []
        for i in range(30):
            sent.append(tcp(c, cp, s, sp, "PA", 101 + i * 10, 501, b"o" * 10))
            add(t + 0.02 + i * 0.002, sent[-1])
            add(t + 0.021 + i * 0.002, tcp(s, sp, c, cp, "A", 501, 111 + i * 10))
        add(t + 2.0, sent[4])
        add(t + 2.1, tcp(c, cp, s, sp, "RA", 401, 501))

    def long_session(self, t: float) -> None:
        """More quiet segments than a session holds; then early and late copies."""
        client, cport, server, sport = "198.18.8.8", 50505, "198.19.0.9", 80
        seq = 1000
        syn = f.tcp_frame(client, cport, server, sport, "S", seq)
        self.add(t, syn)
        self.add(t + 0.001, f.tcp_frame(server, sport, client, cport, "SA", 7, seq + 1))
        sent = []
        for i in range(PER_SESSION_SEEN_MAX + 300):
            fr = f.tcp_frame(client, cport, server, sport, "PA", seq + 1 + i * 10, 8, b"L" * 10)
            sent.append(fr)
            self.add(t + 0.002 + i * 0.0005, fr)
        end = t + 0.002 + len(sent) * 0.0005
        self.add(end + 1.5, sent[5])  # pruned by then: not a copy of anything held
        self.add(end + 1.6, sent[-5])
        self.add(end + 1.7, f.tcp_frame(client, cport, server, sport, "RA", seq + 99999, 8))

    def build(self, sessions: int) -> list[Frame]:
        for _ in range(sessions):
            self.session(self.rng.choice(KINDS))
        if self.link == "ether":
            self.collision(5.0)
            self.long_session(10.0)
        self.frames.sort(key=lambda fr: fr[0])
        return self.frames


def _addresses(fr: bytes) -> tuple[str, str]:
    return str(ipaddress.IPv4Address(fr[26:30])), str(ipaddress.IPv4Address(fr[30:34]))


@pytest.fixture(scope="module")
def mixes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("plain")
    paths = {}
    frames = Mix(seed=5).build(1200)
    paths["ether"] = folder / "ether.pcap"
    write_pcap(paths["ether"], frames)
    paths["cut"] = folder / "cut.pcap"  # every frame cut at 90 bytes: wire length > captured
    write_pcap(paths["cut"], frames, snaplen=90)
    paths["sll2"] = folder / "sll2.pcap"
    write_pcap(paths["sll2"], Mix(seed=6, link="sll2").build(400), linktype=f.LINKTYPES["sll2"])
    return paths


def run(argv: list[str]) -> tuple[str, str]:
    return run_main(miruo.main, argv)


class Counted:
    """How many quiet segments the plain path held in brief, and how many it rebuilt."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.quiet = self.rebuilt = 0
        finish, rebuilt = Tracker.finish, Tracker._held_segment

        def counting_finish(tracker: Tracker, now: int) -> None:
            self.quiet += tracker.held_in_brief
            finish(tracker, now)

        def counting_rebuilt(*args: object) -> object:
            self.rebuilt += 1
            return rebuilt(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(Tracker, "finish", counting_finish)
        monkeypatch.setattr(Tracker, "_held_segment", staticmethod(counting_rebuilt))


MODES = [
    [],
    ["--all"],
    ["--all", "--json"],
    ["-L", "8", "--all"],  # SYNs dropped at the session limit
    ["-l", "40", "--all"],  # segments dropped at the segment limit
    ["-l", "2500", "--all"],  # the limit reached late: batches settled in bulk until near it
    ["-r", "0", "--all"],
    ["-S", "0", "-R", "2", "-s", "2"],  # with statistics every 2 s of capture time
    ["-t", "100", "-v", "2", "--all"],  # the listener sees quiet segments: none in brief
]


@pytest.mark.parametrize("batch", [64, 97, 4096])
@pytest.mark.parametrize("mode", MODES, ids=" ".join)
def test_plain_items_change_nothing(
    mixes: dict[str, Path], mode: list[str], batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(miruo, "READ_BATCH", batch)
    for name, path in mixes.items():
        argv = [*mode, "-f", str(path)]
        counted = Counted(monkeypatch)
        plain_out, plain_err = run(argv)
        exact_out, exact_err = run([*argv, "--paths", "exact"])
        assert stable(plain_out) == stable(exact_out), (name, mode)
        assert stable(plain_err) == stable(exact_err), (name, mode)
        if "-t" in mode:
            assert counted.quiet == 0
        elif name == "ether":
            # past -l nothing more is held (segments are dropped whole, as the original)
            least = 20 if "-l" in mode else 200 if "-L" in mode else 3000
            assert counted.quiet > least
            if not {"-r", "-l", "-L"} & set(mode):
                assert counted.rebuilt > 50  # late copies of segments held in brief


def test_the_mix_shows_what_it_was_built_for(mixes: dict[str, Path]) -> None:
    """The comparison above is only worth something if the mix holds these."""
    out, err = run(["--all", "--json", "-f", str(mixes["ether"])])
    assert '"close":"duplicate"' in out and '"close":"timeout"' in out
    assert '"close":"rst"' in out and '"close":"fin"' in out
    assert '"retransmits":3' in out  # three late copies
    assert '"fragments":1' in out
    assert "198.18.9.1" in out  # the colliding pair
    outlived = [line for line in out.splitlines() if '"client_port":41000' in line][-1]
    assert '"segments":65' in outlived and '"retransmits":1' in outlived
    long_line = next(line for line in out.splitlines() if '"client_port":50505' in line)
    # SYN, SYN/ACK, the data, a copy of a segment no longer held (so new), a copy of
    # one still held (a retransmission), the RST
    assert f'"segments":{2 + PER_SESSION_SEEN_MAX + 300 + 3}' in long_line
    assert '"retransmits":1' in long_line
    stats = json.loads(out.splitlines()[-1])
    assert stats["type"] == "stats" and stats["retransmit"] > 20 and stats["timeout"] > 0
    assert "listening on" in err
