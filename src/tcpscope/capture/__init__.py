"""Capture: live devices and capture files through libpcap (pcapy-ng).

    cap = open_file("x.pcap")            # or open_live(dev, snaplen, promisc, timeout_ms)
    cap.set_filter("tcp")                # FilterSyntaxError on bad BPF
    while (batch := cap.read()) is not None:   # live: `if cap.wait(t): batch = cap.read()`
        for ts_ns, frame in batch: ...

See `source` for the details (non-blocking live handles, timestamps, damaged files).
"""

from tcpscope.capture.interfaces import default_device, interface_addresses
from tcpscope.capture.libpcap import datalink_description, datalink_name, libpcap_version
from tcpscope.capture.source import (
    Capture,
    CaptureStats,
    Frame,
    RawBatch,
    open_file,
    open_live,
    open_stream,
)

__all__ = [
    "Capture",
    "CaptureStats",
    "Frame",
    "RawBatch",
    "datalink_description",
    "datalink_name",
    "default_device",
    "interface_addresses",
    "libpcap_version",
    "open_file",
    "open_live",
    "open_stream",
]
