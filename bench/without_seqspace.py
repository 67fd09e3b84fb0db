"""`miruo` without its sequence-space analyzer, for bench/run.py's "miruo, no
seq" row: the same run with the one part (analyze.seq_analyzer) left out, so
that the analyzer's cost is a ratio measured in the same run.

    python bench/without_seqspace.py -f capture.pcap     # any miruo options
"""

from __future__ import annotations

import sys

from tcpscope.analyze import miruo as analyzer
from tcpscope.analyze.seq_analyzer import SeqAnalyzer
from tcpscope.cli import miruo
from tcpscope.cli.allocator import keep_batch_memory

_parts = analyzer.miruo_parts


def _without(*args: object, **kwargs: object) -> list[object]:
    return [p for p in _parts(*args, **kwargs) if not isinstance(p, SeqAnalyzer)]  # type: ignore[arg-type]


if __name__ == "__main__":
    analyzer.miruo_parts = _without  # type: ignore[assignment]
    keep_batch_memory()  # as `python -m tcpscope` does (cli.launch), for the same allocator
    sys.exit(miruo.main(sys.argv[1:]))
