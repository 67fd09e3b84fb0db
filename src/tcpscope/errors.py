"""The one error tree. The CLI turns each into a one-line message and an exit code."""

from __future__ import annotations


class TcpscopeError(Exception):
    """Base of every error tcpscope raises on purpose."""

    exit_code = 1


class DecodeError(TcpscopeError):
    """A frame too short or malformed at one layer: "L2", "IP" or "TCP"."""

    __slots__ = ("layer",)

    def __init__(self, layer: str, message: str = "") -> None:
        super().__init__(message or f"malformed {layer} header")
        self.layer = layer


class UnsupportedLinkType(TcpscopeError):
    """The capture's link type is not one we decode."""


class FilterSyntaxError(TcpscopeError):
    """A BPF expression (or a tcpeek filter) that does not parse."""


class CaptureError(TcpscopeError):
    """Opening or reading a device or a capture file failed."""


class DamagedCapture(CaptureError):
    """A capture file that ends in a damaged or cut record: what came before it
    was read and reported; the exit status says the input was damaged."""

    exit_code = 2


class UsageError(TcpscopeError):
    """Bad command line: print usage, exit 1."""
