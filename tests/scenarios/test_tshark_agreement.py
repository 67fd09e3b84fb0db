"""miruo's sequence-space analysis against Wireshark's own, per session.

For every capture we have that holds TCP sessions — the scenario captures the
tests build (one per analysis rule, and miruo's), examples/sample.pcap, the
fidelity capture and tcpdump's corpus in ../shared — run `miruo --json --all
--paths shadow` (so the bulk and exact paths agree as well) and `tshark`'s TCP
analysis, and require, per session, the same `retransmissions` (any kind, per
direction), `fast_retransmissions`, `spurious_retransmissions` and `rtt`
(tshark's iRTT, within 1 µs) on at least 99 % of the sessions. The sessions
that differ are printed.

tshark is Debian's package, installed by the test itself when missing (never
skipped). A session is matched to tshark's TCP stream by the client's address,
port and initial sequence number.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tcpscope.cli import miruo
from tests.scenarios import test_miruo_scenarios as miruo_scenarios
from tests.support import debian
from tests.support.corpus import REPO, corpus_files
from tests.support.pcapwrite import write_pcap
from tests.support.seqflows import SCENARIOS

AGREEMENT = 0.99
RTT_TOLERANCE = 1e-6
FIELDS = (
    "tcp.stream",
    "ip.src",
    "ipv6.src",
    "tcp.srcport",
    "tcp.seq_raw",
    "tcp.flags",
    "tcp.analysis.retransmission",
    "tcp.analysis.fast_retransmission",
    "tcp.analysis.spurious_retransmission",
    "tcp.analysis.initial_rtt",
)
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="module")
def tshark() -> str:
    return debian.require_tool("tshark", "tshark")  # installs it; fails in CI if it cannot


@dataclass
class Counts:
    retransmissions: tuple[int, int] = (0, 0)
    fast: int = 0
    spurious: int = 0
    rtt: float | None = None

    def agrees(self, other: Counts) -> bool:
        if (self.retransmissions, self.fast, self.spurious) != (
            other.retransmissions,
            other.fast,
            other.spurious,
        ):
            return False
        if self.rtt is None or other.rtt is None:
            return self.rtt is other.rtt
        return abs(self.rtt - other.rtt) <= RTT_TOLERANCE


Key = tuple[str, int, int]  # client address, client port, initial sequence number


def ours(path: Path) -> dict[Key, Counts]:
    """Our sessions in the capture (none if miruo cannot read it)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = miruo.main(["--json", "--all", "--paths", "shadow", "-f", str(path)])
    assert code in (0, 1), f"{path}: exit {code}: {err.getvalue()[-300:]}"  # 3: shadow differs
    sessions: dict[Key, Counts] = {}
    for line in out.getvalue().splitlines():
        obj = json.loads(line)
        if obj["type"] != "session":
            continue
        syn = obj["segments_shown"][0]
        assert syn["n"] == 0 and "syn" in syn["marks"]
        a = obj["analysis"]
        sessions[(obj["client"], obj["client_port"], syn["seq"])] = Counts(
            (a["retransmissions"]["c2s"], a["retransmissions"]["s2c"]),
            a["fast_retransmissions"],
            a["spurious_retransmissions"],
            obj["rtt"],
        )
    return sessions


@dataclass
class _Stream:
    client: tuple[str, int] | None = None
    isn: int | None = None
    retrans: list[int] = field(default_factory=lambda: [0, 0])
    fast: int = 0
    spurious: int = 0
    rtt: float | None = None


def theirs(tshark: str, path: Path) -> dict[Key, Counts]:
    """tshark's TCP streams that start with a SYN, keyed as ours."""
    cmd = [tshark, "-n", "-r", str(path), "-Y", "tcp", "-T", "fields", "-E", "separator=|"]
    cmd += ["-o", "tcp.analyze_sequence_numbers:TRUE"]
    for name in FIELDS:
        cmd += ["-e", name]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    streams: dict[str, _Stream] = {}
    for line in done.stdout.splitlines():
        parts = line.split("|")
        if len(parts) != len(FIELDS) or not parts[0]:
            continue
        stream, src4, src6, sport, seq, flags, retrans, fast, spurious, irtt = parts
        st = streams.setdefault(stream, _Stream())
        bits = int(flags, 16) if flags else 0
        src = ((src4 or src6).split(",")[-1], int(sport))  # the innermost IP of a tunnel
        if bits & 0x12 == 0x02 and st.client is None:
            st.client, st.isn = src, int(seq)
        d = 0 if src == st.client else 1
        if retrans or fast or spurious:
            st.retrans[d] += 1
        st.fast += bool(fast)
        st.spurious += bool(spurious)
        if irtt and st.rtt is None:
            st.rtt = float(irtt)
    out: dict[Key, Counts] = {}
    for st in streams.values():
        if st.client is not None and st.isn is not None:
            key = (st.client[0], st.client[1], st.isn)
            out.setdefault(
                key, Counts((st.retrans[0], st.retrans[1]), st.fast, st.spurious, st.rtt)
            )
    return out


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """Every capture: the scenario ones written out, then those on disk."""
    where = tmp_path_factory.mktemp("tshark")
    paths: list[Path] = []
    for name, build in sorted(SCENARIOS.items()):
        path = where / f"seq-{name}.pcap"
        write_pcap(path, build().frames)
        paths.append(path)
    built: set[object] = set()  # several option sets share one capture
    for name, (frames_of, _args) in sorted(miruo_scenarios.SCENARIOS.items()):
        if frames_of in built:
            continue
        built.add(frames_of)
        path = where / f"miruo-{name}.pcap"
        write_pcap(path, frames_of())
        paths.append(path)
    # the benchmark's traffic mix, small: ~2,000 sessions, copies sent again late
    # and early, RSTs, refused and unanswered SYNs, pauses
    generated = where / "bench-mix.pcap"
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "gen.py"), "--sessions-open", "200",
         "--packets", "30000", "--seed", "3", "-o", str(generated)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    paths.append(generated)
    paths.append(REPO / "examples" / "sample.pcap")
    fidelity = SHARED / "fidelity" / "capture.pcap"
    if fidelity.exists() or os.environ.get("CI"):
        paths.append(fidelity)
    paths += corpus_files()
    yield paths


def test_tshark_agrees_on_at_least_99_percent_of_sessions(
    tshark: str, captures: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    mine = {path: ours(path) for path in captures}
    with_sessions = [path for path in captures if mine[path]]
    with ThreadPoolExecutor(max_workers=2) as pool:
        reference = dict(
            zip(with_sessions, pool.map(lambda p: theirs(tshark, p), with_sessions), strict=True)
        )
    total = agree = 0
    differing: list[str] = []
    for path in with_sessions:
        for key, counts in mine[path].items():
            total += 1
            other = reference[path].get(key)
            if other is not None and counts.agrees(other):
                agree += 1
            else:
                differing.append(f"{path.name} {key}: ours {counts}, tshark {other}")
    figure = agree / total if total else 0.0
    print(
        f"\ntshark agreement: {agree}/{total} sessions ({figure:.2%}),"
        f" {len(with_sessions)} captures"
    )
    for line in differing:
        print("  differs:", line)
    assert total >= 2000  # the captures above hold about that many sessions
    assert figure >= AGREEMENT, "\n".join(differing)
