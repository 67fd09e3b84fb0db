#!/usr/bin/env python3
"""Write a deterministic SYN-flood capture: tcpeek's worst case, every packet a
new handshake that nobody answers.

    python bench/synflood.py --packets 1000000 --rate 50000 -o bench/out/synflood.pcap

SYNs at a steady `--rate` per second from random sources in 198.18.0.0/15
(random ports and ISNs, Linux's SYN options) to one server, TARGET:80, which
tcpeek is told is local (`--local TARGET`). Classic pcap, Ethernet, µs
timestamps, valid checksums; one `random.Random(seed)` decides everything, and
the capture starts at a fixed epoch, so the same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import sys

EPOCH_US = 1_700_000_000 * 1_000_000
TARGET = "198.19.255.1"
TARGET_INT = 0xC613FF01
TARGET_PORT = 80
SOURCE_NET, SOURCE_BITS = 0xC6120000, 17  # 198.18.0.0/15
WRITE_EVERY = 32_768

PCAP_HEADER = struct.Struct("<IHHiIII")
PCAP_RECORD = struct.Struct("<IIII")
ETHERNET = bytes.fromhex("020000000002" "020000000001" "0800")
# mss 1460, sackOK, timestamp (TSval patched in), nop, wscale 7
SYN_OPTIONS = bytes.fromhex("020405b40402080a") + bytes(8) + bytes.fromhex("01030307")
IPV4 = struct.Struct("!BBHHHBBH4s4s")
TCP = struct.Struct("!HHIIBBHHH")


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _words(data: bytes) -> int:
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def syn_frame(src: int, sport: int, isn: int, tsval: int, ident: int) -> bytes:
    options = SYN_OPTIONS[:8] + struct.pack("!II", tsval, 0) + SYN_OPTIONS[16:]
    tcp_len = 20 + len(options)
    s, d = src.to_bytes(4, "big"), TARGET_INT.to_bytes(4, "big")
    header = TCP.pack(sport, TARGET_PORT, isn, 0, (tcp_len // 4) << 4, 0x02, 64240, 0, 0)
    pseudo = s + d + struct.pack("!BBH", 0, 6, tcp_len)
    check = 0xFFFF - _fold(_words(pseudo + header + options))
    tcp = header[:16] + struct.pack("!H", check) + header[18:] + options
    ip = IPV4.pack(0x45, 0, 20 + tcp_len, ident, 0x4000, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack("!H", 0xFFFF - _fold(_words(ip))) + ip[12:]
    return ETHERNET + ip + tcp


def generate(path: str, packets: int, rate: int, seed: int) -> None:
    rng = random.Random(seed)
    step_us = 1_000_000 / rate
    partial = path + ".part"  # renamed at the end: no half-written file under the name
    with open(partial, "wb") as out:
        out.write(PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        parts: list[bytes] = []
        for n in range(packets):
            src = SOURCE_NET | rng.getrandbits(SOURCE_BITS)
            if src == TARGET_INT:
                src ^= 1
            frame = syn_frame(
                src, rng.randrange(1024, 65536), rng.getrandbits(32), rng.getrandbits(32),
                n & 0xFFFF,
            )  # fmt: skip
            t = EPOCH_US + int(n * step_us)
            parts.append(PCAP_RECORD.pack(t // 1_000_000, t % 1_000_000, len(frame), len(frame)))
            parts.append(frame)
            if len(parts) >= 2 * WRITE_EVERY:
                out.write(b"".join(parts))
                parts.clear()
        out.write(b"".join(parts))
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a deterministic SYN-flood pcap.")
    parser.add_argument("--packets", type=int, default=1_000_000, help="SYNs (default 1000000)")
    parser.add_argument("--rate", type=int, default=50_000, help="SYNs a second (default 50000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("-o", "--output", required=True, help="pcap file to write")
    args = parser.parse_args(argv)
    if args.packets < 0 or args.rate < 1:
        parser.error("--packets must be >= 0 and --rate >= 1")
    directory = os.path.dirname(args.output)
    if directory:
        os.makedirs(directory, exist_ok=True)
    generate(args.output, args.packets, args.rate, args.seed)
    seconds = args.packets / args.rate
    sys.stderr.write(
        f"synflood: {args.output}: {args.packets} SYNs to {TARGET}:{TARGET_PORT} "
        f"over {seconds:.1f} s\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
