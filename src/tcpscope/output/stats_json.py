"""The statistics socket's JSON (the contract `tcpeekstat` and scripts read).

GET::

    [{"RX":{"success":{"total":N,"dupsyn":N,"dupsynack":N},
            "failure":{"total":N,"timeout":N,"reject":N,"unreach":N}}},
     ..., {"pcap":{"stats":{"recv":N,"drop":N,"ifdrop":N}}}]

When some handshakes were counted in no filter (between two non-local
addresses; SYNs not followed while a million handshakes were pending), the
last element gains a second section, in the same shape:
``{"pcap":{"stats":{...},"uncounted":{"not_local":N,"over_limit":N}}}``.
The elements, their order and the ``stats`` section stay the original's.

REFRESH: the change since the previous REFRESH, with ``failure`` lacking
``unreach`` (it is added into ``reject``, as the original did) and no ``pcap``
element. Compact, one line. The answer bytes end with a newline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tcpscope.analyze.tcpeek_counters import Counters, CountersSnapshot, PcapStats

REQUESTS = ("GET", "REFRESH")

_COMPACT = (",", ":")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=_COMPACT, ensure_ascii=False)


def filter_elements(snapshot: CountersSnapshot) -> list[dict[str, Any]]:
    """GET's elements for the filters, in order (tcpeek --json's stats record has them too)."""
    return [
        {
            name: {
                "success": {"total": c.success, "dupsyn": c.dupsyn, "dupsynack": c.dupsynack},
                "failure": {
                    "total": c.failure,
                    "timeout": c.timeout,
                    "reject": c.reject,
                    "unreach": c.unreach,
                },
            }
        }
        for name, c in snapshot.filters
    ]


def get_document(snapshot: CountersSnapshot) -> list[dict[str, Any]]:
    doc = filter_elements(snapshot)
    pcap = snapshot.pcap or PcapStats()
    element: dict[str, dict[str, int]] = {
        "stats": {"recv": pcap.recv, "drop": pcap.drop, "ifdrop": pcap.ifdrop}
    }
    gone = snapshot.uncounted
    if gone.not_local or gone.over_limit:
        element["uncounted"] = {"not_local": gone.not_local, "over_limit": gone.over_limit}
    doc.append({"pcap": element})
    return doc


def refresh_document(delta: CountersSnapshot) -> list[dict[str, Any]]:
    return [
        {
            name: {
                "success": {"total": c.success, "dupsyn": c.dupsyn, "dupsynack": c.dupsynack},
                "failure": {
                    "total": c.failure,
                    "timeout": c.timeout,
                    "reject": c.reject + c.unreach,
                },
            }
        }
        for name, c in delta.filters
    ]


def render_get(snapshot: CountersSnapshot) -> str:
    return _dumps(get_document(snapshot))


def render_refresh(delta: CountersSnapshot) -> str:
    return _dumps(refresh_document(delta))


def render_error(message: str) -> str:
    return _dumps({"error": message})


def unknown_request(request: str) -> str:
    return render_error(f"unknown request '{request}'")


def make_provider(counters: Counters) -> Callable[[str], bytes]:
    """The StatsServer callback: answers GET / REFRESH from published snapshots only."""

    # GET's answer per published snapshot, made once: a crowd of clients asking
    # between two snapshots shares it (3,000 filters: ~350 KB, ~10 ms to render).
    last: list[tuple[CountersSnapshot, bytes] | None] = [None]

    def answer(request: str) -> bytes:
        if request == "GET":
            snapshot = counters.published
            made = last[0]
            if made is not None and made[0] is snapshot:
                return made[1]
            rendered = (render_get(snapshot) + "\n").encode()
            last[0] = (snapshot, rendered)
            return rendered
        elif request == "REFRESH":
            text = render_refresh(counters.delta_since_last_refresh())
        else:
            text = unknown_request(request)
        return (text + "\n").encode()

    return answer
