#!/usr/bin/env python3
"""The fuzzer of tests/robustness/test_fuzz.py for long runs.

    python bench/fuzz.py --packets 1000000 [--per-file 5000] [--seed 0] [--pipe-every 5]

Writes seeded mutated captures (tests/support/fuzz.py) to a temporary
directory, runs each through miruo and tcpeek in their modes with
`--paths shadow` at 8192 and `--paths bulk` at batch sizes 1 and 97 (and every Nth file through
`cat F | TOOL -r -`), and checks: no exception or traceback, no hang, exit 0
or a one-line error (2 for a damaged file), the same output everywhere.
Prints the figures; exit 1 if anything was wrong, with the first problems.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src")]

from tests.support.fuzz import Fuzzer, read_frames  # noqa: E402
from tests.support.fuzzrun import Tally, check_file  # noqa: E402

LAB = REPO / "examples" / "sample.pcap"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000, help="packets in all")
    parser.add_argument("--per-file", type=int, default=5_000, help="packets a file")
    parser.add_argument("--seed", type=int, default=0, help="the first file's seed")
    parser.add_argument("--pipe-every", type=int, default=5, help="every Nth file also piped")
    parser.add_argument(
        "--batches", default="1,97,8192", help="read batch sizes, comma-separated (1,97,8192)"
    )
    args = parser.parse_args(argv)
    lab = read_frames(LAB)
    batches = tuple(int(b) for b in args.batches.split(","))
    tally = Tally()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tcpscope-fuzz-") as folder:
        seed = args.seed
        while tally.packets < args.packets:
            path = Path(folder) / f"fuzz{seed}.pcap"
            path.write_bytes(Fuzzer(seed, lab if seed % 2 else []).capture(args.per_file))
            tally.packets += args.per_file
            pipe = args.pipe_every > 0 and seed % args.pipe_every == 0
            check_file(path, tally, pipe, batches)
            path.unlink()
            seed += 1
            if tally.files % 20 == 0:
                print(f"  {tally.packets} packets, {len(tally.problems)} problems, "
                      f"{time.monotonic() - started:.0f} s", flush=True)  # fmt: skip
    took = time.monotonic() - started
    print(f"fuzz: {tally.packets} packets in {tally.files} files (seeds {args.seed}..{seed - 1}), "
          f"{tally.runs} runs, exits {dict(sorted(tally.exits.items()))}, "
          f"{len(tally.problems)} problems, {took:.0f} s")  # fmt: skip
    for problem in tally.problems[:40]:
        print("  " + problem)
    return 1 if tally.problems else 0


if __name__ == "__main__":
    sys.exit(main())
