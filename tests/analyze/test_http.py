"""miruo -m http: request and status lines, chosen headers, every HTTP/1.x method."""

from __future__ import annotations

import pytest

from tcpscope.analyze.http import parse_dpi_mode
from tcpscope.errors import UsageError


def test_modes() -> None:
    assert parse_dpi_mode("tcp") is None
    dpi = parse_dpi_mode("http:User-Agent,Referer:Server,Content-Type")
    assert dpi is not None
    assert dpi.request_headers == {"host", "user-agent", "referer"}
    assert dpi.response_headers == {"server", "content-type"}
    for bad in ("ftp", "http:a:b:c", "HTTP"):
        with pytest.raises(UsageError):
            parse_dpi_mode(bad)


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_every_method(method: str) -> None:
    dpi = parse_dpi_mode("http")
    assert dpi is not None
    lines = dpi.lines(f"{method} /a/b?c=d HTTP/1.0\r\nHost: h\r\n\r\n".encode())
    assert lines == [f"DPI:HTTP:RequestLine >>>> {method} /a/b HTTP/1.0",
                     "DPI:HTTP:Header >>>>>>>>> Host: h"]


def test_responses_and_non_http() -> None:
    dpi = parse_dpi_mode("http::%")
    assert dpi is not None
    assert dpi.lines(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\nX-B: 2\r\n\r\n") == [
        "DPI:HTTP:ResponseLine >>> HTTP/1.1 204 No Content",
        "DPI:HTTP:Header >>>>>>>>> X-A: 1",
        "DPI:HTTP:Header >>>>>>>>> X-B: 2",
    ]
    assert dpi.lines(b"\x16\x03\x01\x02\x00") == []
    assert dpi.lines(b"get / HTTP/1.1\r\n") == []  # methods are upper case
    assert dpi.lines(b"") == []
