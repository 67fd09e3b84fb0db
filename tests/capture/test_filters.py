"""BPF filters on capture files (live filters are checked in test_live)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpscope.capture import open_file
from tcpscope.errors import CaptureError, FilterSyntaxError, TcpscopeError
from tests.capture.frames import ACK, SYN, tcp4, tcp6, udp4
from tests.support.pcapwrite import write_pcap

HTTP4 = tcp4("198.18.0.1", "198.18.0.2", 40000, 80)
HTTPS4 = tcp4("198.18.0.1", "198.18.0.2", 40001, 443)
DNS4 = udp4("198.18.0.1", "198.18.0.2", 5353, 53, b"query")
HTTP6 = tcp6("fd00::1", "fd00::2", 40002, 80, flags=SYN | ACK)
ALL = [HTTP4, HTTPS4, DNS4, HTTP6]


@pytest.fixture
def capture_path(tmp_path: Path) -> str:
    path = tmp_path / "mixed.pcap"
    write_pcap(path, [(1_000_000_000 * (i + 1), frame) for i, frame in enumerate(ALL)])
    return str(path)


def frames_through(path: str, expression: str) -> list[bytes]:
    with open_file(path) as cap:
        cap.set_filter(expression)
        out: list[bytes] = []
        while (batch := cap.read()) is not None:
            out.extend(frame for _, frame in batch)
        return out


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("tcp port 80", [HTTP4, HTTP6]),
        ("tcp", [HTTP4, HTTPS4, HTTP6]),
        ("udp port 53", [DNS4]),
        ("ip6", [HTTP6]),
        ("host 198.18.0.2 and not port 53", [HTTP4, HTTPS4]),
        ("tcp[tcpflags] & tcp-syn != 0", [HTTP4, HTTPS4]),  # tcp[] reads IPv4 only
        ("", ALL),
    ],
)
def test_filter_selects(capture_path: str, expression: str, expected: list[bytes]) -> None:
    assert frames_through(capture_path, expression) == expected


def test_filter_counts_only_what_passes(capture_path: str) -> None:
    with open_file(capture_path) as cap:
        cap.set_filter("tcp port 443")
        assert cap.read() == [(2_000_000_000, HTTPS4)]
        assert cap.read() is None
        assert cap.stats().recv == 1


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("tcp port", "syntax error"),
        ("tcp and", "syntax error"),
        ("port 99999", "99999"),
        ("net 10.0.0.0/33", "32"),
    ],
)
def test_bad_filter(capture_path: str, expression: str, reason: str) -> None:
    with open_file(capture_path) as cap, pytest.raises(FilterSyntaxError) as info:
        cap.set_filter(expression)
    message = str(info.value)
    assert message.startswith(f"bad filter expression '{expression}': ")
    assert reason in message
    assert "\n" not in message
    assert isinstance(info.value, TcpscopeError)
    assert not isinstance(info.value, CaptureError)


def test_bad_filter_leaves_the_capture_usable(capture_path: str) -> None:
    with open_file(capture_path) as cap:
        cap.set_filter("udp")
        with pytest.raises(FilterSyntaxError):
            cap.set_filter("udp and (")
        assert cap.read() == [(3_000_000_000, DNS4)]  # the earlier filter still applies


def test_filter_on_closed_capture(capture_path: str) -> None:
    cap = open_file(capture_path)
    cap.close()
    with pytest.raises(CaptureError):
        cap.set_filter("tcp")
