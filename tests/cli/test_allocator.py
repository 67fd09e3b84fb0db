"""cli.allocator: glibc's thresholds set by the commands, seen in glibc's own
counters (mallinfo2) in a fresh process each, and left alone where the user
set them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# A fresh interpreter: allocate a 4 MB block (over glibc's initial 128 KB mmap
# threshold), note where glibc put it, free it, note what the heap kept.
_PROBE = """
import ctypes, json, sys
from tcpscope.cli.allocator import keep_batch_memory
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
        "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
tuned = keep_batch_memory() if sys.argv[1] == "tuned" else None
before = libc.mallinfo2().hblkhd
block = bytearray(4 << 20)
mapped = libc.mallinfo2().hblkhd - before
del block
print(json.dumps({"tuned": tuned, "mapped": mapped, "kept": libc.mallinfo2().keepcost}))
"""


def _probe(mode: str, **env: str) -> dict[str, int | bool | None]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}, **env},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found: dict[str, int | bool | None] = json.loads(done.stdout)
    return found


def test_by_default_glibc_maps_a_batch_sized_block_and_gives_it_back() -> None:
    plain = _probe("plain")
    assert plain["mapped"] >= 4 << 20  # its own mapping, unmapped when freed


def test_tuned_the_block_comes_from_the_heap_and_stays_when_freed() -> None:
    tuned = _probe("tuned")
    assert tuned["tuned"] is True
    assert tuned["mapped"] == 0
    assert tuned["kept"] >= 4 << 20  # not trimmed: the next batch reuses it


def test_the_users_own_malloc_settings_win() -> None:
    mine = _probe("tuned", MALLOC_MMAP_THRESHOLD_=str(128 << 10))
    assert mine["tuned"] is False
    assert mine["mapped"] >= 4 << 20  # glibc still honours the user's threshold
    assert _probe("tuned", GLIBC_TUNABLES="glibc.malloc.trim_threshold=131072")["tuned"] is False


def test_the_capture_commands_tune_it_and_the_client_does_not() -> None:
    code = (
        "from tcpscope.cli import allocator, launch\n"
        "calls = []\n"
        "allocator.keep_batch_memory = lambda: calls.append(1) or True\n"
        "for name in ('miruo', 'tcpeek', 'tcpeekstat'):\n"
        "    before = len(calls)\n"
        "    try:\n"
        "        launch.run(name, ['--version'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    print('CALLS', name, len(calls) - before)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    calls = [line for line in done.stdout.splitlines() if line.startswith("CALLS ")]
    assert calls == ["CALLS miruo 1", "CALLS tcpeek 1", "CALLS tcpeekstat 0"]
