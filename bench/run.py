#!/usr/bin/env python3
"""Time tcpscope against the bare libpcap read of the same capture.

    python bench/run.py [--packets 1000000] [--repeat 3] [--quick]

Generates bench/out/s2k-*.pcap and s20k-*.pcap (about 2,000 and 20,000 sessions
open at once) with bench/gen.py, and synflood-*.pcap (1M unanswered SYNs at
50,000/s from random sources: tcpeek's worst case) with bench/synflood.py, when
they are missing, then runs every command on its files --repeat times,
round-robin over all (file, command) pairs so slow drift of the machine hits
them all alike, and reports the median wall time,
packets/s, the ratio to the floor of the same file and the child's peak RSS
(ru_maxrss from os.wait4). Results also go to bench/out/results.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
GEN = BENCH_DIR / "gen.py"
SYNFLOOD = BENCH_DIR / "synflood.py"
FLOOD_TARGET = "198.19.255.1"  # the flooded server (bench/synflood.py)
SEED = 1
QUICK_PACKETS = 100_000
TCPEEK_LOCAL = "198.18.0.0/15"

# The floor: libpcap reading the file in batches with nothing done per packet.
# The previous batch stays referenced until the next call returns, as in any
# ordinary read loop: freeing it first makes glibc map and unmap each ~2 MB batch
# on some files (5x the page faults, +60 % time; see README).
FLOOR_SCRIPT = """\
import sys, pcapy
reader = pcapy.open_offline(sys.argv[1])
batch = reader.next_batch(4096)
while batch[1]:
    batch = reader.next_batch(4096)
"""

# Targets (the engine issue; ratios to the floor of the same file in the same run).
MIRUO_FLOOR_RATIO = 4.0  # miruo -f, and miruo -L0 -l0 -f
MIRUO_ALL_FLOOR_RATIO = 8.0  # miruo -L0 -l0 --all, and with --json
SESSIONS_RATIO = 1.3
FULL_RSS_MIB = 200.0
TCPEEK_FLOOR_RATIO = 2.0
FLOOD_SECONDS = 1.5  # tcpeek -q on the SYN flood
SEQ_RATIO = 1.05  # with the sequence-space analyzer, to without it (issue 9)
JOBS_RATIO = 1 / 1.6  # -j 2 to -j 1 time: at least 1.6x as fast on 2 cores (issue 12)


@dataclass(frozen=True)
class Capture:
    key: str  # "s2k", "s20k" or "flood"
    sessions_open: int
    path: Path


@dataclass(frozen=True)
class Command:
    key: str
    label: str
    argv: tuple[str, ...]  # "{file}" stands for the capture
    info_only: bool = False  # shown, never used by a check
    files: tuple[str, ...] = ("s2k", "s20k")  # the captures it runs on

    def for_file(self, path: Path) -> list[str]:
        return [str(path) if part == "{file}" else part for part in self.argv]


@dataclass
class Runs:
    """Every run of one command on one file."""

    seconds: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    failure: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds and not self.failure else None


@dataclass(frozen=True)
class Outcome:
    seconds: float
    exit_code: int
    rss_kib: int
    last_error_line: str


def run_timed(argv: list[str], timeout: float) -> Outcome:
    """Run argv with stdout to /dev/null; wall time, exit code and the child's peak RSS."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors
        )
        killer = threading.Timer(timeout, child.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            killer.cancel()
        elapsed = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        child.returncode = code  # reaped here: keep Popen from waiting again
        errors.seek(0)
        lines = errors.read().decode("utf-8", "replace").strip().splitlines()
    last = lines[-1] if lines else ""
    if code < 0 and elapsed >= timeout:
        last = f"timed out after {timeout:.0f} s"
    return Outcome(elapsed, code, usage.ru_maxrss, last)


def ensure_capture(capture: Capture, packets: int) -> dict[str, object]:
    """Generate the file if it is not there; its summary line is kept beside it."""
    note = capture.path.with_suffix(".txt")
    if capture.path.exists():
        summary = note.read_text().strip() if note.exists() else ""
        return {"generated": False, "summary": summary}
    common = ["--packets", str(packets), "--seed", str(SEED), "-o", str(capture.path)]
    if capture.key == "flood":
        argv = [sys.executable, str(SYNFLOOD), *common]
    else:
        argv = [sys.executable, str(GEN), "--sessions-open", str(capture.sessions_open), *common]
    print(f"generating {capture.path.name} ...", flush=True)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench/gen.py failed: {done.stderr.strip()}")
    summary = done.stderr.strip()
    note.write_text(summary + "\n")
    print(f"  {summary}  [{elapsed:.1f} s]", flush=True)
    return {"generated": True, "seconds": round(elapsed, 3), "summary": summary}


def warm_page_cache(path: Path) -> None:
    """Read the file once so no timed run pays for the disk.

    One small reused buffer: Linux charges the runner's own peak RSS at fork time
    to each child's ru_maxrss, so the runner must stay small.
    """
    buffer = bytearray(1 << 20)
    with path.open("rb", buffering=0) as f:
        while f.readinto(buffer):
            pass


def compile_package() -> None:
    """Byte-compile tcpscope as `pip install` does: an editable install under
    PYTHONDONTWRITEBYTECODE=1 (CI images set it) compiles every module again at
    each start, ~60 ms a run that no installed copy pays."""
    import tcpscope

    compileall.compile_dir(str(Path(tcpscope.__file__).parent), quiet=1)


def tcpeek_missing() -> str | None:
    """Why tcpeek cannot be timed yet, or None when its module imports."""
    probe = subprocess.run(
        [sys.executable, "-c", "import tcpscope.cli.tcpeek"], capture_output=True, text=True
    )
    if probe.returncode == 0:
        return None
    lines = probe.stderr.strip().splitlines()
    return lines[-1] if lines else "import failed"


def build_commands() -> tuple[list[Command], list[str]]:
    py = sys.executable
    floor = (py, "-c", FLOOR_SCRIPT, "{file}")
    every = ("s2k", "s20k", "flood")
    commands = [Command("floor", "floor: pcapy next_batch(4096)", floor, files=every)]
    notes: list[str] = []
    tcpdump = shutil.which("tcpdump")
    if tcpdump:
        commands.append(
            Command(
                "tcpdump",
                "tcpdump -r F -w /dev/null (info)",
                (tcpdump, "-r", "{file}", "-w", "/dev/null"),
                info_only=True,
            )
        )
    miruo = (py, "-m", "tcpscope", "miruo")
    without = str(Path(__file__).with_name("without_seqspace.py"))
    commands += [
        Command("miruo", "miruo -f F", (*miruo, "-f", "{file}")),
        Command("miruo_unlimited", "miruo -L0 -l0 -f F", (*miruo, "-L0", "-l0", "-f", "{file}")),
        Command(
            "miruo_all", "miruo -L0 -l0 --all -f F", (*miruo, "-L0", "-l0", "--all", "-f", "{file}")
        ),
        Command(
            "miruo_full",
            "miruo -L0 -l0 --all --json -f F",
            (*miruo, "-L0", "-l0", "--all", "--json", "-f", "{file}"),
        ),
        # -j 2: two workers and the writer (tcpscope.parallel; the speed-up target)
        Command(
            "miruo_full_j2",
            "miruo -L0 -l0 --all --json -j 2 -f F",
            (*miruo, "-L0", "-l0", "--all", "--json", "-j", "2", "-f", "{file}"),
        ),
        # default miruo without the sequence-space analyzer: the analyzer is attached
        # only where it is read (--json), so this runs the same code as "miruo" and
        # the ratio of the two is the bench's own noise (information only)
        Command(
            "miruo_noseq",
            "miruo -f F, no seq analyzer (info)",
            (py, without, "-f", "{file}"),
        ),
        # the same without the sequence-space analyzer (attached with --json only)
        Command(
            "miruo_full_noseq",
            "the same without the seq analyzer",
            (py, without, "-L0", "-l0", "--all", "--json", "-f", "{file}"),
        ),
    ]
    missing = tcpeek_missing()
    if missing is None:
        commands.append(
            Command(
                "tcpeek",
                f"tcpeek -q -r F --local {TCPEEK_LOCAL}",
                (py, "-m", "tcpscope", "tcpeek", "-q", "-r", "{file}", "--local", TCPEEK_LOCAL),
            )
        )
        commands.append(
            Command(
                "tcpeek_j2",
                f"tcpeek -q -j 2 -r F --local {TCPEEK_LOCAL} (info)",
                (py, "-m", "tcpscope", "tcpeek", "-q", "-j", "2", "-r", "{file}", "--local",
                 TCPEEK_LOCAL),
                info_only=True,
            )
        )  # fmt: skip
        commands.append(
            Command(
                "tcpeek_flood",
                f"tcpeek -q -r F --local {FLOOD_TARGET}",
                (py, "-m", "tcpscope", "tcpeek", "-q", "-r", "{file}", "--local", FLOOD_TARGET),
                files=("flood",),
            )
        )
    else:
        notes.append(f"tcpeek skipped: not available yet ({missing})")
    return commands, notes


def measure(
    captures: list[Capture], commands: list[Command], repeat: int, timeout: float
) -> dict[tuple[str, str], Runs]:
    runs = {(c.key, m.key): Runs() for c in captures for m in commands if c.key in m.files}
    for round_no in range(1, repeat + 1):
        print(f"round {round_no}/{repeat}", flush=True)
        for capture in captures:
            for command in commands:
                if capture.key not in command.files:
                    continue
                slot = runs[(capture.key, command.key)]
                if slot.failure:
                    continue  # once failed, it will fail again: do not wait for it
                outcome = run_timed(command.for_file(capture.path), timeout)
                if outcome.exit_code != 0:
                    slot.failure = (
                        f"exit {outcome.exit_code}: {outcome.last_error_line or '(no stderr)'}"
                    )
                else:
                    slot.seconds.append(outcome.seconds)
                    slot.rss_kib.append(outcome.rss_kib)
    return runs


@dataclass(frozen=True)
class Result:
    """One command on one file, summarised."""

    error: str | None = None  # set when the command failed
    seconds: float = 0.0  # median
    all_seconds: tuple[float, ...] = ()
    packets_per_s: float = 0.0
    floor_ratio: float | None = None
    peak_rss_mib: float = 0.0

    def as_json(self) -> dict[str, object]:
        if self.error is not None:
            return {"status": "FAILED", "error": self.error}
        return {
            "status": "ok",
            "seconds": round(self.seconds, 4),
            "all_seconds": [round(s, 4) for s in self.all_seconds],
            "packets_per_s": round(self.packets_per_s),
            "floor_ratio": None if self.floor_ratio is None else round(self.floor_ratio, 3),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
        }


def summarise(runs: Runs, floor: float | None, packets: int) -> Result:
    median = runs.median
    if runs.failure or median is None:
        return Result(error=runs.failure or "no run")
    return Result(
        seconds=median,
        all_seconds=tuple(runs.seconds),
        packets_per_s=packets / median,
        floor_ratio=median / floor if floor else None,
        peak_rss_mib=max(runs.rss_kib) / 1024,
    )


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None  # None: what it needs did not run
    limit: float
    unit: str
    strict: bool = False  # value must stay below the limit, not just reach it

    @property
    def status(self) -> str:
        if self.value is None:
            return "n/a"
        within = self.value < self.limit if self.strict else self.value <= self.limit
        return "PASS" if within else "FAIL"

    def as_json(self) -> dict[str, object]:
        value = None if self.value is None else round(self.value, 3)
        return {
            "check": self.name,
            "status": self.status,
            "value": value,
            "limit": self.limit,
            "unit": self.unit,
        }


Table = dict[str, dict[str, Result]]  # capture key -> command key -> result


def evaluate(table: Table) -> list[Check]:
    def ok(file: str, command: str) -> Result | None:
        result = table.get(file, {}).get(command)
        return result if result is not None and result.error is None else None

    def floor_ratio(file: str, command: str) -> float | None:
        result = ok(file, command)
        return result.floor_ratio if result else None

    checks = [
        Check(f"{label} <= {limit:g}x floor ({f})", floor_ratio(f, key), limit, "x")
        for key, label, limit in (
            ("miruo", "miruo default", MIRUO_FLOOR_RATIO),
            ("miruo_unlimited", "miruo -L0 -l0", MIRUO_FLOOR_RATIO),
            ("miruo_all", "miruo -L0 -l0 --all", MIRUO_ALL_FLOOR_RATIO),
            ("miruo_full", "miruo -L0 -l0 --all --json", MIRUO_ALL_FLOOR_RATIO),
        )
        for f in ("s2k", "s20k")
    ]
    for f in ("s2k", "s20k"):  # what the analyzer costs where it is attached
        with_seq, without = ok(f, "miruo_full"), ok(f, "miruo_full_noseq")
        checks.append(
            Check(
                f"miruo -L0 -l0 --all --json <= {SEQ_RATIO:g}x without the seq analyzer ({f})",
                with_seq.seconds / without.seconds if with_seq and without else None,
                SEQ_RATIO,
                "x",
            )
        )
    for f in ("s2k", "s20k"):  # -j 2 at least 1.6x as fast as -j 1 (issue 12)
        one, two = ok(f, "miruo_full"), ok(f, "miruo_full_j2")
        checks.append(
            Check(
                f"miruo -L0 -l0 --all --json -j 2 <= {JOBS_RATIO:.3g}x -j 1 ({f})",
                two.seconds / one.seconds if one and two else None,
                JOBS_RATIO,
                "x",
            )
        )
    small, large = ok("s2k", "miruo"), ok("s20k", "miruo")
    checks.append(
        Check(
            f"miruo default s20k <= {SESSIONS_RATIO:g}x s2k",
            large.seconds / small.seconds if small and large else None,
            SESSIONS_RATIO,
            "x",
        )
    )
    full = ok("s20k", "miruo_full")
    checks.append(
        Check(
            f"miruo -L0 -l0 --all --json peak RSS <= {FULL_RSS_MIB:g} MiB (s20k)",
            full.peak_rss_mib if full else None,
            FULL_RSS_MIB,
            " MiB",
        )
    )
    checks += [
        Check(
            f"tcpeek <= {TCPEEK_FLOOR_RATIO:g}x floor ({f})",
            floor_ratio(f, "tcpeek"),
            TCPEEK_FLOOR_RATIO,
            "x",
        )
        for f in ("s2k", "s20k")
    ]
    flood = ok("flood", "tcpeek_flood")
    checks.append(
        Check(
            f"tcpeek -q on the SYN flood <= {FLOOD_SECONDS:g} s",
            flood.seconds if flood else None,
            FLOOD_SECONDS,
            " s",
        )
    )
    return checks


def print_table(
    capture: Capture, commands: list[Command], results: dict[str, Result], packets: int
) -> None:
    print()
    what = "every packet a new SYN" if capture.key == "flood" else (
        f"~{capture.sessions_open:,} sessions open"
    )
    print(f"{capture.path.name}: {packets:,} packets, {what}")
    print(f"  {'command':<40} {'seconds':>8} {'packets/s':>11} {'x floor':>8} {'peak RSS':>10}")
    for command in commands:
        if command.key not in results:
            continue
        r = results[command.key]
        if r.error is not None:
            print(f"  {command.label:<40} FAILED  {r.error}")
            continue
        ratio_text = "-" if r.floor_ratio is None else f"{r.floor_ratio:.2f}"
        print(
            f"  {command.label:<40} {r.seconds:>8.3f} {r.packets_per_s / 1e6:>9.3f} M"
            f" {ratio_text:>8} {r.peak_rss_mib:>6.1f} MiB"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark tcpscope against a bare libpcap read.")
    parser.add_argument(
        "--packets", type=int, default=1_000_000, help="packets per capture (default 1000000)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per command (median)")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_PACKETS:,} packets, for a fast sanity run"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds before one run is killed and reported FAILED",
    )
    parser.add_argument(
        "--only",
        default="",
        help="command keys, comma-separated (the floor is always run); writes results-only.json",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.packets < 1:
        parser.error("--repeat and --packets must be >= 1")
    packets = QUICK_PACKETS if args.quick else args.packets

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    captures = [
        Capture(key, n, OUT_DIR / f"{key}-p{packets}-seed{SEED}.pcap")
        for key, n in (("s2k", 2_000), ("s20k", 20_000), ("flood", 0))
    ]
    generation = {c.key: ensure_capture(c, packets) for c in captures}
    for capture in captures:
        warm_page_cache(capture.path)
    compile_package()

    commands, notes = build_commands()
    only = {k for k in args.only.split(",") if k}
    unknown = only - {m.key for m in commands}
    if unknown:
        parser.error(f"--only: no such command: {', '.join(sorted(unknown))}")
    if only:
        commands = [m for m in commands if m.key == "floor" or m.key in only]
    for note in notes:
        print(note)
    runs = measure(captures, commands, args.repeat, args.timeout)

    table: Table = {}
    for capture in captures:
        floor = runs[(capture.key, "floor")].median
        table[capture.key] = {
            m.key: summarise(runs[(capture.key, m.key)], floor, packets)
            for m in commands
            if capture.key in m.files
        }
        print_table(capture, commands, table[capture.key], packets)

    checks = evaluate(table)
    print()
    print("targets:")
    for c in checks:
        value = "-" if c.value is None else f"{c.value:.2f}{c.unit}"
        print(f"  {c.status:<5} {c.name}: {value}")
    for note in notes:
        print(f"  note: {note}")
    # Linux counts the runner's own peak RSS at fork time in each child's ru_maxrss.
    runner_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  note: peak RSS cannot read below the runner's own ({runner_rss_mib:.1f} MiB)")

    report = {
        "packets": packets,
        "repeat": args.repeat,
        "seed": SEED,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "captures": {
            c.key: {"file": c.path.name, "sessions_open": c.sessions_open, **generation[c.key]}
            for c in captures
        },
        "commands": {m.key: {"label": m.label, "info_only": m.info_only} for m in commands},
        "results": {
            file: {key: r.as_json() for key, r in rows.items()} for file, rows in table.items()
        },
        "checks": [c.as_json() for c in checks],
        "notes": notes,
        "runner_rss_mib": round(runner_rss_mib, 1),
    }
    out = OUT_DIR / ("results-only.json" if only else "results.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
