"""Direct calls into the libpcap that pcapy-ng uses, for what pcapy does not expose.

The pcapy-ng wheel vendors libpcap in `pcapy_ng.libs/` beside the `pcapy`
extension; loading that same file gives the version that really captures.
Without it (pcapy built from source) the system libpcap is the one linked.
Every function degrades to a plain answer when no libpcap can be loaded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from pathlib import Path

UNKNOWN_VERSION = "libpcap (unknown version)"

# pcap_activate() status codes we name ourselves when libpcap cannot be loaded.
_STATUS_FALLBACK = {
    -1: "Generic error",
    -5: "No such device exists",
    -8: "You don't have permission to capture on that device",
    -9: "That device is not up",
    -11: "You don't have permission to capture in promiscuous mode on that device",
}


def _candidate_paths() -> list[str]:
    paths: list[str] = []
    try:
        import pcapy
    except ImportError:  # pragma: no cover - pcapy-ng is a hard dependency
        pcapy = None
    if pcapy is not None and getattr(pcapy, "__file__", None):
        libs = Path(pcapy.__file__).resolve().parent / "pcapy_ng.libs"
        paths.extend(str(p) for p in sorted(libs.glob("libpcap*.so*")))
        paths.extend(str(p) for p in sorted(libs.glob("libpcap*.dylib")))
    system = ctypes.util.find_library("pcap")
    if system:
        paths.append(system)
    return paths


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    for path in _candidate_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.pcap_lib_version.restype = ctypes.c_char_p
        lib.pcap_lib_version.argtypes = []
        for name in (
            "pcap_datalink_val_to_name",
            "pcap_datalink_val_to_description",
            "pcap_statustostr",
        ):
            func = getattr(lib, name)
            func.restype = ctypes.c_char_p
            func.argtypes = [ctypes.c_int]
        return lib
    return None


def _text(raw: object) -> str | None:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return None


def libpcap_version() -> str:
    """`pcap_lib_version()`, e.g. "libpcap version 1.9.1 (with TPACKET_V3)"."""
    lib = _library()
    if lib is None:
        return UNKNOWN_VERSION
    return _text(lib.pcap_lib_version()) or UNKNOWN_VERSION


def datalink_name(linktype: int) -> str | None:
    """libpcap's short name of a link type ("EN10MB", "LINUX_SLL"), None if unknown."""
    lib = _library()
    return None if lib is None else _text(lib.pcap_datalink_val_to_name(linktype))


def datalink_description(linktype: int) -> str | None:
    """libpcap's description of a link type ("Ethernet", "Linux cooked v1"), None if unknown."""
    lib = _library()
    return None if lib is None else _text(lib.pcap_datalink_val_to_description(linktype))


def status_message(status: int) -> str:
    """The text of a `pcap_activate()` status code (`pcap_statustostr`)."""
    lib = _library()
    text = None if lib is None else _text(lib.pcap_statustostr(status))
    return text or _STATUS_FALLBACK.get(status, f"libpcap status {status}")
