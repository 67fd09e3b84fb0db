"""`miruo` without its sequence-space analyzer, for bench/run.py's "miruo, no
seq" row: the same run with the one part (analyze.seq_analyzer) left out, so
that the analyzer's cost is a ratio measured in the same run.

    python bench/without_seqspace.py -f capture.pcap     # any miruo options
"""

from __future__ import annotations

import sys

from tcpscope.cli import launch

launch.limit_blas_threads()  # before numpy loads, as `python -m tcpscope` does

from tcpscope.analyze import miruo as analyzer  # noqa: E402  (imports numpy)
from tcpscope.analyze.seq_analyzer import SeqAnalyzer  # noqa: E402

_parts = analyzer.miruo_parts


def _without(*args: object, **kwargs: object) -> list[object]:
    return [p for p in _parts(*args, **kwargs) if not isinstance(p, SeqAnalyzer)]  # type: ignore[arg-type]


if __name__ == "__main__":
    analyzer.miruo_parts = _without
    # Through the same launcher as `python -m tcpscope miruo` (allocator, one BLAS
    # thread, buffered stderr), so that the two runs differ by the analyzer alone.
    launch.exit_now(launch.run("miruo", sys.argv[1:]))
