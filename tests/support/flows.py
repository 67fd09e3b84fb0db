"""Scripted TCP conversations as real frames (Ethernet by default), for scenario captures."""

from __future__ import annotations

from tests.support import frames as f

BASE_NS = 1_700_000_000 * 1_000_000_000  # 2023-11-14 22:13:20 UTC
MS = 1_000_000

Frame = tuple[int, bytes]

SYN_OPTIONS = f.mss(1460) + f.sack_perm() + f.timestamp(1000, 0) + f.nop() + f.wscale(7)


class Flow:
    """A client and a server; each call appends one frame and keeps seq/ack right."""

    def __init__(
        self,
        client: str = "198.18.0.1",
        cport: int = 40000,
        server: str = "198.18.0.2",
        sport: int = 80,
        cseq: int = 0x1000,
        sseq: int = 0x5000,
        link: f.LinkName = "ether",
    ) -> None:
        self.client, self.cport, self.server, self.sport = client, cport, server, sport
        self.cseq, self.sseq = cseq, sseq
        self.link = link
        self.frames: list[Frame] = []

    def _add(self, ms: float, frame: bytes) -> bytes:
        self.frames.append((BASE_NS + int(ms * MS), frame))
        return frame

    def c(self, ms: float, flags: str, payload: bytes = b"", options: bytes = b"",
          advance: bool = True) -> bytes:
        ack = self.sseq if "A" in flags else 0
        frame = f.tcp_frame(self.client, self.cport, self.server, self.sport, flags, self.cseq,
                            ack, payload, options, self.link)
        if advance:
            self.cseq += len(payload) + ("S" in flags) + ("F" in flags)
        return self._add(ms, frame)

    def s(self, ms: float, flags: str, payload: bytes = b"", options: bytes = b"",
          advance: bool = True) -> bytes:
        ack = self.cseq if "A" in flags else 0
        frame = f.tcp_frame(self.server, self.sport, self.client, self.cport, flags, self.sseq,
                            ack, payload, options, self.link)
        if advance:
            self.sseq += len(payload) + ("S" in flags) + ("F" in flags)
        return self._add(ms, frame)

    def again(self, ms: float, frame: bytes) -> None:
        """Send a frame again (a retransmission) at another time."""
        self._add(ms, frame)

    def handshake(self, ms: float = 0.0) -> None:
        self.c(ms, "S", options=SYN_OPTIONS)
        self.s(ms + 1, "SA", options=SYN_OPTIONS)
        self.c(ms + 2, "A")

    def exchange(
        self, ms: float, request: bytes = b"x" * 100, response: bytes = b"y" * 300
    ) -> None:
        self.c(ms, "PA", request)
        self.s(ms + 1, "PA", response)
        self.c(ms + 2, "A")

    def close(self, ms: float) -> None:
        self.c(ms, "FA")
        self.s(ms + 1, "FA")
        self.c(ms + 2, "A")


def merge(*flows: Flow) -> list[Frame]:
    return sorted((fr for flow in flows for fr in flow.frames), key=lambda x: x[0])
