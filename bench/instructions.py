"""The bench's commands counted in instructions (valgrind's cachegrind), as
ratios to the floor's on the same capture: the same figure on every run, where
wall time on a shared machine varies by a third from one run to the next.

    python bench/instructions.py                 # every command, s2k and s20k, 100k packets
    python bench/instructions.py --only miruo,tcpeek --files s2k
    python bench/instructions.py --src OTHER/src  # the same commands on another checkout

Each command runs once under `valgrind --tool=cachegrind --cache-sim=no`
(~50x slower, hence 100,000 packets by default); what is counted is every
user-space instruction of the process, start-up included. The commands, the
captures and the floor are run.py's. Python's hash seed is fixed, and BLAS has
one thread, so that two runs of the same code count the same (to ~0.1 %).
Commands that start other processes (-j 2) are left out: cachegrind counts
one process. valgrind is a Debian package (`apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # bench/run.py: the commands and the captures

DEFAULT_PACKETS = 100_000
_REFS = re.compile(r"^==\d+== I\s+refs:\s+([\d,]+)", re.MULTILINE)
SPAWNING = ("-j",)  # a command with one of these starts other processes


def count(argv: list[str], src: str | None) -> int:
    """The instructions one run of argv executes (stdout discarded)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("instructions.py: valgrind is missing (apt-get install valgrind)")
    env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1")
    if src is not None:
        env["PYTHONPATH"] = src
    done = subprocess.run(
        [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         *argv],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, check=False,
    )  # fmt: skip
    found = _REFS.findall(done.stderr)
    if done.returncode != 0 or not found:
        last = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"instructions.py: {' '.join(argv)} failed: {last[0]}")
    return int(found[-1].replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=DEFAULT_PACKETS)
    parser.add_argument("--files", default="s2k,s20k", help="captures: s2k, s20k, flood")
    parser.add_argument("--only", default="", help="command keys (run.py's), comma-separated")
    parser.add_argument("--src", default=None, help="PYTHONPATH for tcpscope (another checkout)")
    args = parser.parse_args(argv)
    wanted_files = [f for f in args.files.split(",") if f]
    captures = {
        key: bench.Capture(key, n, bench.OUT_DIR / f"{key}-p{args.packets}-seed{bench.SEED}.pcap")
        for key, n in (("s2k", 2_000), ("s20k", 20_000), ("flood", 0))
        if key in wanted_files
    }
    bench.OUT_DIR.mkdir(parents=True, exist_ok=True)
    for capture in captures.values():
        bench.ensure_capture(capture, args.packets)
    bench.compile_package()
    commands, _ = bench.build_commands()
    only = {k for k in args.only.split(",") if k}
    def wanted(c: bench.Command) -> bool:
        if c.key == "floor":
            return True
        if c.key == "tcpdump" or any(flag in c.argv for flag in SPAWNING):
            return False
        return not only or c.key in only

    chosen = [c for c in commands if wanted(c)]
    print(f"instructions (cachegrind), {args.packets:,} packets; ratio to the floor's")
    for key, capture in captures.items():
        floor = None
        for command in chosen:
            if key not in command.files:
                continue
            n = count(command.for_file(capture.path), args.src)
            if command.key == "floor":
                floor = n
            ratio = f"{n / floor:6.2f}x" if floor else "      "
            print(f"{key:5s} {n / 1e9:8.3f} G {ratio}  {command.label}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
