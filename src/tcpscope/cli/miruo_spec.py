"""miruo's options and manual: the one source of its parser, --help, man page
and the keywords of `tcpscope.sessions()`.

The help lines follow the original's usage text (its layout and wording),
with our additions; docs for each option's man paragraph: manpage.py's markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tcpscope.analyze.http import HttpDpi, parse_dpi_mode
from tcpscope.cli.manpage import Page, Section
from tcpscope.cli.options import INT_MAX, number
from tcpscope.cli.optspec import Command, Layout, Opt
from tcpscope.cli.shared_opts import METRICS_REQUIRES, PATHS, jobs, monitoring, num, workers
from tcpscope.paths import Mode


@dataclass(frozen=True)
class Options:
    """One run's settings; the fields are the `dest`s of miruo_spec.OPTIONS."""

    interface: str | None = None
    file: str | None = None
    view_data: int = 0
    long_connect_ms: int = 0
    long_delay_ms: int = 0
    retransmit_ms: int = 1000
    stat_interval: int = 0
    syn: bool = True
    rst_mode: int = 1
    fragment: bool = True
    colour: bool | None = None  # None: decide from the terminal
    session_limit: int = 1024
    segment_limit: int = 65536
    dpi: HttpDpi | None = None
    quiet: int = 0
    show_all: bool = False
    live: bool = False
    json: bool = False
    metrics: str | None = None  # [ADDR:]PORT
    workers: int = 1  # --workers: capture processes (cli.workers)
    metrics_linger: bool = False
    no_progress: bool = False
    jobs: int = 1  # -j: worker processes for -f (tcpscope.parallel)
    expression: str = ""
    paths: Mode = "bulk"
    action: str = "run"  # or "help", "version"


MAX_CONTEXT = 100_000  # -v: segments kept around each shown one


def _switch(text: str, name: str) -> bool:
    return bool(number(text, name, 0, 1))


def _dpi(text: str, name: str) -> Any:
    return parse_dpi_mode(text)


OPTIONS = (
    Opt("help", "help", short="h", action="help", man="Print the usage and exit 0."),
    Opt(
        "version",
        "version",
        short="V",
        action="version",
        man="Print the version of tcpscope and of libpcap and exit 0.",
    ),
    Opt(
        "interface",
        "eth0,bond0,any...",
        short="i",
        arg="dev",
        dest="interface",
        man="Capture live on <<dev>> (`any` works). Without `-i` and `-f`: the first "
        "up, non-loopback device. Live capture is promiscuous, 1522 bytes a packet.",
    ),
    Opt(
        "file",
        "read file (tcpdump -w; pcap or pcapng; - for stdin)",
        short="f",
        arg="file",
        dest="file",
        man="Read a pcap or pcapng capture file instead of a device; `-` reads standard "
        "input (a pipe from `tcpdump -w -` works). The file's own timestamps are the clock.",
    ),
    Opt(
        "view-data",
        "show NUM segments around each shown one. Default 0",
        short="v",
        arg="NUM",
        dest="view_data",
        convert=num(0, MAX_CONTEXT),
        api="view_data",
        man="Also show the <<NUM>> segments before and after each segment marked when it "
        "arrives. Default 0.",
    ),
    Opt(
        "long-connect",
        "Threshold of connection time for lookup. Default 0ms(off)",
        short="T",
        arg="time[ms]",
        dest="long_connect_ms",
        convert=num(0, INT_MAX),
        api="long_connect_ms",
        man="Show sessions lasting longer than <<time>> milliseconds (last segment minus "
        "first). Default 0: off.",
    ),
    Opt(
        "long-delay",
        "Threshold of long delay time for lookup. Default 0ms(off)",
        short="t",
        arg="time[ms]",
        dest="long_delay_ms",
        convert=num(0, INT_MAX),
        api="long_delay_ms",
        man="Show segments arriving more than <<time>> milliseconds after the previous "
        "segment of their session (both are shown). Default 0: off.",
    ),
    Opt(
        "retransmit",
        "Threshold of retransmit time for lookup. Default 1000ms",
        short="r",
        arg="time[ms]",
        dest="retransmit_ms",
        convert=num(0, INT_MAX),
        api="retransmit_ms",
        man="Show retransmissions that came at least <<time>> milliseconds after their "
        "original (same seq, ack, flags and frame length); 0 ignores retransmissions. "
        "Default 1000.",
    ),
    Opt(
        "stat",
        "statistics view interval. Default 0sec(off)",
        short="s",
        arg="interval[sec]",
        dest="stat_interval",
        convert=num(0, INT_MAX),
        aliases=("stat-interval",),
        man="Print the statistics block to standard error every <<interval>> seconds "
        "(on the packets' clock for files). Default 0: only at exit.",
    ),
    Opt(
        "syn",
        "syn retransmit lookup mode. default=1. 0=ignore 1=lookup",
        short="S",
        arg="[0|1]",
        dest="syn",
        convert=_switch,
        api="syn",
        man="1: a SYN or SYN/ACK retransmission is always shown, whatever `-r` says; "
        "0: never. Default 1.",
    ),
    Opt(
        "rst",
        "rst lookup mode. default=1. 0=ignore 1=not after FIN 2=all",
        short="R",
        arg="[0|1|2]",
        dest="rst_mode",
        convert=num(0, 2),
        api="rst_mode",
        man="0: an RST never makes a session shown; 1: it does, except an RST during the "
        "close (after a FIN); 2: every RST does. Default 1.",
    ),
    Opt(
        "fragment",
        "ip fragment lookup. default=1",
        short="F",
        arg="[0|1]",
        dest="fragment",
        convert=_switch,
        aliases=("flagment",),
        api="fragment",
        man="1: show IP-fragmented segments, with the `F`/`-` column; 0: neither. Default 1.",
    ),
    Opt(
        "color",
        "color 0=off 1=on (default: on for a terminal, NO_COLOR off)",
        short="C",
        arg="[0|1]",
        dest="colour",
        convert=_switch,
        aliases=("colour",),
        man="ANSI colours, 1 on, 0 off. Default: on when standard output is a terminal "
        "and `NO_COLOR` is not set.",
    ),
    Opt(
        "session-limit",
        "active session limit. Default 1024 (0=unlimited)",
        short="L",
        arg="NUM",
        dest="session_limit",
        convert=num(0, INT_MAX),
        aliases=("limit-session",),
        api="session_limit",
        man="Sessions tracked at once; SYNs past it are dropped and counted "
        "(DropSession). 0: no limit. Default 1024.",
    ),
    Opt(
        "segment-limit",
        "active segment limit. Default 65536 (0=unlimited)",
        short="l",
        arg="NUM",
        dest="segment_limit",
        convert=num(0, INT_MAX),
        aliases=("limit-segment",),
        api="segment_limit",
        man="Segments held at once; past it segments are dropped and counted "
        "(DropSegment). 0: no limit. Default 65536.",
    ),
    Opt(
        "dpi-mode",
        "deep packet inspection mode: tcp, http[:REQHDR,..[:RESHDR,..]]",
        short="m",
        arg="mode",
        dest="dpi",
        convert=_dpi,
        api="dpi_mode",
        man="`tcp` (none, the default) or `http[:REQHDR,...[:RESHDR,...]]`: print the "
        "request and status lines of HTTP/1.x, and the named request and response headers "
        "(`%` = every header; `Host` is always printed for requests).",
    ),
    Opt(
        "quiet",
        "narrow lines; -qq also hides duplicate-connection errors",
        short="q",
        dest="quiet",
        count=True,
        aliases=("qiute",),
        man="Lines of at most 80 columns. Given twice, duplicate-connection errors are "
        "not printed.",
    ),
    Opt(
        "all",
        "all session lookup",
        dest="show_all",
        api="show_all",
        man="Show every session when it ends.",
    ),
    Opt(
        "live",
        "live mode (all segment lookup)",
        dest="live",
        man="Print every segment as it arrives, one line each (implies `--all`).",
    ),
    Opt(
        "json",
        "JSON Lines on stdout instead of text (docs/json.md)",
        dest="json",
        man="Write JSON Lines on standard output instead of text: one object per shown "
        "session, then one statistics object; the `listening on` line goes to standard "
        "error. The schema is in tcpscope's docs/json.md.",
    ),
    *monitoring("-f"),
    jobs("-f"),
    workers("-i"),
    PATHS,
)

COMMAND = Command(
    prog="miruo",
    options=OPTIONS,
    layout=Layout(indent=4, sep=", ", column=35),
    head="usage: miruo [option] [expression]\n\n  option\n",
    tail="\n  expression: a tcpdump filter expression\n",
    exclusive=(("interface", "file"), ("workers", "file")),
    requires=METRICS_REQUIRES,
)

PAGE = Page(
    name="miruo",
    summary="follow every TCP session and show those worth a look",
    synopsis="`miruo` [<<option>>]... [<<expression>>]",
    description=(
        "`miruo` follows every TCP session seen on an interface or in a capture file and "
        "prints, in a compact two-sided state view, only the sessions worth a look: "
        "retransmissions, long delays, long connections, RSTs, IP fragments, timeouts, "
        "duplicate connections; HTTP request and status lines on request.",
        "<<expression>> is a tcpdump filter (all remaining words), compiled by libpcap and "
        "applied to live captures and files alike. Do not filter on one direction only "
        "(`dst port 80`): miruo must see both sides to follow a session.",
        "Numbers take an optional sign and digits only; anything else prints the usage "
        "and exits 1.",
    ),
    sections=(
        Section(
            "OUTPUT",
            (
                "At start, `listening on DEV, link-type NAME (DESCRIPTION), capture size N "
                "bytes` (on standard error with `--json`).",
                "Per shown session: a header (id, duration, client == server, totals), then "
                "the shown segments: number, time, both sides' TCP states after the segment, "
                "the arrow (`>` client to server, `<` back) with the flags `UAPRSF`, seq/ack, "
                "frame length, fragment mark and TCP options. `****` stands for segments not "
                "shown. Sessions destroyed by a timeout, broken by a duplicate SYN or still "
                "open at the end of a file end with a `destroy session` line.",
                (
                    "0001             0.003 |     198.18.0.1:40906 == 198.18.0.2:80"
                    "        | Total 11 segments, 1063 bytes",
                    "0001:0000 10:14:06.779 |          SYN_SENT >----S-> SYN_RECV"
                    "          | A1BF38E8/00000000   74 - <mss=1460>",
                    "0001:****              |                                      "
                    "        |",
                ),
                "`-q` gives lines of at most 80 columns, `--live` one line per segment, "
                "`--json` JSON Lines. The statistics block (sessions, marks, limits, CPU and "
                "memory, libpcap's counters, header errors) goes to standard error at exit "
                "and every `-s` seconds.",
            ),
        ),
        Section(
            "EXIT STATUS",
            (
                "0 when the capture ended or was stopped; 1 on a bad command line (with the "
                "usage), a capture that cannot be opened or read, or a bad filter expression; "
                "each error is one line on standard error.",
            ),
        ),
        Section(
            "SIGNALS",
            (
                "SIGINT and SIGTERM stop the capture: the packets the kernel still holds are "
                "read, the open sessions that are marked or half-open (all of them with "
                "`--all`) are reported with `end of capture`, and the statistics block is "
                "printed.",
            ),
        ),
        Section(
            "ENVIRONMENT",
            (
                "`NO_COLOR`: no colours unless `-C 1` is given. `TZ`: the time zone of the "
                "printed times.",
            ),
        ),
        Section(
            "FILES",
            (
                "None are read or written, except the capture file given with `-f`.",
            ),
        ),
        Section(
            "EXAMPLES",
            (
                (
                    "miruo -i eth0 -T3000 host dbserver and port 3306",
                    "miruo -i any -t 2000 -v 3 port 80",
                    "miruo -f capture.pcapng -m http:User-Agent:Server",
                    "tcpdump -i eth0 -w - port 443 | miruo -f -",
                    "miruo --json --all -f capture.pcap | jq .",
                ),
                "MySQL sessions longer than 3 s; stalls over 2 s with context; the HTTP lines "
                "of the shown sessions; from a pipe; machine-readable.",
            ),
        ),
        Section(
            "DIFFERENCES FROM THE ORIGINAL",
            (
                "pcapng files, `-f -` (standard input), Linux cooked v2, 802.1Q/QinQ VLAN "
                "tags and IPv6 (`[addr]:port`; the columns widen).",
                "SYNs with ECN bits open sessions. Sessions and retransmissions are found by "
                "hash lookups: the cost per packet does not grow with the number of open "
                "sessions.",
                "The Retransmit counter counts; SACK blocks are printed; malformed TCP options "
                "print `bad opt[K]` instead of crashing.",
                "Files use their own timestamps as the clock, so timeouts happen offline too; "
                "at the end of a file (or on a stop) open sessions that are marked or "
                "half-open are reported with `end of capture`, not dropped.",
                "The `listening on` line names the file. Live capture uses a 100 ms read "
                "timeout (the original: 1000 ms).",
                "`--json`, `NO_COLOR`, HTTP DPI for every HTTP/1.x method, header names "
                "matched case-insensitively.",
            ),
        ),
        Section("SEE ALSO", ("`tcpeek`(1), `tcpdump`(1), `pcap-filter`(7)",)),
    ),
)
