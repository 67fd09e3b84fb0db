"""Options both capture commands take, written once: the hidden --paths and the
monitoring ones (--metrics, --metrics-linger, --no-progress); and the number
converter their tables share."""

from __future__ import annotations

import os
from typing import Any

from tcpscope.cli.options import number
from tcpscope.cli.optspec import Opt
from tcpscope.errors import UsageError
from tcpscope.paths import Mode, parse_mode


def num(lo: int = 0, hi: int | None = None) -> Any:
    """A converter: an integer option within [lo, hi] (cli.options.number)."""

    def convert(text: str, name: str) -> int:
        return number(text, name, lo, hi)

    return convert


def _paths(text: str, name: str) -> Mode:
    return parse_mode(text)


PATHS = Opt(
    "paths",
    "engine paths: exact, bulk or shadow (for tests)",
    arg="MODE",
    dest="paths",
    convert=_paths,
    hidden=True,
    man="For tests, not listed by `--help`: `bulk` (the default) lets the numpy fast "
    "paths skip what cannot change the output; `exact` takes every packet through the "
    "per-packet path that defines the behaviour; `shadow` runs both side by side and "
    "stops with exit status 3 at the first byte of output that differs.",
)

# --metrics-linger is meaningless without --metrics (Command.requires).
METRICS_REQUIRES = (("metrics_linger", "metrics"),)


def monitoring(read: str) -> tuple[Opt, ...]:
    """--metrics, --metrics-linger and --no-progress; `read` names the command's
    read-a-file option ("-f", "-r") in their texts."""
    return (
        Opt(
            "metrics",
            "Prometheus /metrics; ADDR default 127.0.0.1 (docs/metrics.md)",
            arg="[ADDR:]PORT",
            dest="metrics",
            man="Serve Prometheus metrics on http://ADDR:PORT/metrics. ADDR defaults to "
            "127.0.0.1; `:PORT` listens on every address (IPv6 and IPv4), `[ADDR]:PORT` on "
            "an IPv6 one. The scraper may ask for the Prometheus text format or OpenMetrics. "
            "A port in use or a bad address is one line and exit status 1, before capture "
            "starts. The metrics are listed in tcpscope's docs/metrics.md.",
        ),
        Opt(
            "metrics-linger",
            f"with {read}: serve /metrics after the file, until a signal",
            dest="metrics_linger",
            man=f"With `{read}` and `--metrics`: once the file is read and the output "
            "written, keep serving the final numbers until SIGINT or SIGTERM.",
        ),
        Opt(
            "no-progress",
            f"no progress bar while {read} reads a file",
            dest="no_progress",
            man=f"Show no progress bar. Without it, while `{read}` reads a file and standard "
            "error is a terminal, a bar there shows the bytes read of the file's size "
            "(packets, from a pipe), packets per second and the time left; it is gone before "
            "the output that follows the file.",
        ),
    )


def _jobs(text: str, name: str) -> int:
    if text == "auto":
        return available_cores()
    return number(text, name, 1, 1024)


def jobs(read: str) -> Opt:
    """-j/--jobs: worker processes for a capture file (tcpscope.parallel)."""
    return Opt(
        "jobs",
        f"with {read}: N worker processes (auto: one per core). Default 1",
        short="j",
        arg="N|auto",
        dest="jobs",
        convert=_jobs,
        man=f"With `{read}`: read the file with <<N>> worker processes, each following the "
        "sessions whose 4-tuple hash falls in its share, and merge their records into the "
        "output one process writes, byte for byte (same order, ids and totals). `auto`: one "
        "per core this process may use. Default 1. The limits (`-L`, `-l`, tcpeek's million "
        "pending handshakes) are shared out among the workers, and ActiveSegmentMax is the "
        "sum of the workers' maxima. Not with standard "
        "input or a pipe, `--metrics`, or `--paths shadow`.",
    )


# --workers: more capture processes than this is no gain on any host we know (each
# is a whole Python process), and the kernel's fan-out group takes 256 at most.
MAX_WORKERS = 64


def available_cores() -> int:
    """`auto` for -j and --workers: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _workers(text: str, name: str) -> int:
    if text == "auto":
        return min(available_cores(), MAX_WORKERS)
    if not text.isdigit():
        raise UsageError(f"option {name}: '{text[:40]}' is not a number or 'auto'")
    return number(text, name, 1, MAX_WORKERS)


def workers(device: str) -> Opt:
    """--workers N|auto for live capture; `device` names the command's -i option."""
    return Opt(
        "workers",
        f"capture processes on {device} (PACKET_FANOUT), or auto (default: 1)",
        arg="N",
        dest="workers",
        convert=_workers,
        man=f"Capture on the `{device}` device with N processes (1 to 64; `auto`: one per "
        "core available), joined in one Linux PACKET_FANOUT group that hands both "
        "directions of each TCP connection to the same process. Their records are "
        "merged into one output, line by line in the order they come; their counters are "
        "summed. Default 1: one process, as without the option. Not for capture files.",
    )
