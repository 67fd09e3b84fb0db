"""cli.metrics: the listener tap miruo's tally rides on, and the registry's parts."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from tcpscope.cli.metrics import CloseTap, registry_of
from tcpscope.output.metrics import MiruoCollector, MiruoTally


class Inner:
    def __init__(self, quiet: bool) -> None:
        self.calls: list[tuple[Any, ...]] = []
        if quiet:
            self.on_quiet = lambda sess, seg: self.calls.append(("quiet", sess))

    def on_open(self, sess: Any, seg: Any) -> None:
        self.calls.append(("open", sess))

    def on_segment(self, sess: Any, seg: Any, outcome: int, original: Any) -> None:
        self.calls.append(("segment", sess))

    def on_close(self, sess: Any, reason: str, now: int) -> None:
        self.calls.append(("close", sess))

    def on_icmp(self, sess: Any, icmp: Any) -> None:
        self.calls.append(("icmp", sess))


def test_tap_forwards_every_hook_and_closes_after_the_inner() -> None:
    inner = Inner(quiet=False)
    tap = CloseTap(inner, lambda sess, reason, now: inner.calls.append(("after", sess)))
    tap.on_open(1, None)
    tap.on_segment(2, None, 0, None)
    tap.on_icmp(3, None)
    tap.on_close(4, "fin", 0)
    assert inner.calls == [("open", 1), ("segment", 2), ("icmp", 3), ("close", 4), ("after", 4)]
    # a listener with no on_quiet declared it needs no quiet segments: so does the tap
    assert getattr(tap, "on_quiet", None) is None
    with_quiet = Inner(quiet=True)
    tapped = CloseTap(with_quiet, lambda *a: None)
    tapped.on_quiet(5, None)
    assert with_quiet.calls == [("quiet", 5)]


def test_registry_has_ours_and_the_library_process_metrics() -> None:
    text = generate_latest(registry_of(MiruoCollector(MiruoTally(), "1", "p"))).decode()
    for name in ("miruo_sessions_total", "process_cpu_seconds_total",
                 "process_resident_memory_bytes", "python_info", "python_gc_objects_collected"):
        assert name in text, name  # fmt: skip
