"""Reading capture files: formats, byte orders, resolutions, batches, stdin, damage."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tcpscope.capture import Capture, CaptureStats, open_file
from tcpscope.errors import CaptureError, TcpscopeError
from tests.capture.frames import tcp4, tcp6, udp4
from tests.support.pcapwrite import pcap_bytes, pcapng_bytes, write_pcap, write_pcapng

# Sub-microsecond digits on purpose: they show what survives each resolution.
FRAMES = [
    (1_700_000_000_123_456_789, tcp4("198.18.0.1", "198.18.0.2", 40000, 80)),
    (1_700_000_000_500_000_001, tcp4("198.18.0.2", "198.18.0.1", 80, 40000, flags=0x12)),
    (1_700_000_001_000_999_999, udp4("198.18.0.1", "198.18.0.2", 5353, 53, b"q")),
    # after 2038: seconds above 2**31 must not wrap
    (4_000_000_000_999_999_999, tcp6("fd00::1", "fd00::2", 40001, 443, payload=b"x" * 100)),
]


def to_micros(ts: int) -> int:
    """A nanosecond timestamp cut to whole microseconds (what libpcap delivers)."""
    return ts // 1000 * 1000


def read_all(cap: Capture, max_packets: int = 4096) -> list[tuple[int, bytes]]:
    frames: list[tuple[int, bytes]] = []
    while (batch := cap.read(max_packets)) is not None:
        assert batch, "a file never yields an empty batch before its end"
        frames.extend(batch)
    return frames


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, byteorder: str, nanos: bool) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(path, FRAMES, byteorder=byteorder, nanos=nanos, snaplen=1522)
    with open_file(str(path)) as cap:
        assert cap.name == str(path)
        assert cap.live is False
        assert cap.linktype == 1
        assert cap.snaplen == 1522
        got = read_all(cap)
    assert got == [(to_micros(ts), data) for ts, data in FRAMES]


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize(
    ("tsresol", "unit_ns"),
    [(6, 1000), (9, 1000), (3, 1_000_000)],  # ns files come out at µs too
)
def test_pcapng_byte_orders_and_resolutions(
    tmp_path: Path, byteorder: str, tsresol: int, unit_ns: int
) -> None:
    path = tmp_path / "x.pcapng"
    write_pcapng(path, FRAMES, byteorder=byteorder, tsresol=tsresol)
    with open_file(str(path)) as cap:
        assert cap.linktype == 1
        assert cap.snaplen == 262144  # the IDB says 0: "no limit"
        got = read_all(cap)
    assert got == [(ts // unit_ns * unit_ns, data) for ts, data in FRAMES]


@pytest.mark.parametrize("linktype", [0, 113, 276, 228, 229])
def test_link_type_is_passed_through(tmp_path: Path, linktype: int) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(path, [(10**18, b"\x45" + bytes(39))], linktype=linktype)
    with open_file(str(path)) as cap:
        assert cap.linktype == linktype


def test_raw_ip_link_type_comes_out_as_dlt_raw(tmp_path: Path) -> None:
    # LINKTYPE_RAW (101) in files is DLT_RAW, which is 12 on Linux and most systems.
    path = tmp_path / "x.pcap"
    write_pcap(path, [(10**18, b"\x45" + bytes(39))], linktype=101)
    with open_file(str(path)) as cap:
        assert cap.linktype in (12, 14)


def test_frames_longer_than_snaplen_are_cut(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(path, FRAMES, snaplen=60)
    with open_file(str(path)) as cap:
        assert cap.snaplen == 60
        got = read_all(cap)
    assert [data for _, data in got] == [data[:60] for _, data in FRAMES]


def test_batches_end_and_stats(tmp_path: Path) -> None:
    frames = [
        (1_000_000_000 * (i + 1), tcp4("198.18.0.1", "198.18.0.2", 1000 + i, 80)) for i in range(10)
    ]
    path = tmp_path / "x.pcap"
    write_pcap(path, frames)
    cap = open_file(str(path))
    assert cap.stats() == CaptureStats(0, 0, 0)
    sizes = []
    while (batch := cap.read(3)) is not None:
        sizes.append(len(batch))
    assert sizes == [3, 3, 3, 1]
    assert cap.read() is None  # stays at the end
    assert cap.stats() == CaptureStats(recv=10, drop=0, ifdrop=0)
    assert cap.wait(10.0) is True  # files never make the caller wait
    cap.close()
    cap.close()  # idempotent
    assert cap.read() is None


def test_empty_capture_file_is_just_the_end(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(path, [])
    with open_file(str(path)) as cap:
        assert cap.read() is None


STDIN_READER = textwrap.dedent(
    """
    import json, sys
    from tcpscope.capture import open_file
    from tcpscope.errors import CaptureError
    try:
        cap = open_file("-")
        frames = []
        while (batch := cap.read(2)) is not None:
            frames += [[ts, data.hex()] for ts, data in batch]
    except CaptureError as exc:
        print(exc, file=sys.stderr)
        sys.exit(3)
    print(json.dumps({"name": cap.name, "snaplen": cap.snaplen, "linktype": cap.linktype,
                      "frames": frames, "recv": cap.stats().recv}))
    """
)


def run_stdin_reader(
    data: bytes, tmp_path: Path, via_pipe: bool
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", STDIN_READER]
    if via_pipe:
        return _run_pipe(command, data)
    source = tmp_path / "stdin.bin"
    source.write_bytes(data)
    with source.open("rb") as stdin:
        return subprocess.run(
            command, stdin=stdin, capture_output=True, text=True, timeout=60, check=False
        )


def _run_pipe(command: list[str], data: bytes) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = proc.communicate(data, timeout=60)
    return subprocess.CompletedProcess(command, proc.returncode, out.decode(), err.decode())


@pytest.mark.parametrize("via_pipe", [False, True], ids=["redirect", "pipe"])
@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_stdin(tmp_path: Path, kind: str, via_pipe: bool) -> None:
    if kind == "pcap":
        data, snaplen = pcap_bytes(FRAMES, byteorder=">", snaplen=1522), 1522
    else:
        data, snaplen = pcapng_bytes(FRAMES, tsresol=9), 262144
    done = run_stdin_reader(data, tmp_path, via_pipe)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["name"] == "-"
    assert result["snaplen"] == snaplen
    assert result["linktype"] == 1
    assert result["recv"] == len(FRAMES)
    assert result["frames"] == [[to_micros(ts), data.hex()] for ts, data in FRAMES]


@pytest.mark.parametrize("via_pipe", [False, True], ids=["redirect", "pipe"])
@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_stdin_with_no_packets(tmp_path: Path, kind: str, via_pipe: bool) -> None:
    # The stream ends right after its header: no hang, just an empty capture.
    data = pcap_bytes([]) if kind == "pcap" else pcapng_bytes([])
    done = run_stdin_reader(data, tmp_path, via_pipe)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["frames"] == []


@pytest.mark.parametrize("via_pipe", [False, True], ids=["redirect", "pipe"])
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated"),  # ends inside the pcap header
        (b"this is not a capture file at all", "unknown file format"),
    ],
)
def test_stdin_not_a_capture(tmp_path: Path, via_pipe: bool, data: bytes, reason: str) -> None:
    done = run_stdin_reader(data, tmp_path, via_pipe)
    assert done.returncode == 3
    message = done.stderr.strip()
    assert message.startswith("-: ")
    assert reason in message
    assert "\n" not in message


def assert_one_line_error(path: str, exc: CaptureError, *words: str) -> None:
    message = str(exc)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    for word in words:
        assert word in message.lower(), message


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.pcap")
    with pytest.raises(CaptureError) as info:
        open_file(path)
    assert_one_line_error(path, info.value, "no such file")
    assert isinstance(info.value, TcpscopeError)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as info:
        open_file(str(tmp_path))
    assert_one_line_error(str(tmp_path), info.value, "directory")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ("truncated",)),
        (b"GIF89a and then some more bytes to fill a header", ("unknown file format",)),
        (pcap_bytes([])[:10], ("truncated",)),
    ],
    ids=["empty", "not-a-capture", "short-header"],
)
def test_not_a_capture_file(tmp_path: Path, content: bytes, words: tuple[str, ...]) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError) as info:
        open_file(str(path))
    assert_one_line_error(str(path), info.value, *words)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.pcap"
    write_pcap(path, FRAMES)
    path.chmod(0)
    # Root reads anything; without capabilities (as root or not) the mode counts.
    code = textwrap.dedent(
        f"""
        import ctypes, sys
        libc = ctypes.CDLL(None, use_errno=True)
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)
        if libc.capset(header, (ctypes.c_uint32 * 6)()) != 0:
            sys.exit(4)
        from tcpscope.capture import open_file
        from tcpscope.errors import CaptureError
        try:
            open_file({str(path)!r})
        except CaptureError as exc:
            print(exc)
            sys.exit(3)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 3, done.stderr
    message = done.stdout.strip()
    assert message.startswith(f"{path}: ")
    assert "permission denied" in message.lower()


def test_damaged_last_record_keeps_the_good_packets(tmp_path: Path) -> None:
    # 5000 packets, the last one cut short: the failing batch of 4096 must not be lost.
    frames = [
        (
            1_600_000_000_000_000_000 + i * 1000,
            tcp4("198.18.0.1", "198.18.0.2", 1024 + i % 60000, 80),
        )
        for i in range(5000)
    ]
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_bytes(frames)[:-5])
    cap = open_file(str(path))
    got: list[tuple[int, bytes]] = []
    with pytest.raises(CaptureError) as info:
        while (batch := cap.read(4096)) is not None:
            got.extend(batch)
    assert_one_line_error(str(path), info.value, "truncated")
    assert got == frames[:-1]
    assert cap.stats().recv == 4999
    assert cap.read() is None  # the error is reported once, then it is the end


def test_damaged_record_header(tmp_path: Path) -> None:
    data = pcap_bytes(FRAMES)
    path = tmp_path / "cut.pcap"
    path.write_bytes(data + b"\x01\x02\x03")  # 3 bytes of a 16-byte record header
    cap = open_file(str(path))
    first = cap.read()
    assert first == [(to_micros(ts), frame) for ts, frame in FRAMES]
    with pytest.raises(CaptureError) as info:
        cap.read()
    assert_one_line_error(str(path), info.value, "truncated")


def test_damage_in_the_first_packet(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_bytes(FRAMES[:1])[:-1])
    cap = open_file(str(path))
    with pytest.raises(CaptureError):
        cap.read()
    assert cap.read() is None


def test_read_raw_is_the_same_packets(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(path, FRAMES)
    with open_file(str(path)) as cap:
        batch = cap.read_raw(3)
        assert batch is not None and len(batch) == 3
        rest = cap.read_raw()
        assert rest is not None and len(rest) == 1
        assert cap.read_raw() is None
        assert batch.frames() + rest.frames() == [(to_micros(ts), data) for ts, data in FRAMES]
        assert cap.stats().recv == 4


def test_read_raw_salvages_too(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_bytes(FRAMES)[:-5])
    with open_file(str(path)) as cap:
        batch = cap.read_raw()
        assert batch is not None
        assert batch.frames() == [(to_micros(ts), data) for ts, data in FRAMES[:-1]]
        with pytest.raises(CaptureError):
            cap.read_raw()
