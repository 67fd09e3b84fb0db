"""tcpeek's text output, byte for byte against the README and the spec.

The expected strings below are copied from ../shared/seeds/tcpeek-README.txt
(the original program's output) and ../shared/spec/tcpeek.md, not from our code.
Local time is injected as UTC (time.gmtime) so the tests do not depend on TZ.
"""

from __future__ import annotations

import calendar
import ipaddress
import os
import time

import pytest

from tcpscope.analyze.tcpeek_counters import FilterCounts, PcapStats
from tcpscope.output.tcpeek_text import (
    TABLE_HEADER,
    format_address,
    listening_line,
    session_line,
    summary,
)


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def utc_ns(text: str, ms: int = 0) -> int:
    """'2012-07-06 16:39:02' (UTC) plus milliseconds, as epoch nanoseconds."""
    seconds = calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))
    return seconds * 1_000_000_000 + ms * 1_000_000


# The header as the C tcpeek prints it (src/session.c of pandax381/tcpeek, and
# side by side on a veth): it ends with one space, as its rows do; the README's
# copy lost that space. The dashed rule is exactly as long as a row (118).
C_HEADER = (
    " TIME(s) |       TIMESTAMP       |      SRC IP:PORT            DST IP:PORT     "
    "|      RESULTS      | DUP SYN  DUP S/A "
)
README_RULE = (
    "------------------------------------------------------------"
    "----------------------------------------------------------"
)


def test_table_header() -> None:
    assert len(README_RULE) == 118
    assert TABLE_HEADER == C_HEADER + "\n" + README_RULE
    assert TABLE_HEADER.splitlines()[0].endswith("DUP S/A ")


@pytest.mark.parametrize(
    ("row", "args"),
    [
        (
            "   0.002 | 12-07-06 16:39:02.552 |   192.168.2.227:48967   192.168.2.202:80    "
            "|      success      |       0        0 ",
            (2_000_000, utc_ns("2012-07-06 16:39:02", 552), "192.168.2.227", 48967,
             "192.168.2.202", 80, "success", 0, 0),
        ),
        (
            "   0.001 | 12-07-06 16:39:36.254 |   192.168.2.228:62876   192.168.2.227:80    "
            "| failure (reject)  |       0        0 ",
            (1_999_999, utc_ns("2012-07-06 16:39:36", 254), "192.168.2.228", 62876,
             "192.168.2.227", 80, "reject", 0, 0),
        ),
        (
            "  39.947 | 12-07-06 16:41:29.723 |   192.168.2.227:58376   192.168.2.207:8080  "
            "| failure (timeout) |       2        0 ",
            (39_947_000_001, utc_ns("2012-07-06 16:41:29", 723) + 999_999,
             "192.168.2.227", 58376, "192.168.2.207", 8080, "timeout", 2, 0),
        ),
        (
            "   0.000 | 12-07-06 16:39:44.689 |   192.168.2.227:56371   192.168.2.228:8080  "
            "| failure (reject)  |       0        0 ",
            (0, utc_ns("2012-07-06 16:39:44", 689), "192.168.2.227", 56371,
             "192.168.2.228", 8080, "reject", 0, 0),
        ),
    ],
)
def test_readme_rows(row: str, args: tuple[object, ...]) -> None:
    hs, start, client, cport, server, sport, result, dupsyn, dupsynack = args
    line = session_line(
        hs, start, ip(client), cport, ip(server), sport, result, dupsyn, dupsynack,  # type: ignore[arg-type]
        localtime=time.gmtime,
    )
    assert line == row
    assert len(line) == len(README_RULE)


def test_unreach_and_wide_fields() -> None:
    line = session_line(
        1234_567_000_000, utc_ns("2024-01-02 03:04:05", 6), ip("10.0.0.1"), 1,
        ip("255.255.255.255"), 65535, "unreach", 1234567, 12345678, localtime=time.gmtime,
    )
    # %4d grows rather than cut; counters right-aligned in 7 and growing past it
    assert line == (
        "1234.567 | 24-01-02 03:04:05.006 |        10.0.0.1:1     255.255.255.255:65535 "
        "| failure (unreach) | 1234567  12345678 "
    )


def test_ipv6_addresses_in_brackets_widen_the_columns() -> None:
    line = session_line(
        5_000_000, utc_ns("2024-01-02 03:04:05", 0), ip("fd00::1"), 40000,
        ip("2001:db8:1234:5678:9abc:def0:1234:5678"), 443, "success", 0, 0,
        localtime=time.gmtime,
    )
    assert line == (
        "   0.005 | 24-01-02 03:04:05.000 |       [fd00::1]:40000 "
        "[2001:db8:1234:5678:9abc:def0:1234:5678]:443   |      success      |       0        0 "
    )


def test_format_address() -> None:
    assert format_address(ip("198.18.0.1")) == "198.18.0.1"
    assert format_address(ip("fd00::1")) == "[fd00::1]"
    assert format_address(ip("::ffff:198.18.0.1")) == "[::ffff:198.18.0.1]"


def test_local_time_follows_tz() -> None:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "JST-9"  # what the README's author ran in
    time.tzset()
    try:
        line = session_line(
            0, utc_ns("2012-07-06 07:39:02", 552), ip("1.2.3.4"), 1, ip("5.6.7.8"), 2,
            "success", 0, 0,
        )
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
    assert "| 12-07-06 16:39:02.552 |" in line


def test_listening_line() -> None:
    assert listening_line("eth0", "EN10MB", "Ethernet", 138, 2) == (
        "listening on eth0, link-type EN10MB (Ethernet), capture size 138 bytes, "
        "buffer size 2 MB"
    )


# The README's summary (its four filters), without the right-hand notes.
README_SUMMARY = """\
========== TCPEEK SUMMARY ==========
     from : 2012-07-02 16:48:33
       to : 2012-07-02 16:49:59
     time :        86.106 (sec)
------------------------------------
 RX
   Success: 0 session
     SYN Segment Duplicate :      0
     S/A Segment Duplicate :      0
   Failure: 10 session
     Connection Timed Out  :      0
     Connection Rejected   :     10
------------------------------------
 TX
   Success: 783 session
     SYN Segment Duplicate :      0
     S/A Segment Duplicate :      0
   Failure: 0 session
     Connection Timed Out  :      0
     Connection Rejected   :      0
------------------------------------
 http-rx
   Success: 0 session
     SYN Segment Duplicate :      0
     S/A Segment Duplicate :      0
   Failure: 10 session
     Connection Timed Out  :      0
     Connection Rejected   :     10
------------------------------------
 http-tx
   Success: 767 session
     SYN Segment Duplicate :      0
     S/A Segment Duplicate :      0
   Failure: 0 session
     Connection Timed Out  :      0
     Connection Rejected   :      0
===================================="""

README_FILTERS = (
    ("RX", FilterCounts(reject=10)),
    ("TX", FilterCounts(success=783)),
    ("http-rx", FilterCounts(reject=10)),
    ("http-tx", FilterCounts(success=767)),
)

FROM = utc_ns("2012-07-02 16:48:33", 0)
TO = utc_ns("2012-07-02 16:49:59", 106)  # 86.106 s later


def test_readme_summary() -> None:
    assert summary(FROM, TO, README_FILTERS, None, False, localtime=time.gmtime) == README_SUMMARY


def test_spec_summary_with_pcap_stats() -> None:
    # spec: the last filter block, a rule, "pcap stats" with recv/drop/ifdrop, then "="
    text = summary(FROM, TO, README_FILTERS[:1], PcapStats(123, 0, 0), False,
                   localtime=time.gmtime)
    assert text.endswith(
        "     Connection Rejected   :     10\n"
        "------------------------------------\n"
        " pcap stats\n"
        "   recv   : 123\n"
        "   drop   : 0\n"
        "   ifdrop : 0\n"
        "===================================="
    )


def test_summary_with_icmp_line() -> None:
    counts = FilterCounts(success=2, dupsyn=1, dupsynack=2, timeout=3, reject=4, unreach=5)
    text = summary(FROM, FROM, [("RX", counts)], None, True, localtime=time.gmtime)
    assert text.splitlines()[3:] == [
        "     time :         0.000 (sec)",
        "------------------------------------",
        " RX",
        "   Success: 2 session",
        "     SYN Segment Duplicate :      1",
        "     S/A Segment Duplicate :      2",
        "   Failure: 12 session",
        "     Connection Timed Out  :      3",
        "     Connection Rejected   :      4",
        "     ICMP Unreachable      :      5",
        "====================================",
    ]


def test_summary_without_icmp_still_counts_unreach_in_the_total() -> None:
    text = summary(FROM, TO, [("RX", FilterCounts(unreach=5))], None, False,
                   localtime=time.gmtime)
    assert "   Failure: 5 session" in text
    assert "ICMP" not in text


def test_summary_time_field() -> None:
    text = summary(FROM, FROM + 123_456_789_999_999, [], None, False, localtime=time.gmtime)
    assert "     time :    123456.789 (sec)" in text.splitlines()
