"""sessions_frame() and handshakes_frame(): the documented dtypes, the records' values,
the same dtypes for an empty capture, and a clear ImportError without pandas."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tcpscope
from tcpscope.track.states import STATE_NAMES
from tests.cli.test_tcpeek_cli import LOCAL
from tests.cli.test_tcpeek_cli import mix as tcpeek_mix
from tests.support.pcapwrite import write_pcap

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample.pcap"
FIDELITY = REPO.parent / "shared" / "fidelity" / "capture.pcap"

# As docs/api.md lists them.
SESSION_DTYPES = {
    "id": "int64",
    "client": "string",
    "client_port": "uint16",
    "server": "string",
    "server_port": "uint16",
    "start": "datetime64[ns, UTC]",
    "end": "datetime64[ns, UTC]",
    "segments": "int64",
    "bytes": "int64",
    "handshake": "category",
    "syn_retransmits": "int64",
    "synack_retransmits": "int64",
    "retransmits": "int64",
    "rst_from": "category",
    "rst_during_close": "boolean",
    "fragments": "int64",
    "long_delays": "int64",
    "client_state": "category",
    "server_state": "category",
    "close": "category",
    "reasons": "object",
    "rtt": "float64",
    "retransmissions_c2s": "int64",
    "retransmissions_s2c": "int64",
    "fast_retransmissions": "int64",
    "spurious_retransmissions": "int64",
    "out_of_order": "int64",
    "duplicate_acks": "int64",
    "zero_windows": "int64",
    "zero_window_probes": "int64",
    "keep_alives": "int64",
    "lost_segments": "int64",
    "acked_unseen": "int64",
    "segments_shown": "object",
}
HANDSHAKE_DTYPES = {
    "client": "string",
    "client_port": "uint16",
    "server": "string",
    "server_port": "uint16",
    "start": "datetime64[ns, UTC]",
    "end": "datetime64[ns, UTC]",
    "result": "category",
    "icmp_type": "Int64",
    "icmp_code": "Int64",
    "rtt": "float64",
    "dupsyn": "int64",
    "dupsynack": "int64",
    "direction": "category",
    "filters": "object",
}


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in frame.dtypes.items()}


def test_sessions_frame_dtypes_and_values() -> None:
    capture = FIDELITY if FIDELITY.is_file() else SAMPLE
    frame = tcpscope.sessions_frame(capture, show_all=True, retransmit_ms=100)
    records = list(tcpscope.sessions(capture, show_all=True, retransmit_ms=100))
    assert dtypes(frame) == SESSION_DTYPES
    assert len(frame) == len(records) > 5
    assert list(frame["handshake"].cat.categories) == [
        "complete", "reset", "unanswered", "incomplete"
    ]  # fmt: skip
    assert list(frame["client_state"].cat.categories) == list(STATE_NAMES)
    for row, record in zip(frame.itertuples(index=False), records, strict=True):
        assert row.id == record.id and row.client == record.client
        assert row.client_port == record.client_port and row.bytes == record.bytes
        # the JSON's microseconds, exactly
        assert row.start.value == round(record.start * 1e6) * 1000
        assert row.end.value == round(record.end * 1e6) * 1000
        assert row.handshake == record.handshake and row.close == record.close
        if record.rst is None:
            assert pd.isna(row.rst_from) and pd.isna(row.rst_during_close)
        else:
            assert row.rst_from == record.rst.from_
            assert row.rst_during_close == record.rst.during_close
        assert row.reasons == record.reasons and row.segments_shown == record.segments_shown
        assert row.rtt == record.rtt or (record.rtt is None and np.isnan(row.rtt))
        assert row.retransmissions_c2s == record.analysis.retransmissions.c2s
        assert row.retransmissions_s2c == record.analysis.retransmissions.s2c
        assert row.duplicate_acks == record.analysis.duplicate_acks
    assert frame["rst_from"].notna().sum() == sum(r.rst is not None for r in records) > 0


def test_handshakes_frame_dtypes_and_values(tmp_path: Path) -> None:
    capture = tmp_path / "mix.pcap"
    write_pcap(capture, tcpeek_mix())
    frame = tcpscope.handshakes_frame(capture, local=LOCAL, icmp=True)
    records = list(tcpscope.handshakes(capture, local=LOCAL, icmp=True))
    assert dtypes(frame) == HANDSHAKE_DTYPES
    assert len(frame) == len(records) >= 5
    assert set(frame["result"]) == {"success", "reject", "timeout", "unreach"}
    unreach = frame[frame["result"] == "unreach"]
    assert list(unreach["icmp_type"]) == [3] and list(unreach["icmp_code"]) == [3]
    assert frame.loc[frame["result"] != "unreach", "icmp_type"].isna().all()
    success = frame["result"] == "success"
    assert frame.loc[success, "rtt"].notna().all() and frame.loc[~success, "rtt"].isna().all()
    for row, record in zip(frame.itertuples(index=False), records, strict=True):
        assert row.rtt == record.rtt or (record.rtt is None and np.isnan(row.rtt))
        assert row.direction == record.direction and row.filters == record.filters


def test_an_empty_capture_gives_the_same_dtypes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    write_pcap(empty, [])
    assert dtypes(tcpscope.sessions_frame(empty)) == SESSION_DTYPES
    assert dtypes(tcpscope.handshakes_frame(empty, local=LOCAL)) == HANDSHAKE_DTYPES


def test_without_pandas_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now fails
    for frame in (tcpscope.sessions_frame, tcpscope.handshakes_frame):
        with pytest.raises(ImportError, match=r"pip install 'tcpscope\[pandas\]'"):
            frame(SAMPLE, local=LOCAL) if frame is tcpscope.handshakes_frame else frame(SAMPLE)
    # the iterators do not need pandas
    assert list(tcpscope.sessions(SAMPLE, show_all=True))


def test_the_extra_is_declared() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert 'pandas = ["pandas>=' in text
