"""The libpcap facts we read through ctypes, and the device helpers that need no lab."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from tcpscope.capture import (
    datalink_description,
    datalink_name,
    interface_addresses,
    libpcap_version,
    open_live,
)
from tcpscope.capture.interfaces import IFF_LOOPBACK, IFF_UP, interface_flags
from tcpscope.capture.libpcap import status_message
from tcpscope.errors import CaptureError


def test_libpcap_version() -> None:
    version = libpcap_version()
    assert re.match(r"libpcap version \d+\.\d+", version), version


@pytest.mark.parametrize(
    ("linktype", "name", "description"),
    [
        (1, "EN10MB", "Ethernet"),
        (0, "NULL", "BSD loopback"),
        (113, "LINUX_SLL", "Linux cooked"),
        (276, "LINUX_SLL2", "Linux cooked"),
    ],
)
def test_datalink_names(linktype: int, name: str, description: str) -> None:
    assert datalink_name(linktype) == name
    described = datalink_description(linktype)
    assert described is not None and described.startswith(description)


def test_unknown_datalink() -> None:
    assert datalink_name(9999) is None
    assert datalink_description(9999) is None


def test_status_message() -> None:
    assert "No such device" in status_message(-5)
    assert "permission" in status_message(-8)


def test_loopback_addresses_and_flags() -> None:
    addresses = interface_addresses("lo")
    assert "127.0.0.1" in addresses
    flags = interface_flags("lo")
    assert flags is not None and flags & IFF_LOOPBACK and flags & IFF_UP


def test_addresses_of_missing_device() -> None:
    with pytest.raises(CaptureError) as info:
        interface_addresses("nosuchdev0")
    assert str(info.value) == "nosuchdev0: no such device"


def test_any_lists_at_least_loopback() -> None:
    assert "127.0.0.1" in interface_addresses("any")


def test_open_live_missing_device() -> None:
    with pytest.raises(CaptureError) as info:
        open_live("nosuchdev0", 1522, True, 1000)
    message = str(info.value)
    assert message.startswith("nosuchdev0: ")
    assert "\n" not in message
    # as root: no such device; as a user libpcap may stop at the permission check first
    assert "no such device" in message.lower() or "permission" in message.lower()


def test_open_live_without_permission() -> None:
    # Drop every capability (allowed for anyone) so opening a packet socket is refused.
    code = textwrap.dedent(
        """
        import ctypes, sys
        libc = ctypes.CDLL(None, use_errno=True)
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)
        if libc.capset(header, (ctypes.c_uint32 * 6)()) != 0:
            sys.exit(4)
        from tcpscope.capture import open_live
        from tcpscope.errors import CaptureError
        try:
            open_live("lo", 1522, False, 1000)
        except CaptureError as exc:
            print(exc)
            sys.exit(3)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 3, done.stdout + done.stderr
    message = done.stdout.strip()
    assert message.startswith("lo: ")
    assert "permission" in message.lower()
    assert "\n" not in message
