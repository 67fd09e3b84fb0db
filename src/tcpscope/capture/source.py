"""Where packets come from: a live device or a capture file, read through libpcap.

Both kinds give frames in batches as `(timestamp in integer ns, frame bytes)`,
read with pcapy-ng's `next_batch` (one C call per batch). Live handles are
non-blocking: the caller waits with `wait()` (poll on the capture descriptor,
cut short by any signal) and then drains with `read()`, so a quiet link never
hangs the loop and Ctrl-C acts at once.

Timestamps: libpcap hands every packet over as seconds + microseconds, also
for nanosecond pcap and pcapng files (it scales them down when it opens the
file), so file timestamps are exact to the microsecond.

A file that ends in the middle of a record: libpcap reports it as an error,
and `next_batch` then drops the packets it had already read in that batch. For
files opened by path we reopen the file and read the good packets before the
damage one by one, deliver them, and raise DamagedCapture on the next `read()`,
naming the record: `FILE: truncated at record N` (N counts from 1). A redirected
file on standard input is reread the same way through /proc/self/fd/0; a pipe is
read one packet at a time (cli.runloop), so nothing before the damage is lost.
"""

from __future__ import annotations

import ctypes
import fcntl
import math
import os
import select
import stat
import struct
import tempfile
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import numpy as np
import pcapy

from tcpscope.capture.libpcap import status_message
from tcpscope.capture.readahead import ReadAhead
from tcpscope.errors import CaptureError, DamagedCapture, FilterSyntaxError

if TYPE_CHECKING:
    from tcpscope.decode.columns import Columns
    from tcpscope.track.light import Ahead

Frame = tuple[int, bytes]
_Reader = Any  # pcapy's Reader type (pcapy ships no type information)

_META = struct.Struct("=IIII")  # sec, usec, offset into the batch buffer, captured length
MAX_SNAPLEN = 262144  # what libpcap uses for 0 or oversized snapshot lengths
_PCAP_MAGICS = (0xA1B2C3D4, 0xA1B23C4D, 0xA1B2CD34)  # µs, ns, Kuznetzov's modified
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_IDB = 1
_HEAD_LIMIT = 1 << 18  # read at most this much of a stream to find its snapshot length
_PIPE_DEFAULT = 1 << 16
_F_SETPIPE_SZ = 1031  # Linux
_POLLIN = 0x001
_POLL_WAKE = 0x001 | 0x008 | 0x010 | 0x020  # POLLIN, POLLERR, POLLHUP, POLLNVAL
_FILTER_PREFIX = "can't parse filter expression: "
STDIN_AGAIN = "/proc/self/fd/0"  # a regular file on standard input, opened afresh


class CaptureStats(NamedTuple):
    """libpcap's counters (for files: packets read so far, no drops)."""

    recv: int
    drop: int
    ifdrop: int


class _PollFd(ctypes.Structure):
    _fields_ = (("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short))


def _load_poll() -> Callable[..., int] | None:
    # libc's poll() directly: Python's select.poll retries after a signal whose
    # handler returns (PEP 475), which would delay a Ctrl-C by up to the timeout.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.poll
    except (OSError, AttributeError):
        return None
    func.argtypes = (ctypes.POINTER(_PollFd), ctypes.c_ulong, ctypes.c_int)
    func.restype = ctypes.c_int
    return func


_libc_poll = _load_poll()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _named(name: str, message: str) -> str:
    """A one-line message that starts with the device or file name."""
    message = _one_line(message)
    return message if message.startswith(f"{name}: ") else f"{name}: {message}"


class Capture:
    """An open device or capture file. Build it with `open_file` or `open_live`."""

    name: str
    linktype: int
    snaplen: int
    live: bool

    def __init__(
        self,
        reader: _Reader,
        name: str,
        snaplen: int,
        live: bool,
        reopen_path: str | None = None,
    ) -> None:
        self._reader: _Reader | None = reader
        self.name = name
        self.linktype = int(reader.datalink())
        self.snaplen = snaplen
        self.live = live
        self._fd = int(reader.getfd()) if live else -1
        self._count = 0  # packets read from libpcap (by the read-ahead thread, if any)
        self._delivered = 0  # packets handed out by read_raw
        self._ahead: ReadAhead[RawBatch] | None = None
        self._reopen_path = reopen_path  # a file we may read again after a damaged record
        self._filter = ""
        self._filter_changed_midway = False
        self._pending: CaptureError | None = None
        self._eof = False

    def __repr__(self) -> str:
        kind = "live" if self.live else "file"
        return f"Capture({self.name!r}, {kind}, linktype={self.linktype}, snaplen={self.snaplen})"

    def __enter__(self) -> Capture:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def set_filter(self, expression: str) -> None:
        """Compile and apply a BPF filter (kernel-side for live captures)."""
        reader = self._open_reader()
        try:
            reader.setfilter(expression)
        except pcapy.PcapError as exc:
            reason = _one_line(str(exc))
            reason = reason.removeprefix(_FILTER_PREFIX)
            raise FilterSyntaxError(f"bad filter expression '{expression}': {reason}") from None
        if self._count:
            self._filter_changed_midway = True
        self._filter = expression

    def read(self, max_packets: int = 4096) -> list[Frame] | None:
        """The next batch: [] when nothing is there yet (live), None at end of file."""
        batch = self.read_raw(max_packets)
        return None if batch is None else batch.frames()

    def read_raw(self, max_packets: int = 4096) -> RawBatch | None:
        """The next batch as libpcap gave it (one buffer, one meta record a packet):
        empty when nothing is there yet (live), None at end of file."""
        batch = self._read_once(max_packets) if self._ahead is None else self._ahead.next()
        if batch is not None:
            self._delivered += len(batch)
        return batch

    def read_ahead(
        self, max_packets: int, prepare: Callable[[RawBatch], None] | None = None
    ) -> bool:
        """From now on read the next batch of `max_packets` in a thread while the
        caller works on this one (capture.readahead), and there run `prepare` on
        it: pure work on the batch alone (Engine.prepare). Regular files only,
        and only once; whether it started. `close()` stops it."""
        if self.live or self._ahead is not None or self.file_position() is None:
            return False

        def read() -> RawBatch | None:
            batch = self._read_once(max_packets)
            if batch is not None and prepare is not None:
                prepare(batch)
            return batch

        self._ahead = ReadAhead(read)
        return True

    def _read_once(self, max_packets: int) -> RawBatch | None:
        """One read from the handle (what read_raw gives without reading ahead)."""
        if self._pending is not None:
            error, self._pending = self._pending, None
            self._eof = True
            raise error
        reader = self._reader
        if reader is None or self._eof:
            return None
        if self.live:
            return self._read_live(reader, max_packets)
        try:
            buf, meta = reader.next_batch(max_packets)
        except pcapy.PcapError as exc:
            salvaged = self._after_error(str(exc))
            return None if salvaged is None else RawBatch.of_frames(salvaged)
        if not meta:
            self._eof = True
            return None
        batch = RawBatch(buf, meta)
        self._count += len(batch)
        return batch

    def _read_live(self, reader: _Reader, max_packets: int) -> RawBatch:
        """Every kernel block already there, up to `max_packets`, as one batch.

        On Linux libpcap hands over one ring block (256 KiB, often a few hundred
        packets) per call. The engine's work per batch is mostly fixed, so a tool
        that falls behind would stay behind on small batches; joining the blocks
        that wait makes batches grow with the backlog."""
        parts: list[RawBatch] = []
        total = 0
        while total < max_packets:
            try:
                buf, meta = reader.next_batch(max_packets - total)
            except pcapy.PcapError as exc:
                if not parts:
                    self._after_error(str(exc))  # raises CaptureError live
                break  # deliver what came first; the next read meets the error again
            if not meta:
                break
            parts.append(RawBatch(buf, meta))
            total += len(meta) // _META.size
        batch = RawBatch.joined(parts)
        self._count += total
        return batch

    def wait(self, timeout: float) -> bool:
        """Live: wait until packets can be read (True) or `timeout` s pass or a signal
        arrives (False). Files: True at once."""
        if not self.live:
            return True
        if self._reader is None or self._fd < 0:
            return False
        millis = min(max(0, math.ceil(timeout * 1000)), 2**31 - 1)
        if _libc_poll is None:
            poller = select.poll()
            poller.register(self._fd, select.POLLIN)
            return bool(poller.poll(millis))
        entry = _PollFd(self._fd, _POLLIN, 0)
        ready = _libc_poll(ctypes.byref(entry), 1, millis)
        # -1 is EINTR (a signal: the caller looks at its flags) or a closed descriptor.
        return ready > 0 and bool(entry.revents & _POLL_WAKE)

    def stats(self) -> CaptureStats:
        """Live: libpcap's recv/drop/ifdrop. Files: packets read so far, 0, 0."""
        if not self.live or self._reader is None:
            return CaptureStats(self._delivered, 0, 0)
        try:
            recv, drop, ifdrop = self._reader.stats()
        except pcapy.PcapError as exc:
            raise CaptureError(_named(self.name, str(exc))) from None
        return CaptureStats(int(recv), int(drop), int(ifdrop))

    def set_fanout(self, group: int, type_flags: int) -> None:
        """Linux, live: join this handle's socket to the PACKET_FANOUT group `group`
        (pcapy-ng's set_fanout, a setsockopt on the activated socket; capture.fanout)."""
        try:
            self._open_reader().set_fanout(group, type_flags)
        except pcapy.PcapError as exc:
            reason = exc.args[-1] if exc.args else str(exc)
            message = f"cannot join a fan-out group: {reason}"
            raise CaptureError(_named(self.name, message)) from None

    def fileno(self) -> int:
        """A live handle's socket (-1 for files)."""
        return self._fd

    def file_position(self) -> tuple[int, int] | None:
        """Reading a regular file: (bytes libpcap has read, the file's size), for a
        progress bar; None live or from a pipe. libpcap reads ahead a buffer's worth."""
        if self.live or self._reader is None:
            return None
        try:
            fd = int(self._reader.getfd())
            info = os.fstat(fd)
            if fd < 0 or not stat.S_ISREG(info.st_mode):
                return None
            return os.lseek(fd, 0, os.SEEK_CUR), info.st_size
        except (OSError, pcapy.PcapError):
            return None

    def close(self) -> None:
        """Release the handle (idempotent)."""
        if self._ahead is not None:  # nothing may read from the handle once it is closed
            self._ahead.close()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    # --- internals

    def _open_reader(self) -> _Reader:
        if self._reader is None:
            raise CaptureError(f"{self.name}: capture is closed")
        return self._reader

    def _after_error(self, message: str) -> list[Frame] | None:
        if self.live:
            self._eof = True
            raise CaptureError(_named(self.name, message))
        frames: list[Frame] = []
        if self._reopen_path is not None and not self._filter_changed_midway:
            frames = self._salvage()
        self._count += len(frames)
        error = self._damage(message)
        if not frames:
            self._eof = True
            raise error
        self._pending = error
        return frames

    def _damage(self, message: str) -> DamagedCapture:
        """The one line for a file that failed at its record number N (from 1)."""
        good = self._records_before_damage()
        if good is None:  # a stream we cannot reread: what the filter let through
            where = (
                f"after {self._count} packets" if self._filter else f"at record {self._count + 1}"
            )
        else:
            where = f"at record {good + 1}"
        if message.startswith("truncated"):
            return DamagedCapture(f"{self.name}: truncated {where}")
        return DamagedCapture(_named(self.name, f"{_one_line(message)} ({where})"))

    def _records_before_damage(self) -> int | None:
        """How many records the file holds before the damaged one (no filter applied)."""
        if self._reopen_path is None:
            return None if self._filter else self._count
        whole = self._count_records(4096, 0)  # whole batches before the failing one
        if whole is None:
            return None
        return self._count_records(1, whole)

    def _count_records(self, per_read: int, skip: int) -> int | None:
        """Records read `per_read` at a time (after skipping `skip`) until the end or
        an error, where next_batch drops the batch it was reading."""
        assert self._reopen_path is not None
        count = 0
        try:
            reader = pcapy.open_offline(self._reopen_path)
        except pcapy.PcapError:
            return None
        try:
            while skip > count:
                _, meta = reader.next_batch(min(skip - count, 4096))
                if not meta:
                    return count
                count += len(meta) // _META.size
            while True:
                _, meta = reader.next_batch(per_read)
                if not meta:
                    break
                count += len(meta) // _META.size
        except pcapy.PcapError:
            pass
        finally:
            reader.close()
        return count

    def _salvage(self) -> list[Frame]:
        """Reread the file and return the good packets of the batch that failed."""
        assert self._reopen_path is not None
        frames: list[Frame] = []
        try:
            reader = pcapy.open_offline(self._reopen_path)
        except pcapy.PcapError:
            return frames
        try:
            if self._filter:
                reader.setfilter(self._filter)
            to_skip = self._count
            while to_skip > 0:
                _, meta = reader.next_batch(min(to_skip, 4096))
                if not meta:
                    return frames
                to_skip -= len(meta) // _META.size
            while True:
                buf, meta = reader.next_batch(1)
                if not meta:
                    break
                frames.extend(_frames(buf, meta))
        except pcapy.PcapError:
            pass  # reached the damaged record
        finally:
            reader.close()
        return frames


class RawBatch:
    """One `next_batch`: every packet's bytes in `buf`, and per packet a 16-byte
    native record (seconds, microseconds, offset in buf, captured length) in `meta`.
    `columns`: the batch's decode.columns once the reading thread has worked them
    out (Capture.read_ahead's `prepare`), else None; `ahead` likewise, what the
    light handshakes' plan takes from there when `prepare` found it worth it."""

    __slots__ = ("buf", "meta", "columns", "ahead")

    def __init__(self, buf: bytes, meta: bytes) -> None:
        self.buf = buf
        self.meta = meta
        self.columns: Columns | None = None
        self.ahead: Ahead | None = None

    def __len__(self) -> int:
        return len(self.meta) // _META.size

    def frames(self) -> list[Frame]:
        return _frames(self.buf, self.meta)

    @classmethod
    def joined(cls, parts: list[RawBatch]) -> RawBatch:
        """Several batches as one, in order (their offsets moved along)."""
        if len(parts) <= 1:
            return parts[0] if parts else cls(b"", b"")
        metas, base = [], 0
        for part in parts:
            records = np.frombuffer(part.meta, dtype=np.uint32).reshape(-1, 4).copy()
            records[:, 2] += base  # the offset field of _META
            metas.append(records)
            base += len(part.buf)
        return cls(b"".join(part.buf for part in parts), np.concatenate(metas).tobytes())

    @classmethod
    def of_frames(cls, frames: list[Frame]) -> RawBatch:
        """The same layout built from separate frames (the rare salvage path)."""
        parts, records, offset = [], [], 0
        for ts, data in frames:
            sec, nanos = divmod(ts, 1_000_000_000)
            records.append(_META.pack(sec, nanos // 1000, offset, len(data)))
            parts.append(data)
            offset += len(data)
        return cls(b"".join(parts), b"".join(records))


def _frames(buf: bytes, meta: bytes) -> list[Frame]:
    return [
        (sec * 1_000_000_000 + usec * 1000, buf[offset : offset + caplen])
        for sec, usec, offset, caplen in _META.iter_unpack(meta)
    ]


# --- capture files


def _file_snaplen(head: bytes) -> int | None:
    """The snapshot length in a capture file's first bytes.

    None: more bytes are needed; 0: not a format we can read it from (libpcap decides).
    """
    if len(head) < 4:
        return None
    for order in "<>":
        (magic,) = struct.unpack_from(order + "I", head)
        if magic in _PCAP_MAGICS:
            if len(head) < 24:
                return None
            (snaplen,) = struct.unpack_from(order + "I", head, 16)
            return _sane_snaplen(snaplen)
    if struct.unpack_from("<I", head)[0] != _PCAPNG_SHB:
        return 0
    if len(head) < 12:
        return None
    byte_order = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}.get(head[8:12])
    if byte_order is None:
        return 0
    pos = 0
    while True:
        if pos + 16 > len(head):
            return None
        block_type, block_len = struct.unpack_from(byte_order + "II", head, pos)
        if block_type == _PCAPNG_IDB:
            if pos + block_len > len(head):
                return None  # libpcap reads the whole block when it opens the file
            (snaplen,) = struct.unpack_from(byte_order + "I", head, pos + 12)
            return _sane_snaplen(snaplen)
        if block_len < 12 or block_len % 4:
            return 0
        pos += block_len


def _sane_snaplen(snaplen: int) -> int:
    return MAX_SNAPLEN if snaplen <= 0 or snaplen > MAX_SNAPLEN else snaplen


def _read_head(read: Callable[[int], bytes]) -> bytes:
    """Read (with read(n) -> bytes) until the snapshot length can be told."""
    head = b""
    while _file_snaplen(head) is None and len(head) < _HEAD_LIMIT:
        chunk = read(max(24, len(head)))
        if not chunk:
            break
        head += chunk
    return head


def _pump(source_fd: int, sink_fd: int) -> None:
    """Copy everything from source_fd into sink_fd; close sink_fd at the end."""
    try:
        while chunk := os.read(source_fd, 1 << 16):
            _write_all(sink_fd, chunk)
    except OSError:
        pass  # the capture was closed early (EPIPE) or stdin failed: stop copying
    finally:
        os.close(sink_fd)


def _stream_through_pipe(head: bytes, source_fd: int = 0) -> _Reader:
    """libpcap reading `head` and then the rest of `source_fd` (standard input), through a pipe.

    pcapy holds the GIL while libpcap opens the file, and opening a pipe by its
    /dev/fd name blocks while the pipe has no writer. So the whole header goes
    into the pipe first, libpcap opens it while we still hold the write end, and
    only then does a thread copy the rest of the stream (closing the write end
    when standard input ends).
    """
    read_end, write_end = os.pipe()
    try:
        if len(head) > _PIPE_DEFAULT:
            fcntl.fcntl(write_end, _F_SETPIPE_SZ, len(head))
        _write_all(write_end, head)
        reader = pcapy.open_offline(f"/dev/fd/{read_end}")
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)  # libpcap opened its own descriptor of the pipe
    threading.Thread(
        target=_pump, args=(source_fd, write_end), name="tcpscope-stream", daemon=True
    ).start()
    return reader


def _open_in_memory(data: bytes) -> _Reader:
    """libpcap on a stream that already ended (inside its header): a memory file."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("tcpscope-stdin")
    else:  # pragma: no cover - not Linux
        handle = tempfile.TemporaryFile()
        fd = os.dup(handle.fileno())
        handle.close()
    try:
        _write_all(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        return pcapy.open_offline(f"/dev/fd/{fd}")
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _open_stdin() -> tuple[_Reader, int, bool]:
    """libpcap on standard input, the snapshot length from the stream's header, and
    whether it is a whole regular file (one that can be reread from its start)."""
    mode = os.fstat(0).st_mode
    if stat.S_ISREG(mode):
        # A redirected file: peek with pread, which leaves libpcap's position alone.
        offset = os.lseek(0, 0, os.SEEK_CUR)

        def peek(n: int) -> bytes:
            nonlocal offset
            data = os.pread(0, n, offset)
            offset += len(data)
            return data

        head = _read_head(peek)
        return pcapy.open_offline("-"), _file_snaplen(head) or 0, offset == len(head)
    # A pipe or terminal cannot be peeked at: read the header ourselves and hand
    # libpcap the header and then the rest of the stream.
    head = _read_head(lambda n: os.read(0, n))
    snaplen = _file_snaplen(head)
    if snaplen is not None:
        return _stream_through_pipe(head), snaplen, False
    if len(head) >= _HEAD_LIMIT:
        raise CaptureError(f"-: no pcapng interface description in the first {_HEAD_LIMIT} bytes")
    return _open_in_memory(head), 0, False  # the stream ended inside its header: libpcap says why


def open_file(path: str) -> Capture:
    """Open a pcap or pcapng capture file ("-" = standard input)."""
    try:
        if path == "-":
            reader, snaplen, whole_file = _open_stdin()
            reopen = STDIN_AGAIN if whole_file else None
            return Capture(reader, "-", snaplen or MAX_SNAPLEN, live=False, reopen_path=reopen)
        if os.path.isdir(path):
            raise CaptureError(f"{path}: is a directory, not a capture file")
        reader = pcapy.open_offline(path)
        with open(path, "rb") as stream:
            snaplen = _file_snaplen(_read_head(stream.read)) or MAX_SNAPLEN
        return Capture(reader, path, snaplen, live=False, reopen_path=path)
    except pcapy.PcapError as exc:
        message = str(exc)
        if path == "-" and message.startswith("/dev/fd/"):
            message = message.split(": ", 1)[-1]
        raise CaptureError(_named(path, message)) from None
    except OSError as exc:
        raise CaptureError(_named(path, exc.strerror or str(exc))) from None


def open_stream(stream: BinaryIO, name: str = "<stream>") -> Capture:
    """Open a capture from an open binary file object.

    A regular file is read by libpcap from its start (it must not have been read
    from); a pipe or socket is streamed as it comes; an object without a file
    descriptor (io.BytesIO) is read whole first.
    """
    fd = _fileno(stream)
    try:
        if fd is not None:
            mode = os.fstat(fd).st_mode
            if stat.S_ISREG(mode) and os.lseek(fd, 0, os.SEEK_CUR) == 0:
                path = f"/proc/self/fd/{fd}"
                reader = pcapy.open_offline(path)
                head = _read_head(_peeker(fd))
                size = _file_snaplen(head) or MAX_SNAPLEN
                return Capture(reader, name, size, live=False, reopen_path=path)
            if not stat.S_ISREG(mode):
                head = _read_head(lambda n: os.read(fd, n))
                streamed = _file_snaplen(head)
                if streamed is not None:
                    return Capture(_stream_through_pipe(head, fd), name, streamed, live=False)
                return Capture(_open_in_memory(head), name, MAX_SNAPLEN, live=False)
        data = stream.read()
        if not isinstance(data, bytes):
            raise CaptureError(f"{name}: not a binary file (read() gave {type(data).__name__})")
        return Capture(_open_in_memory(data), name, _file_snaplen(data) or MAX_SNAPLEN, live=False)
    except pcapy.PcapError as exc:
        message = str(exc)
        if message.startswith(("/dev/fd/", "/proc/self/fd/")):
            message = message.split(": ", 1)[-1]
        raise CaptureError(_named(name, message)) from None
    except OSError as exc:
        raise CaptureError(_named(name, exc.strerror or str(exc))) from None


def _peeker(fd: int) -> Callable[[int], bytes]:
    """read(n) for _read_head on a regular file, leaving its offset alone."""
    offset = os.lseek(fd, 0, os.SEEK_CUR)

    def peek(n: int) -> bytes:
        nonlocal offset
        data = os.pread(fd, n, offset)
        offset += len(data)
        return data

    return peek


def _fileno(stream: BinaryIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None  # io.BytesIO and friends: io.UnsupportedOperation is an OSError


# --- live devices


# The kernel ring a live capture gets unless told (tcpeek -B). libpcap's own
# default, 2 MB, is 8 blocks of 256 KiB on Linux: a block is handed over when full
# or when the read timeout passes, so at 300,000 packets/s 2 MB holds 14 ms of
# miruo's traffic and (1 ms timeout) 8 ms of tcpeek's, less than one garbage
# collection or a busy neighbour on the CPU. 64 MB rides out ~0.4 s and ~0.25 s.
LIVE_BUFFER_MB = 64


def open_live(
    device: str,
    snaplen: int,
    promisc: bool,
    timeout_ms: int,
    buffer_mb: int | None = None,
) -> Capture:
    """Open a device for live capture, in non-blocking mode (kernel buffer
    `buffer_mb` MB, default LIVE_BUFFER_MB)."""
    try:
        reader = pcapy.create(device)
        reader.set_snaplen(snaplen)
        reader.set_promisc(1 if promisc else 0)
        reader.set_timeout(timeout_ms)
        reader.set_buffer_size((LIVE_BUFFER_MB if buffer_mb is None else buffer_mb) << 20)
        status = int(reader.activate())
        if status < 0:
            reader.close()
            raise CaptureError(_activation_failure(device, snaplen, promisc, timeout_ms, status))
        reader.setnonblock(1)
    except pcapy.PcapError as exc:
        raise CaptureError(_named(device, str(exc))) from None
    return Capture(reader, device, _sane_snaplen(snaplen), live=True)


def _activation_failure(
    device: str, snaplen: int, promisc: bool, timeout_ms: int, status: int
) -> str:
    """libpcap's own words for why activation failed.

    pcapy does not expose pcap_geterr() after activate(); pcap_open_live() puts
    the full reason (with the failing system call) into its exception, so ask it.
    """
    try:
        probe = pcapy.open_live(device, snaplen, promisc, timeout_ms)
    except pcapy.PcapError as exc:
        return _named(device, str(exc))
    probe.close()
    return _named(device, status_message(status))
