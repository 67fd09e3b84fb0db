"""miruo's HTTP DPI: the request or status line of a segment, and chosen headers.

`-m http[:REQHDR,...[:RESHDR,...]]`: request headers (Host always added),
then response headers; `%` means every header. A request line and a Referer
value lose their query string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tcpscope.errors import UsageError

METHODS = frozenset(
    {b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"CONNECT", b"PATCH"}
)
_REQUEST = re.compile(rb"([A-Z]+) (\S+) (HTTP/1\.[01])\r?$")
_RESPONSE = re.compile(rb"(HTTP/1\.[01]) (\d{3})(?: (.*?))?\r?$")
ALL = "%"


@dataclass(frozen=True)
class HttpDpi:
    request_headers: frozenset[str]  # lower-case names, or {"%"}
    response_headers: frozenset[str]

    def lines(self, payload: bytes) -> list[str]:
        """The DPI lines for a segment's payload ([] when it starts no request/response)."""
        if not payload:
            return []
        head, _, _ = payload.partition(b"\n")
        request = _REQUEST.match(head)
        if request is not None and request.group(1) in METHODS:
            method, target, version = (g.decode("latin-1") for g in request.groups())
            out = [f"DPI:HTTP:RequestLine >>>> {method} {_strip_query(target)} {version}"]
            return out + _headers(payload, self.request_headers)
        response = _RESPONSE.match(head)
        if response is not None:
            version, code, reason = response.groups()
            text = f"{version.decode()} {code.decode()}"
            if reason:
                text += " " + reason.decode("latin-1")
            out = [f"DPI:HTTP:ResponseLine >>> {text}"]
            return out + _headers(payload, self.response_headers)
        return []


def _strip_query(value: str) -> str:
    return value.split("?", 1)[0]


def _headers(payload: bytes, wanted: frozenset[str]) -> list[str]:
    out = []
    every = ALL in wanted
    for raw in payload.split(b"\n")[1:]:
        line = raw.rstrip(b"\r")
        if not line:
            break
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        key = name.decode("latin-1").strip()
        if every or key.lower() in wanted:
            text = value.decode("latin-1").strip()
            if key.lower() == "referer":
                text = _strip_query(text)
            out.append(f"DPI:HTTP:Header >>>>>>>>> {key}: {text}")
    return out


def parse_dpi_mode(mode: str) -> HttpDpi | None:
    """`tcp` → None; `http[:REQ,...[:RES,...]]` → HttpDpi; anything else → UsageError."""
    if mode == "tcp":
        return None
    parts = mode.split(":")
    if parts[0] != "http" or len(parts) > 3:
        raise UsageError(f"bad DPI mode '{mode}'")

    def names(text: str) -> set[str]:
        return {n.strip().lower() for n in text.split(",") if n.strip()}

    request = names(parts[1]) if len(parts) > 1 else set()
    request.add("host")
    response = names(parts[2]) if len(parts) > 2 else set()
    return HttpDpi(frozenset(request), frozenset(response))
