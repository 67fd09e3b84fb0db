"""The process's own CPU and memory use, for the statistics block (Linux /proc)."""

from __future__ import annotations

import os


def memory_kb() -> tuple[int, int]:
    """(VSZ, RSS) in KiB, or (0, 0) where /proc is not there."""
    vsz = rss = 0
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    vsz = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return vsz, rss


class CpuMeter:
    """CPU use as a percentage of wall time since the previous reading."""

    def __init__(self, wall_ns: int) -> None:
        self._cpu = self._cpu_seconds()
        self._wall = wall_ns

    @staticmethod
    def _cpu_seconds() -> float:
        t = os.times()
        return t.user + t.system

    def percent(self, wall_ns: int) -> float:
        cpu = self._cpu_seconds()
        elapsed = (wall_ns - self._wall) / 1e9
        used = cpu - self._cpu
        self._cpu, self._wall = cpu, wall_ns
        return 100.0 * used / elapsed if elapsed > 0 else 0.0
