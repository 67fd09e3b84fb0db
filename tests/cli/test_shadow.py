"""--paths: exact and bulk give the same output, and shadow stops at the first
difference between them (tcpscope.paths, cli.shadow)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tcpscope.analyze import marks as mk
from tcpscope.analyze import miruo as miruo_analyzer
from tcpscope.analyze.miruo_held import hold
from tcpscope.analyze.tcpeek import TcpeekAnalyzer
from tcpscope.cli import miruo, tcpeek
from tcpscope.cli.shadow import SHADOW_MISMATCH_EXIT, first_difference
from tcpscope.decode.records import Segment
from tcpscope.paths import EXACT, select_paths
from tcpscope.track.session import Session
from tests.support import frames as f
from tests.support.cli import run_main, stable
from tests.support.flows import Flow, merge
from tests.support.pcapwrite import write_pcap

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.pcap"


def exit_and_err(main: Callable[[list[str]], int], argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_select_paths_names_each_mode() -> None:
    assert select_paths("miruo", "exact") is EXACT and not EXACT.bulk
    bulk = select_paths("miruo", "bulk")
    assert (bulk.prefilter, bulk.plain_items, bulk.light) == ("follow", True, False)
    tcpeek_bulk = select_paths("tcpeek", "bulk")
    assert (tcpeek_bulk.prefilter, tcpeek_bulk.plain_items, tcpeek_bulk.light) == (
        "handshake", False, True,
    )  # fmt: skip
    checked = select_paths("tcpeek", "bulk", checksum_level=2)
    assert checked.prefilter == "handshake" and not checked.light  # frames must be checked


@pytest.mark.parametrize("mode", [[], ["--all"], ["--all", "--json"], ["-t", "1", "-v", "1"]])
def test_miruo_shadow_prints_what_bulk_prints(mode: list[str]) -> None:
    argv = [*mode, "-f", str(SAMPLE)]
    bulk_out, bulk_err = run_main(miruo.main, [*argv, "--paths", "bulk"])
    shadow_out, shadow_err = run_main(miruo.main, [*argv, "--paths", "shadow"])
    exact_out, exact_err = run_main(miruo.main, [*argv, "--paths", "exact"])
    assert stable(shadow_out) == stable(bulk_out) == stable(exact_out)
    assert stable(shadow_err) == stable(bulk_err) == stable(exact_err)


def test_tcpeek_shadow_prints_what_bulk_prints() -> None:
    argv = ["--json", "--local", "198.18.0.0/15", "-r", str(SAMPLE)]
    bulk = run_main(tcpeek.main, [*argv, "--paths", "bulk"])
    shadow = run_main(tcpeek.main, [*argv, "--paths", "shadow"])
    assert shadow[0] == bulk[0] and shadow[0].count('"type":"handshake"') > 0


def test_a_bad_paths_mode_is_a_usage_error() -> None:
    code, _, err = exit_and_err(miruo.main, ["--paths", "fast", "-f", str(SAMPLE)])
    assert code == 1 and err.startswith("miruo: --paths: 'fast' is not one of exact, bulk, shadow")


def test_shadow_stops_at_a_bulk_decode_that_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A numpy decode one byte off (the frame length of plain packets) is caught."""
    from tcpscope import engine

    real = engine.plain_fields

    def one_byte_more(*args: Any) -> Any:
        fields = real(*args)
        return fields._replace(wire_len=[n + 1 for n in fields.wire_len])

    monkeypatch.setattr(engine, "plain_fields", one_byte_more)
    code, _, err = exit_and_err(miruo.main, ["--all", "-f", str(SAMPLE), "--paths", "shadow"])
    assert code == SHADOW_MISMATCH_EXIT
    (line,) = err.splitlines()
    assert line.startswith("miruo: --paths shadow: the bulk and exact paths differ by packet")
    assert "bytes" in line  # the session header's byte total
    # and without shadow the same bug passes unnoticed
    assert exit_and_err(miruo.main, ["--all", "-f", str(SAMPLE)])[0] == 0


def test_shadow_stops_at_a_bulk_verdict_that_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    real = TcpeekAnalyzer.settled

    def a_microsecond_late(self: TcpeekAnalyzer, *args: Any) -> None:
        client, cport, server, sport, start, outbound, end = args
        real(self, client, cport, server, sport, start + 1000, outbound, end)

    monkeypatch.setattr(TcpeekAnalyzer, "settled", a_microsecond_late)
    argv = ["--json", "-q", "--local", "198.18.0.0/15", "-r", str(SAMPLE), "--paths", "shadow"]
    code, _, err = exit_and_err(tcpeek.main, argv)
    assert code == SHADOW_MISMATCH_EXIT
    assert "tcpeek: --paths shadow: the bulk and exact paths differ" in err
    assert '"start"' in err


def test_first_difference_says_where() -> None:
    assert first_difference("a\nb\nc\n", "a\nB\nc\n") == "line 2, column 1: bulk 'b', exact 'B'"
    long_a, long_b = "x" * 100 + "1" + "y" * 100, "x" * 100 + "2" + "y" * 100
    assert first_difference(long_a, long_b) == (
        f"line 1, column 101: bulk '{'x' * 30}1{'y' * 49}', exact '{'x' * 30}2{'y' * 49}'"
    )
    assert first_difference("a\n", "a\nmore\n") == "line 2: only exact has 'more'"


# ------------------------------------------ a per-segment mark, as issue 8 tried it


class ZeroWindow:
    """A part that marks zero-window segments: it reads quiet ACKs, so it says so
    by defining on_quiet (analyze.chain)."""

    def on_segment(self, sess: Session, seg: Segment, outcome: int, original: Any) -> None:
        self.on_quiet(sess, seg)

    def on_quiet(self, sess: Session, seg: Segment) -> None:
        if seg.window == 0 and not seg.flags & 0x07:
            if not seg.marks & mk.SHOWN:
                hold(sess, seg)
            seg.marks |= mk.M_DELAY  # any mark and reason that show the session will do
            sess.reasons |= mk.R_LONG_DELAY


def zero_window_capture(path: Path) -> Path:
    frames = []
    for n in range(40):
        flow = Flow(client=f"198.18.1.{n + 1}", cport=40000 + n, cseq=n << 20, sseq=n << 24)
        flow.handshake(n * 10)
        flow.c(n * 10 + 3, "PA", b"x" * 200)
        if n % 4 == 0:  # the client's buffer is full: a bare ACK with a zero window
            flow._add(n * 10 + 4, f.tcp_frame(
                flow.client, flow.cport, flow.server, flow.sport, "A", flow.cseq, flow.sseq,
                window=0,
            ))  # fmt: skip
        flow.s(n * 10 + 5, "PA", b"y" * 300)
        flow.c(n * 10 + 6, "A")
        flow.close(n * 10 + 7)
        frames += merge(flow)
    write_pcap(path, sorted(frames, key=lambda fr: fr[0]))
    return path


def test_a_part_that_reads_quiet_segments_is_seen_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = miruo_analyzer.miruo_parts

    def with_zero_window(*args: Any) -> list[object]:
        parts = real(*args)
        return [*parts[:-1], ZeroWindow(), parts[-1]]  # before the verdict

    monkeypatch.setattr(miruo_analyzer, "miruo_parts", with_zero_window)
    capture = zero_window_capture(tmp_path / "zero.pcap")
    out, _ = run_main(miruo.main, ["-f", str(capture), "--paths", "shadow"])
    # the ten sessions with a zero-window ACK are shown, the other thirty not
    assert out.count("Total ") == 10
