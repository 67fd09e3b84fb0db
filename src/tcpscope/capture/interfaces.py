"""Which device to capture on by default, and the addresses of a device.

Addresses come from one rtnetlink dump (RTM_GETADDR), which lists every IPv4
address (secondaries too) and every IPv6 address of the namespace the calling
thread is in; no external tool and no extra dependency. Interface flags come
from the SIOCGIFFLAGS ioctl. Both are Linux interfaces; elsewhere
`interface_addresses` raises CaptureError and `default_device` only skips
names that look like loopback.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import sys

import pcapy

from tcpscope.errors import CaptureError

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
SIOCGIFFLAGS = 0x8913  # Linux

NETLINK_ROUTE = 0
RTM_NEWADDR = 20
RTM_GETADDR = 22
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
IFA_ADDRESS = 1
IFA_LOCAL = 2

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, interface index
_RTATTR = struct.Struct("=HH")  # length, type
_IFREQ_FLAGS = struct.Struct("16sH")


def _align4(n: int) -> int:
    return (n + 3) & ~3


def interface_flags(device: str) -> int | None:
    """The interface's IFF_* flags, or None when it is not a network interface here."""
    if not sys.platform.startswith("linux"):
        return None
    request = struct.pack("16s24x", device.encode()[:15])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            answer = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request)
    except OSError:
        return None
    _, flags = _IFREQ_FLAGS.unpack_from(answer)
    return int(flags)


def default_device() -> str:
    """The first device libpcap lists that is up and neither loopback nor `any`."""
    try:
        names: list[str] = pcapy.findalldevs()
    except pcapy.PcapError as exc:
        raise CaptureError(f"cannot list capture devices: {exc}") from None
    for name in names:
        if name == "any":
            continue
        flags = interface_flags(name)
        if flags is None:
            # Not a kernel interface (nflog, usbmon, ...) or flags unknown on this OS.
            if sys.platform.startswith("linux") or name.startswith("lo"):
                continue
            return name
        if flags & IFF_UP and not flags & IFF_LOOPBACK:
            return name
    raise CaptureError("no capture device is up (name one with -i)")


def _dump_addresses() -> list[tuple[int, int, bytes]]:
    """(interface index, address family, packed address) for every address, in kernel order."""
    request = _NLMSGHDR.pack(
        _NLMSGHDR.size + _IFADDRMSG.size, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0
    ) + _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    found: list[tuple[int, int, bytes]] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as sock:
        sock.settimeout(5.0)
        sock.sendto(request, (0, 0))
        while True:
            data = sock.recv(1 << 16)
            pos = 0
            while pos + _NLMSGHDR.size <= len(data):
                length, kind, _, _, _ = _NLMSGHDR.unpack_from(data, pos)
                if length < _NLMSGHDR.size:
                    return found
                if kind == NLMSG_DONE:
                    return found
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, pos + _NLMSGHDR.size)
                    raise OSError(-code, "netlink address dump failed")
                if kind == RTM_NEWADDR:
                    found.extend(_parse_addr(data, pos + _NLMSGHDR.size, pos + length))
                pos += _align4(length)


def _parse_addr(data: bytes, start: int, end: int) -> list[tuple[int, int, bytes]]:
    family, _, _, _, index = _IFADDRMSG.unpack_from(data, start)
    size = 4 if family == socket.AF_INET else 16 if family == socket.AF_INET6 else 0
    if not size:
        return []
    local = address = None
    pos = start + _align4(_IFADDRMSG.size)
    while pos + _RTATTR.size <= end:
        attr_len, attr_type = _RTATTR.unpack_from(data, pos)
        if attr_len < _RTATTR.size:
            break
        value = data[pos + _RTATTR.size : pos + attr_len]
        if attr_type == IFA_LOCAL and len(value) == size:
            local = value
        elif attr_type == IFA_ADDRESS and len(value) == size:
            address = value
        pos += _align4(attr_len)
    # IFA_LOCAL is our own end on point-to-point links; IFA_ADDRESS is the peer there.
    chosen = local or address
    return [(index, family, chosen)] if chosen else []


def interface_addresses(device: str) -> list[str]:
    """Every IPv4 and IPv6 address of the device (all devices for `any`), as text."""
    index = 0
    if device != "any":
        try:
            index = socket.if_nametoindex(device)
        except OSError:
            raise CaptureError(f"{device}: no such device") from None
    if not hasattr(socket, "AF_NETLINK"):
        raise CaptureError(f"{device}: cannot list interface addresses on this system")
    try:
        dumped = _dump_addresses()
    except OSError as exc:
        raise CaptureError(f"{device}: cannot list addresses: {exc.strerror or exc}") from None
    result: list[str] = []
    for if_index, family, packed in dumped:
        if index and if_index != index:
            continue
        text = socket.inet_ntop(family, packed)
        if text not in result:
            result.append(text)
    return result
