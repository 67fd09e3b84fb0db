"""Frames to records: pick the decoder for a capture's link type once.

    decode = make_decoder(pcap.datalink())
    record = decode(ts_ns, frame)   # Segment | IcmpError | None, or DecodeError

A decoder is a plain function: link header → IP header → TCP header (or the
ICMP error's quote), with precompiled structs read at offsets and no copies
but the two addresses.
"""

from __future__ import annotations

from tcpscope.decode.link import DECODERS, LINKTYPES, Decoder, Record, linktype_name
from tcpscope.errors import UnsupportedLinkType

__all__ = ["LINKTYPES", "Decoder", "Record", "linktype_name", "make_decoder", "supported"]


def supported(linktype: int) -> bool:
    return linktype in DECODERS


def make_decoder(linktype: int) -> Decoder:
    """The decoder for frames of `linktype`; UnsupportedLinkType when there is none."""
    decoder = DECODERS.get(linktype)
    if decoder is None:
        name, _description = linktype_name(linktype)
        raise UnsupportedLinkType(f"unsupported link type {name} ({linktype})")
    return decoder
