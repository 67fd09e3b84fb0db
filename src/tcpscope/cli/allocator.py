"""glibc's allocator set for batch work, by the commands (never by the Python
API: a library leaves its host's allocator alone).

Every batch allocates a few MB and frees them before the next: libpcap's
buffer (~2 MB for 4,096 packets), numpy's columns and temporaries. By default
glibc serves blocks over 128 KB (a threshold it then moves up and down) with
mmap and trims freed memory off the top of the heap past 128 KB, so batch after
batch the same pages are unmapped and faulted in again: on a 1M-packet capture
tcpeek took 54,000 minor page faults instead of 10,000, and 0.1 s more system
time (bench/README.md, "The allocator"). Served from the heap below `MMAP_BYTES`,
and kept when freed up to `TRIM_BYTES`, the next batch reuses them.

Left alone: other C libraries (no `mallopt`, or one that ignores it), and a
run whose environment already tunes glibc's malloc.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_BYTES = 32 << 20  # blocks at least this large still get their own mapping
TRIM_BYTES = 64 << 20  # free memory at the heap's top kept for the next batch
# The user's own settings win (glibc reads these at start-up).
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_batch_memory() -> bool:
    """Set the two thresholds; whether they were set."""
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not a glibc system
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success (0: a C library that does not take it)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_BYTES)
    )
