#!/usr/bin/env python3
"""Live capacity: the highest packet rate each tool follows with zero kernel drops
and the same results as reading the same packets from a file.

    sudo python bench/capacity.py              # the full table: 20 s a point
    sudo python bench/capacity.py --quick      # 3 s a point, two rates: a sanity run

Needs root (network namespaces). Builds two namespaces joined by a veth pair
(bench/netlab.py), installs Debian's tcpreplay when it is missing, and for each
rate writes a replay capture: the bench traffic (bench/gen.py's s2k, looped when
a point needs more packets than it has) with its timestamps spaced evenly at
that rate. tcpreplay sends it at that rate (`--pps`) from one end while the tool
captures on the other; then the same tool reads the same file (`-r`/`-f`), and
the two runs' results are compared. A point passes when

- tcpreplay sent every packet and the receiving veth counted them all,
- the tool's libpcap counters show every packet received, none dropped,
- the results are those of the file run: tcpeek's summary counts (and, without
  -q, every handshake's line but its times), miruo's session statistics, and
  every session block it printed (but its times).

Rates rise until a tool fails (`--keep-going` measures every rate). The SYN
flood (bench/synflood.py, every packet a new handshake from a random source)
is measured the same way for `tcpeek -q`, with the tool's peak RSS.

Results go to bench/out/capacity/ (capacity.md, capacity.json); the replay
captures there are removed after each rate unless --keep-captures.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import signal
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from netlab import VethLab, stop, which  # noqa: E402

OUT_DIR = BENCH_DIR / "out"
GEN = BENCH_DIR / "gen.py"
SYNFLOOD = BENCH_DIR / "synflood.py"
LOCAL = "198.18.0.0/15"  # tcpeek's local side for the bench traffic (clients)
FLOOD_TARGET = "198.19.255.1"  # the flooded server (bench/synflood.py)
SOURCE_PACKETS = 1_000_000
SEED = 1

RATES = (100_000, 150_000, 200_000, 250_000, 300_000, 350_000, 400_000, 500_000)
FLOOD_RATES = (50_000, 100_000, 150_000, 200_000, 250_000, 300_000)
# Not between ~30k and ~90k/s: the s2k traffic runs at ~28,000 packets/s, and
# miruo shows a copy sent again >= 1 s later (-r 1000). The generator keeps copies
# 0-0.9 s and 1.05-3 s after their originals; replayed R/28k times faster, those
# ranges move, and between ~30k and ~90k/s the second one holds 1 s, where
# tcpreplay's jitter of a millisecond can flip a verdict. Below ~30k and above
# ~90k/s it is clear of both.
QUICK_RATES = (100_000, 150_000)
QUICK_FLOOD_RATES = (20_000,)
QUICK_SECONDS = 3.0

_PCAP_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
WRITE_EVERY = 65_536
PACKETS_PER_TICK = 25_000  # tcpreplay --pps-multi: rate // this packets at a time
SHORT_OF_RATE = 0.97  # tcpreplay below this share of the asked rate: the point says so


@dataclass(frozen=True)
class Tool:
    key: str  # as named on the command line (--tools)
    label: str
    args: tuple[str, ...]  # after `python -m tcpscope`
    file_option: str  # "-r" (tcpeek) or "-f" (miruo)


TOOLS = {
    t.key: t
    for t in (
        Tool("tcpeek-q", "tcpeek -q", ("tcpeek", "-q", "--local", LOCAL), "-r"),
        Tool("tcpeek", "tcpeek", ("tcpeek", "--local", LOCAL), "-r"),
        Tool("miruo", "miruo", ("miruo",), "-f"),
        Tool("miruo-L0", "miruo -L0 -l0", ("miruo", "-L0", "-l0"), "-f"),
    )
}
FLOOD_TOOL = Tool("flood", "tcpeek -q (SYN flood)", ("tcpeek", "-q", "--local", FLOOD_TARGET), "-r")


# --- results of one run, and how two are compared


@dataclass
class Outcome:
    """What one run of a tool reported."""

    counts: dict[str, int] = field(default_factory=dict)  # compared
    lines: collections.Counter[str] = field(default_factory=collections.Counter)  # compared
    # miruo: each session block's lines without the session id (compared instead
    # of `lines` under --workers)
    blocks: collections.Counter[str] = field(default_factory=collections.Counter)
    pcap: dict[str, int] = field(default_factory=dict)  # recv/drop/ifdrop, not compared


_TCPEEK_LINE = re.compile(r"^\s*[\d.]+ \| \S+ \S+ \| (.*)$")
_COUNT = re.compile(r"^\s*([A-Za-z/ ]+?)\s*:\s*(\d+)(?: session)?\s*$")
_MIRUO_HEAD = re.compile(r"^(\d{4,}) +[\d.]+ \| (.*)$")
_MIRUO_SEGMENT = re.compile(r"^(\d{4,}:(?:\d{4}|\*{4})) [\d:.]* *\| (.*)$")
# Session statistics that depend on the clock or the process, not on the packets.
_MIRUO_UNCOMPARED = {"Capture Time", "CPU", "VSZ", "RSS"}


def parse_tcpeek(text: str) -> Outcome:
    """tcpeek's summary counts (RX/TX sections), handshake lines without their times."""
    out = Outcome()
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("RX", "TX", "pcap stats"):
            section = stripped
            continue
        head = _TCPEEK_LINE.match(line)
        if head:
            out.lines[" ".join(head.group(1).split())] += 1
            continue
        for label in ("Success", "Failure"):
            if stripped.startswith(label + ":") and section:
                out.counts[f"{section} {label}"] = int(stripped.split()[1])
                break
        else:
            count = _COUNT.match(line)
            if count and section == "pcap stats":
                out.pcap[count.group(1).strip()] = int(count.group(2))
            elif count and section:
                out.counts[f"{section} {count.group(1).strip()}"] = int(count.group(2))
    return out


def parse_miruo(text: str) -> Outcome:
    """miruo's statistics blocks, and its session blocks without their times."""
    out = Outcome()
    block = ""
    session: list[str] = []
    for line in text.splitlines():
        if line.startswith("====="):
            block = line.strip("= ")
            continue
        head = _MIRUO_HEAD.match(line)
        if head:
            out.lines[f"{head.group(1)} {head.group(2)}"] += 1
            if session:
                out.blocks["\n".join(session)] += 1
            session = [head.group(2)]
            continue
        segment = _MIRUO_SEGMENT.match(line)
        if segment:
            out.lines[f"{segment.group(1)} {segment.group(2)}"] += 1
            session.append(f"{segment.group(1).partition(':')[2]} {segment.group(2)}")
            continue
        if ":" not in line or not block:
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if block == "libpcap Statistics":
            if value.isdigit():
                out.pcap[key] = int(value)
        elif key not in _MIRUO_UNCOMPARED:
            out.counts[f"{block}: {key}"] = int(value) if value.isdigit() else hash(value)
    if session:
        out.blocks["\n".join(session)] += 1
    return out


def parse(tool: Tool, text: str) -> Outcome:
    return parse_miruo(text) if tool.args[0] == "miruo" else parse_tcpeek(text)


# miruo under --workers (README, "Every core, live"): ids are given in output
# order and the maxima are the sums of each worker's, so neither can be one
# process's; every session block must still be there, whole.
_MIRUO_WORKERS_UNCOMPARED = ("ActiveSessionMax", "ActiveSegmentMax")


def differences(
    reference: Outcome, live: Outcome, limit: int = 6, workers: int = 1, miruo: bool = False
) -> list[str]:
    """How the live results differ from the file run's (empty: the same)."""
    found: list[str] = []
    merged = workers > 1 and miruo
    for key in sorted(set(reference.counts) | set(live.counts)):
        if merged and key.endswith(_MIRUO_WORKERS_UNCOMPARED):
            continue
        want, got = reference.counts.get(key), live.counts.get(key)
        if want != got:
            found.append(f"{key}: file {want}, live {got}")
    want_lines, got_lines = reference.lines, live.lines
    if merged:  # ids wrap past 9999 in one process too: blocks are taken as they come
        want_lines, got_lines = reference.blocks, live.blocks
    missing = want_lines - got_lines
    extra = got_lines - want_lines
    if missing or extra:
        found.append(f"{sum(missing.values())} lines only in the file run, "
                     f"{sum(extra.values())} only live")  # fmt: skip
        found += [f"  file only: {line}" for line in list(missing)[:3]]
        found += [f"  live only: {line}" for line in list(extra)[:3]]
    return found[:limit]


# --- captures


def ensure_tcpreplay() -> str:
    """tcpreplay's path, after installing Debian's package when it is missing."""
    found = which("tcpreplay")
    if found:
        return found
    apt = which("apt-get")
    if apt is None:
        sys.exit("capacity: tcpreplay is missing and apt-get is not available to install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("installing tcpreplay (apt-get) ...", flush=True)
    subprocess.run([apt, "update"], env=env, capture_output=True, timeout=600, check=False)
    done = subprocess.run(
        [apt, "install", "-y", "--no-install-recommends", "tcpreplay"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    found = which("tcpreplay")
    if done.returncode != 0 or not found:
        sys.exit(f"capacity: could not install tcpreplay: {done.stderr.strip()[-300:]}")
    return found


def ensure_source(packets: int) -> Path:
    """bench/gen.py's s2k capture (the one bench/run.py uses), generated when missing."""
    path = OUT_DIR / f"s2k-p{packets}-seed{SEED}.pcap"
    if not path.exists():
        OUT_DIR.mkdir(exist_ok=True)
        print(f"generating {path.name} ...", flush=True)
        argv = [sys.executable, str(GEN), "--sessions-open", "2000", "--packets", str(packets),
                "--seed", str(SEED), "-o", str(path)]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"capacity: bench/gen.py failed: {done.stderr.strip()}")
        path.with_suffix(".txt").write_text(done.stderr.strip() + "\n")
    return path


def _records(data: bytes) -> list[tuple[int, int]]:
    """(offset of the frame, its length) for every record of a µs little-endian pcap."""
    if _PCAP_HEADER.unpack_from(data)[0] != 0xA1B2C3D4:
        sys.exit("capacity: the source capture is not a little-endian µs pcap (bench/gen.py's)")
    found, pos, end = [], _PCAP_HEADER.size, len(data)
    unpack = _RECORD.unpack_from
    while pos + _RECORD.size <= end:
        caplen = unpack(data, pos)[2]
        found.append((pos + _RECORD.size, caplen))
        pos += _RECORD.size + caplen
    return found


def write_replay(source: Path, out: Path, packets: int, rate: int) -> None:
    """`packets` frames of `source` (from its start, looping), `rate` a second apart.

    The file is what the wire carries at that rate, so the file run sees the
    same packets at (nearly) the same times as the live capture does.
    """
    data = source.read_bytes()
    records = _records(data)
    start_us = _RECORD.unpack_from(data, _PCAP_HEADER.size)[0] * 1_000_000
    step = 1_000_000 / rate
    view = memoryview(data)
    pack = _RECORD.pack
    partial = out.with_suffix(".part")
    with open(partial, "wb") as stream:
        stream.write(_PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        parts: list[bytes | memoryview] = []
        count = len(records)
        for n in range(packets):
            offset, caplen = records[n % count]
            t = start_us + int(n * step)
            parts.append(pack(t // 1_000_000, t % 1_000_000, caplen, caplen))
            parts.append(view[offset : offset + caplen])
            if len(parts) >= 2 * WRITE_EVERY:
                stream.write(b"".join(parts))
                parts.clear()
        stream.write(b"".join(parts))
    partial.rename(out)


def ensure_flood(packets: int) -> Path:
    """bench/synflood.py's capture of `packets` SYNs, generated when missing (its
    prefixes are the smaller floods: one random stream decides every SYN in turn)."""
    path = OUT_DIR / f"flood-p{packets}-seed{SEED}.pcap"
    if not path.exists():
        OUT_DIR.mkdir(exist_ok=True)
        print(f"generating {path.name} ...", flush=True)
        argv = [sys.executable, str(SYNFLOOD), "--packets", str(packets), "--seed", str(SEED),
                "-o", str(path)]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"capacity: bench/synflood.py failed: {done.stderr.strip()}")
    return path


# --- running the tools


def tcpscope(*args: str) -> list[str]:
    return [sys.executable, "-m", "tcpscope", *args]


def supports_workers(tool: Tool) -> bool:
    """Whether this tree's tool has --workers (issue 12, section 1)."""
    done = subprocess.run(
        tcpscope(tool.args[0], "--help"), capture_output=True, text=True, timeout=60, check=False
    )
    return "--workers" in done.stdout


def file_run(tool: Tool, capture: Path) -> Outcome:
    done = subprocess.run(
        tcpscope(*tool.args, "--no-progress", tool.file_option, str(capture)),
        capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"capacity: {tool.label} -r/-f failed: {done.stderr.strip()[-500:]}")
    return parse(tool, done.stdout + done.stderr)  # the summaries go to stderr


@dataclass
class Point:
    """One live run: a tool, a worker count, a rate."""

    tool: str
    workers: int
    rate: int
    packets: int
    sent: int = 0
    replay_pps: float = 0.0
    link_received: int = 0
    link_dropped: int = 0
    recv: int = 0
    drop: int = 0
    ifdrop: int = 0
    peak_rss_mib: float = 0.0
    cpu_seconds: float = 0.0  # the tool's CPU time while the replay ran (and the settle)
    cpu_us_per_packet: float = 0.0  # cpu_seconds per packet it received and did not drop
    same_results: bool = False
    differences: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool:
        return (
            not self.note
            and self.sent == self.packets
            and self.link_received >= self.sent
            and self.link_dropped == 0
            and self.recv == self.sent
            and self.drop == 0
            and self.ifdrop == 0
            and self.same_results
        )


def _tree(pid: int) -> list[int]:
    """pid and its descendants (the --workers processes)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children[int(fields[1])].append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _peak_rss_mib(pid: int) -> float:
    total = 0
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of pid and its descendants so far."""
    ticks = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_listening(paths: tuple[Path, Path], proc: subprocess.Popen[Any], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if any("listening on" in p.read_text(errors="replace") for p in paths):
            return True
        time.sleep(0.05)
    return False


_SENT = re.compile(r"Successful packets:\s+(\d+)")
_RATED = re.compile(r"Rated: .*?([\d.]+) pps")


def tcpreplay_command(tcpreplay: str, ifname: str, replay: Replay, rate: int) -> list[str]:
    """Preloaded (-K: no disk reads while sending) and, at high rates, a few
    packets per timing step (--pps-multi): tcpreplay then keeps up with 400k/s
    on this machine class, where one timed packet at a time tops out near 230k/s."""
    argv = [tcpreplay, "-i", ifname, "-K", "--pps", str(rate)]
    multi = max(1, rate // PACKETS_PER_TICK)
    if multi > 1:
        argv += ["--pps-multi", str(multi)]
    if replay.loops > 1:
        argv += ["--loop", str(replay.loops)]
    return [*argv, str(replay.unit)]


def live_run(
    lab: VethLab, tcpreplay: str, tool: Tool, workers: int, replay: Replay, rate: int,
    args: argparse.Namespace,
) -> tuple[Point, Outcome | None]:  # fmt: skip
    packets = replay.packets
    point = Point(tool.label, workers, rate, packets)
    out_path, err_path = args.out / "live.out", args.out / "live.err"
    argv = [*tool.args, "-i", lab.recv_if, *args.live_args]
    if workers > 1:
        argv += ["--workers", str(workers)]
    before = lab.link_stats(lab.recv_ns, lab.recv_if)
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = lab.popen(lab.recv_ns, *tcpscope(*argv), stdout=out, stderr=err)
    try:
        if not _wait_listening((out_path, err_path), proc, 30.0):
            point.note = "did not start: " + err_path.read_text()[-300:].strip()
            return point, None
        time.sleep(0.3)
        cpu_before = _cpu_seconds(proc.pid)
        sending = subprocess.run(
            lab.command(lab.send_ns, *tcpreplay_command(tcpreplay, lab.send_if, replay, rate)),
            capture_output=True, text=True, timeout=packets / rate * 4 + 60, check=False,
        )  # fmt: skip
        sent, rated = _SENT.search(sending.stdout), _RATED.search(sending.stdout)
        point.sent = int(sent.group(1)) if sent else 0
        point.replay_pps = float(rated.group(1)) if rated else 0.0
        if sending.returncode != 0:
            point.note = "tcpreplay failed: " + sending.stderr.strip()[-200:]
        time.sleep(args.settle)
        point.peak_rss_mib = _peak_rss_mib(proc.pid)
        point.cpu_seconds = _cpu_seconds(proc.pid) - cpu_before
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=600)
    finally:
        stop(proc)
    after = lab.link_stats(lab.recv_ns, lab.recv_if)
    point.link_received = after["rx_packets"] - before["rx_packets"]
    send_after = lab.link_stats(lab.send_ns, lab.send_if)
    point.link_dropped = (after["rx_dropped"] - before["rx_dropped"]) + send_after["tx_dropped"]
    if proc.returncode not in (0, -signal.SIGINT, 130):
        point.note = point.note or f"exit {proc.returncode}: {err_path.read_text()[-200:]}"
    outcome = parse(
        tool, out_path.read_text(errors="replace") + err_path.read_text(errors="replace")
    )
    point.recv = outcome.pcap.get("recv", 0)
    point.drop = outcome.pcap.get("drop", 0)
    point.ifdrop = outcome.pcap.get("ifdrop", 0)
    handled = point.recv - point.drop - point.ifdrop
    if handled > 0:
        point.cpu_us_per_packet = point.cpu_seconds / handled * 1e6
    return point, outcome


# --- the run


def _rate_list(text: str) -> tuple[int, ...]:
    rates = []
    for word in text.split(","):
        word = word.strip().lower()
        scale = 1000 if word.endswith("k") else 1
        rates.append(int(float(word.rstrip("k")) * scale))
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError("rates must be positive, e.g. 100k,200k")
    return tuple(sorted(rates))


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(sorted({int(w) for w in text.split(",")}))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 s a point, rates 100k,150k")
    parser.add_argument("--seconds", type=float, help="length of each point (default 20)")
    parser.add_argument("--rates", type=_rate_list, help="packets/s, e.g. 100k,200k,300k")
    parser.add_argument("--flood-rates", type=_rate_list, help="SYNs/s for the flood")
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help=f"some of {','.join(TOOLS)} (default all)"
    )
    parser.add_argument("--workers", type=_int_list, default=(1, 2), help="default 1,2")
    parser.add_argument("--no-flood", action="store_true", help="skip the SYN flood")
    parser.add_argument("--no-traffic", action="store_true", help="only the SYN flood")
    parser.add_argument(
        "--keep-going", action="store_true", help="measure every rate, also after a failure"
    )
    parser.add_argument(
        "--settle", type=float, default=1.0, help="s to wait after the replay (default 1)"
    )
    parser.add_argument(
        "--source-packets", type=int, default=SOURCE_PACKETS,
        help=f"size of the s2k capture the traffic comes from (default {SOURCE_PACKETS:,})",
    )  # fmt: skip
    parser.add_argument("--keep-captures", action="store_true")
    parser.add_argument(
        "--live-args", type=str.split, default=[],
        help="more options for the live runs only, e.g. '-B 64' (one string)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT_DIR / "capacity", help="result folder")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = QUICK_SECONDS if args.quick else 20.0
    if args.rates is None:
        args.rates = QUICK_RATES if args.quick else RATES
    if args.flood_rates is None:
        args.flood_rates = QUICK_FLOOD_RATES if args.quick else FLOOD_RATES
    unknown = [k for k in args.tools.split(",") if k not in TOOLS]
    if unknown:
        parser.error(f"--tools: unknown {','.join(unknown)} (known: {','.join(TOOLS)})")
    return args


@dataclass
class Series:
    """One tool and worker count across rising rates."""

    tool: Tool
    workers: int
    points: list[Point] = field(default_factory=list)
    failed: bool = False

    @property
    def best(self) -> int | None:
        passed = [round(p.replay_pps) for p in self.points if p.passed]
        return max(passed) if passed else None


@dataclass(frozen=True)
class Replay:
    """What one rate sends: `unit` replayed `loops` times by tcpreplay, which is
    the packets of `reference` (the file the tools read for the comparison)."""

    unit: Path
    loops: int
    reference: Path
    packets: int


def traffic_replay(source: Path, work: Path, rate: int, seconds: float, size: int) -> Replay:
    """The bench traffic for `seconds` at `rate`: one pass of at most the source's
    packets, looped by tcpreplay; the reference file holds every loop in a row."""
    wanted = max(1, int(rate * seconds))
    unit_packets = min(wanted, size)
    loops = -(-wanted // unit_packets)
    unit = work / f"replay-{rate}.pcap"
    write_replay(source, unit, unit_packets, rate)
    if loops == 1:
        return Replay(unit, 1, unit, unit_packets)
    reference = work / f"reference-{rate}.pcap"
    write_replay(source, reference, unit_packets * loops, rate)
    return Replay(unit, loops, reference, unit_packets * loops)


def flood_replay(source: Path, work: Path, rate: int, seconds: float) -> Replay:
    """The SYN flood at `rate`: the start of `source` (made for the highest rate),
    retimed; never looped, so that every SYN is a new handshake."""
    packets = max(1, int(rate * seconds))
    path = work / f"flood-{rate}.pcap"
    write_replay(source, path, packets, rate)
    return Replay(path, 1, path, packets)


def measure(
    lab: VethLab, tcpreplay: str, series: list[Series], rates: tuple[int, ...],
    make: Any, args: argparse.Namespace,
) -> None:  # fmt: skip
    """Rising rates for every series until each has failed once (or all, --keep-going)."""
    for rate in rates:
        todo = [s for s in series if args.keep_going or not s.failed]
        if not todo:
            return
        print(f"{rate:,}/s: writing the replay ...", flush=True)
        replay: Replay = make(rate)
        references: dict[str, Outcome] = {}
        try:
            for s in todo:
                if s.tool.key not in references:
                    references[s.tool.key] = file_run(s.tool, replay.reference)
                point, outcome = live_run(lab, tcpreplay, s.tool, s.workers, replay, rate, args)
                if outcome is not None:
                    point.differences = differences(
                        references[s.tool.key], outcome, workers=s.workers,
                        miruo=s.tool.args[0] == "miruo",
                    )  # fmt: skip
                    point.same_results = not point.differences
                s.points.append(point)
                s.failed = s.failed or not point.passed
                print("  " + describe(point), flush=True)
                for line in point.differences:
                    print("     " + line, flush=True)
        finally:
            if not args.keep_captures:
                for path in {replay.unit, replay.reference}:
                    path.unlink(missing_ok=True)


def describe(p: Point) -> str:
    verdict = "PASS" if p.passed else "FAIL"
    return (
        f"{verdict} {p.tool} workers={p.workers} rate={p.rate:,}: sent {p.sent:,} "
        f"(tcpreplay {p.replay_pps:,.0f} pps), veth rx {p.link_received:,} drop {p.link_dropped}, "
        f"pcap recv {p.recv:,} drop {p.drop:,} ifdrop {p.ifdrop}, "
        f"results {'same' if p.same_results else 'DIFFER'}, peak RSS {p.peak_rss_mib:.0f} MiB, "
        f"CPU {p.cpu_us_per_packet:.2f} µs/packet" + (f" [{p.note}]" if p.note else "")
    )


def markdown(series: list[Series], notes: list[str], args: argparse.Namespace) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{platform.node()} ({os.cpu_count()} CPUs, {platform.machine()}, Linux "
        f"{platform.release()}), {args.seconds:g} s a point; tcpreplay shares the CPUs.",
        "",
        "| tool | workers | highest rate with zero drops and the file run's results | "
        "first failure |",
        "|---|---|---|---|",
    ]
    for s in series:
        best = f"{s.best:,}/s" if s.best else "none of the rates tried"
        fail = next((p for p in s.points if not p.passed), None)
        why = _failure(fail) if fail else "none up to the highest rate tried"
        lines.append(f"| `{s.tool.label}` | {s.workers} | {best} | {why} |")
    lines += [
        "",
        "| tool | workers | asked/s | sent at/s | packets | kernel drops | results | peak RSS "
        "| CPU µs/packet | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in series:
        for p in s.points:
            lines.append(
                f"| `{p.tool}` | {p.workers} | {p.rate:,} | {p.replay_pps:,.0f} | {p.sent:,} | "
                f"{p.drop + p.ifdrop + p.link_dropped:,} | "
                f"{'same' if p.same_results else 'differ'} | {p.peak_rss_mib:.0f} MiB | "
                f"{p.cpu_us_per_packet:.2f} | "
                f"{'pass' if p.passed else 'FAIL'} |"
            )
    lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _failure(p: Point) -> str:
    if p.note:
        return f"{p.rate:,}/s: {p.note[:80]}"
    why = []
    if p.sent != p.packets:
        why.append(f"tcpreplay sent {p.sent:,} of {p.packets:,}")
    if p.link_dropped:
        why.append(f"veth dropped {p.link_dropped:,}")
    if p.drop or p.ifdrop:
        lost = p.drop + p.ifdrop
        why.append(f"{lost:,} kernel drop{'s' if lost > 1 else ''}")
    elif p.recv != p.sent:
        why.append(f"received {p.recv:,} of {p.sent:,}")
    if not p.same_results:
        why.append("results differ")
    return f"{p.rate:,}/s: " + ", ".join(why)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("capacity: needs root (network namespaces)", file=sys.stderr)
        return 2
    tcpreplay = ensure_tcpreplay()
    args.out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    workers = list(args.workers)
    tools = [TOOLS[k] for k in args.tools.split(",")]
    series: list[Series] = []
    for tool in tools if not args.no_traffic else []:
        for n in workers:
            if n > 1 and not supports_workers(tool):
                notes.append(f"{tool.label}: no --workers in this tree; {n} workers not measured")
                continue
            series.append(Series(tool, n))
    flood: list[Series] = []
    if not args.no_flood:
        for n in workers:
            if n > 1 and not supports_workers(FLOOD_TOOL):
                notes.append(f"{FLOOD_TOOL.label}: no --workers in this tree; {n} not measured")
            else:
                flood.append(Series(FLOOD_TOOL, n))
    source = ensure_source(args.source_packets) if series else None
    with VethLab() as lab:
        if series and source is not None:
            src = source

            def make_traffic(rate: int) -> Replay:
                return traffic_replay(src, args.out, rate, args.seconds, args.source_packets)

            measure(lab, tcpreplay, series, args.rates, make_traffic, args)
        if flood:
            syns = ensure_flood(int(max(args.flood_rates) * args.seconds))

            def make_flood(rate: int) -> Replay:
                return flood_replay(syns, args.out, rate, args.seconds)

            measure(lab, tcpreplay, flood, args.flood_rates, make_flood, args)
    everything = series + flood
    table = markdown(everything, notes, args)
    (args.out / "capacity.md").write_text(table)
    record = {
        "seconds": args.seconds,
        "series": [
            {
                "tool": s.tool.label,
                "workers": s.workers,
                "best": s.best,
                "points": [asdict(p) | {"passed": p.passed} for p in s.points],
            }
            for s in everything
        ],
        "notes": notes,
    }
    (args.out / "capacity.json").write_text(json.dumps(record, indent=1) + "\n")
    print()
    print(table)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
