"""Write tiny capture files for tests: classic pcap and pcapng, either byte order.

Frames are `(timestamp in integer nanoseconds since the epoch, frame bytes)`.
Every frame is written whole (captured length == wire length) unless it is
longer than `snaplen` (pcap only), in which case it is cut and the wire length
keeps the original size, as a capturing tool would record it.

    write_pcap(path, frames, linktype=1, byteorder="<", nanos=False, snaplen=65535)
    write_pcapng(path, frames, linktype=1, byteorder="<", tsresol=6)

`byteorder` is a `struct` prefix: "<" little-endian, ">" big-endian.
`tsresol` is the pcapng `if_tsresol` exponent (6 = µs, 9 = ns, 3 = ms).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

Frame = tuple[int, bytes]

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_IDB = 0x00000001
PCAPNG_EPB = 0x00000006
OPT_ENDOFOPT = 0
IF_TSRESOL = 9


def pcap_bytes(
    frames: Sequence[Frame],
    linktype: int = 1,
    byteorder: str = "<",
    nanos: bool = False,
    snaplen: int = 65535,
) -> bytes:
    """The bytes of a classic pcap file holding `frames`."""
    magic = PCAP_MAGIC_NS if nanos else PCAP_MAGIC_US
    out = [struct.pack(byteorder + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    record = struct.Struct(byteorder + "IIII")
    for ts, data in frames:
        sec, frac = divmod(ts, 1_000_000_000)
        if not nanos:
            frac //= 1000
        caplen = min(len(data), snaplen)
        out.append(record.pack(sec, frac, caplen, len(data)))
        out.append(data[:caplen])
    return b"".join(out)


def write_pcap(
    path: str | Path,
    frames: Sequence[Frame],
    linktype: int = 1,
    byteorder: str = "<",
    nanos: bool = False,
    snaplen: int = 65535,
) -> None:
    """Write `frames` as a classic pcap file (µs or ns timestamps)."""
    Path(path).write_bytes(pcap_bytes(frames, linktype, byteorder, nanos, snaplen))


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _block(byteorder: str, block_type: int, body: bytes) -> bytes:
    """A pcapng block: type, total length, body (padded), total length again."""
    body = _pad4(body)
    total = 12 + len(body)
    return (
        struct.pack(byteorder + "II", block_type, total)
        + body
        + struct.pack(byteorder + "I", total)
    )


def _option(byteorder: str, code: int, value: bytes) -> bytes:
    return struct.pack(byteorder + "HH", code, len(value)) + _pad4(value)


def pcapng_bytes(
    frames: Sequence[Frame],
    linktype: int = 1,
    byteorder: str = "<",
    tsresol: int = 6,
) -> bytes:
    """The bytes of a pcapng file: one section, one interface, one EPB per frame."""
    # Section length -1: "not specified", which every reader accepts.
    shb = struct.pack(byteorder + "IHHq", PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1)
    options = _option(byteorder, IF_TSRESOL, bytes([tsresol])) + _option(
        byteorder, OPT_ENDOFOPT, b""
    )
    idb = struct.pack(byteorder + "HHI", linktype, 0, 0) + options
    out = [_block(byteorder, PCAPNG_SHB, shb), _block(byteorder, PCAPNG_IDB, idb)]
    units_per_second = 10**tsresol
    for ts, data in frames:
        units = ts * units_per_second // 1_000_000_000
        epb = struct.pack(
            byteorder + "IIIII", 0, units >> 32, units & 0xFFFFFFFF, len(data), len(data)
        )
        out.append(_block(byteorder, PCAPNG_EPB, epb + data))
    return b"".join(out)


def write_pcapng(
    path: str | Path,
    frames: Sequence[Frame],
    linktype: int = 1,
    byteorder: str = "<",
    tsresol: int = 6,
) -> None:
    """Write `frames` as a pcapng file with the given timestamp resolution (10**-tsresol s)."""
    Path(path).write_bytes(pcapng_bytes(frames, linktype, byteorder, tsresol))
