"""open_stream: captures from open binary file objects (regular files, pipes, BytesIO)."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from tcpscope.capture import open_stream
from tcpscope.errors import CaptureError
from tests.capture.test_files import FRAMES, read_all, to_micros
from tests.support.pcapwrite import pcap_bytes, pcapng_bytes

EXPECTED = [(to_micros(ts), frame) for ts, frame in FRAMES]


@pytest.mark.parametrize("make", [pcap_bytes, pcapng_bytes])
def test_bytesio_regular_file_and_pipe(make: object, tmp_path: Path) -> None:
    data = make(FRAMES)  # type: ignore[operator]
    cap = open_stream(io.BytesIO(data))
    assert (read_all(cap), cap.name, cap.live) == (EXPECTED, "<stream>", False)
    path = tmp_path / "x.cap"
    path.write_bytes(data)
    with open(path, "rb") as handle:
        cap = open_stream(handle, str(path))
        assert read_all(cap) == EXPECTED and cap.snaplen > 0
        cap.close()
    read_end, write_end = os.pipe()
    writer = threading.Thread(target=lambda: os.write(write_end, data) and os.close(write_end))
    writer.start()
    with os.fdopen(read_end, "rb") as pipe:
        assert read_all(open_stream(pipe)) == EXPECTED
    writer.join(10)


def test_a_file_already_read_from_is_read_from_where_it_is(tmp_path: Path) -> None:
    path = tmp_path / "two.pcap"
    data = pcap_bytes(FRAMES)
    path.write_bytes(b"junk" + data)
    with open(path, "rb") as handle:
        handle.seek(4)
        assert read_all(open_stream(handle)) == EXPECTED


@pytest.mark.parametrize(
    "stream", [io.BytesIO(b"not a capture file at all"), io.BytesIO(b""), io.StringIO("text")]
)
def test_bad_streams_are_one_capture_error(stream: io.IOBase) -> None:
    with pytest.raises(CaptureError) as raised:
        open_stream(stream)  # type: ignore[arg-type]
    assert str(raised.value).startswith("<stream>: ") and "\n" not in str(raised.value)
