"""tcpeek's options and manual: the one source of its parser, --help, man page
and the keywords of `tcpscope.handshakes()`.

The help lines follow the original's usage text (layout and order), in English,
with our additions.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from tcpscope.cli.logsetup import parse_level
from tcpscope.cli.manpage import Page, Section
from tcpscope.cli.options import INT_MAX
from tcpscope.cli.optspec import Command, Layout, Opt
from tcpscope.cli.shared_opts import METRICS_REQUIRES, PATHS, jobs, monitoring, num, workers
from tcpscope.errors import UsageError
from tcpscope.paths import Mode

# The default -B: the live captures' (capture.source.LIVE_BUFFER_MB, which says why;
# a test keeps them equal), written out here so that --help need not load libpcap.
BUFFER_MB = 64


@dataclass(frozen=True)
class Options:
    """One run's settings; the fields are the `dest`s of tcpeek_spec.OPTIONS."""

    user: str | None = None
    interface: str | None = None
    file: str | None = None
    socket: str | None = None  # None: the default path for live capture, none for files
    checksum: int = 0
    timeout: int = 60
    buffer_mb: int = BUFFER_MB
    loglevel: int = 25
    quiet: bool = False
    promisc: bool = False
    icmp: bool = False
    local: tuple[str, ...] = ()
    json: bool = False
    metrics: str | None = None  # [ADDR:]PORT
    workers: int = 1  # --workers: capture processes (cli.workers)
    metrics_linger: bool = False
    no_progress: bool = False
    jobs: int = 1  # -j: worker processes for -r (tcpscope.parallel)
    filters: tuple[str, ...] = ()
    paths: Mode = "bulk"
    action: str = "run"


# -B: libpcap takes the buffer size in bytes as a C int.
MAX_BUFFER_MB = (2**31 - 1) >> 20


def _level(text: str, name: str) -> int:
    return parse_level(text)


def network_text(text: str, name: str = "--local") -> str:
    """An address or network, brackets allowed around IPv6: the text without them."""
    try:
        ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        raise UsageError(f"--local: '{text}' is not an address or network") from None
    return text.strip("[]")


OPTIONS = (
    Opt(
        "user",
        "drop privileges to this user after opening the capture",
        short="u",
        arg="uid",
        dest="user",
        man="After opening the capture and the socket, run as this user (a name or a "
        "uid), with its groups. The socket is given to that user.",
    ),
    Opt(
        "interface",
        "capture device (e.g. eth0)",
        short="i",
        arg="dev",
        dest="interface",
        man="Capture on <<dev>>. Default: the first up, non-loopback device. This host's "
        "addresses (which decide RX and TX) are the device's IPv4 and IPv6 addresses, "
        "unless `--local` names them.",
    ),
    Opt(
        "read",
        "read a capture file (pcap/pcapng) instead of a device",
        short="r",
        arg="file",
        dest="file",
        aliases=("file",),
        man="Read a pcap or pcapng file instead of a device; timeouts run on the capture's "
        "own clock. Needs `--local`.",
    ),
    Opt(
        "socket",
        "statistics socket (default: /var/run/tcpeek/tcpeek.sock)",
        short="U",
        arg="path",
        dest="socket",
        man="The UNIX socket that serves the statistics (see `tcpeekstat`(1)). Default "
        "/var/run/tcpeek/tcpeek.sock for live capture; none for `-r` unless given.",
    ),
    Opt(
        "checksum",
        "drop bad checksums: 0=none 1=IP(+ICMP) 2=IP+TCP (default: 0)",
        short="c",
        arg="[0|1|2]",
        dest="checksum",
        convert=num(0, 2),
        api="checksum",
        man="Drop packets with bad checksums: 0 none, 1 the IP header (and ICMP), 2 also "
        "TCP. How many were dropped is logged at exit. Default 0.",
    ),
    Opt(
        "timeout",
        "handshake timeout (default: 60)",
        short="t",
        arg="sec",
        dest="timeout",
        convert=num(1, INT_MAX),
        api="timeout",
        man="A handshake not completed <<sec>> seconds after its last packet is judged a "
        "timeout. Default 60.",
    ),
    Opt(
        "buffer",
        "capture buffer size (default: 64)",
        short="B",
        arg="MB",
        dest="buffer_mb",
        convert=num(1, MAX_BUFFER_MB),
        api="buffer_mb",
        man="The kernel capture buffer, in megabytes. Default 64 (the original: 2, which "
        "drops packets at a few hundred thousand a second; see bench/README.md).",
    ),
    Opt(
        "loglevel",
        "syslog level name (default: LOG_NOTICE)",
        short="l",
        arg="LEVEL",
        dest="loglevel",
        convert=_level,
        man="Log messages at this syslog level and above (`LOG_DEBUG`, `notice`, ...) to "
        "standard error, and to syslog when standard error is not a terminal. Default "
        "LOG_NOTICE.",
    ),
    Opt(
        "quiet",
        "no per-session lines",
        short="q",
        dest="quiet",
        man="Print no line per handshake, only the summary.",
    ),
    Opt(
        "promisc",
        "promiscuous mode",
        dest="promisc",
        api="promisc",
        man="Capture in promiscuous mode.",
    ),
    Opt(
        "icmp",
        "interpret ICMP/ICMPv6 destination unreachable",
        dest="icmp",
        api="icmp",
        man="Count ICMP and ICMPv6 destination-unreachable errors quoting a handshake's "
        "SYN as failures (unreach).",
    ),
    Opt(
        "local",
        "this host's address or network (repeatable; needed with -r, -i any)",
        arg="ADDR[/LEN]",
        dest="local",
        convert=network_text,
        append=True,
        api="local",
        man="This host's address or network (IPv6 in brackets or bare); may be repeated. "
        "It decides the direction: RX for SYNs to it, TX for SYNs from it. Required "
        "with `-r` and with `-i any`.",
    ),
    Opt(
        "json",
        "one JSON object per finished handshake on stdout (docs/json.md)",
        dest="json",
        man="Write one JSON object per judged handshake on standard output (JSON Lines; "
        "the schema is in tcpscope's docs/json.md).",
    ),
    *monitoring("-r"),
    jobs("-r"),
    workers("-i"),
    Opt("help", "this help", short="h", action="help", man="Print the usage and exit 0."),
    Opt(
        "version",
        "version",
        short="v",
        action="version",
        man="Print the version of tcpscope and of libpcap and exit 0.",
    ),
    PATHS,
)

COMMAND = Command(
    prog="tcpeek",
    options=OPTIONS,
    layout=Layout(indent=4, sep=" ", column=26),
    head="usage: tcpeek [option]... [expression]...\n  option:\n",
    tail="""\
  expression:
    [filter]:dir@addr[/prefix]:port[:port...][,...]   ('%' = '*'; IPv6 as [addr/prefix])
  example)
    tcpeek -i eth0 filter:RX@%:80:443
    tcpeek -i eth0 filter:TX@192.168.0.0/24:%
    tcpeek -i eth0 web6:RX@[2001:db8::/32]:443 :RX@*:22
""",
    exclusive=(("interface", "file"), ("workers", "file")),
    requires=METRICS_REQUIRES,
)

PAGE = Page(
    name="tcpeek",
    summary="watch TCP handshakes and report every failure",
    synopsis="`tcpeek` [<<option>>]... [<<filter>>]...",
    description=(
        "`tcpeek` watches the TCP three-way handshakes of connections to and from this "
        "host and reports every one: success (SYN, SYN/ACK, ACK), rejected by an RST, "
        "unreachable (an ICMP or ICMPv6 error, with `--icmp`) or timed out, with the "
        "SYN and SYN/ACK retransmissions, counted per named filter. A UNIX socket serves "
        "the counters as JSON to `tcpeekstat`(1).",
        "Each <<filter>> is `NAME:DIR@ADDR[/PREFIX]:PORT[:PORT...][,ADDR[/PREFIX]:PORT...]`. "
        "DIR is `RX` (connections to this host) or `TX` (from it); ADDR the remote address "
        "or network (`*` or `%` for any; IPv6 in brackets); PORT the server port (`*` or "
        "`%` for any). The filters `RX:RX@*:*` and `TX:TX@*:*` are always there. An empty "
        "NAME excludes matching handshakes from every filter.",
        "At most a million handshakes are followed at once; SYNs past that are not "
        "followed, and how many were not is logged at exit.",
    ),
    sections=(
        Section(
            "OUTPUT",
            (
                "On standard error: the `listening on` line, then unless `-q` a header and one "
                "line per judged handshake: its time, the start, client and server, the result "
                "and the SYN and SYN/ACK duplicates.",
                (
                    " TIME(s) |       TIMESTAMP       |      SRC IP:PORT            DST IP:PORT"
                    "     |      RESULTS      | DUP SYN  DUP S/A",
                    "   0.002 | 12-07-06 16:39:02.552 |   192.168.2.227:48967   "
                    "192.168.2.202:80    |      success      |       0        0",
                ),
                "At the end, the summary: per filter, the successes with their SYN and SYN/ACK "
                "duplicates, the failures timed out, rejected and (with `--icmp`) unreachable; "
                "then libpcap's counters. With `--json`, JSON Lines on standard output.",
            ),
        ),
        Section(
            "EXIT STATUS",
            (
                "0 after the summary; 1 on a bad command line (with the usage), a bad filter, a "
                "capture or socket that cannot be opened; each error is one line on standard "
                "error.",
            ),
        ),
        Section(
            "SIGNALS",
            (
                "SIGINT and SIGTERM (and the end of `-r`) judge the handshakes still pending as "
                "timeouts, print the summary and exit 0.",
            ),
        ),
        Section(
            "FILES",
            (
                "/var/run/tcpeek/tcpeek.sock: the default statistics socket. A stale socket "
                "file left by a dead process is replaced; one held by a running tcpeek is an "
                "error.",
            ),
        ),
        Section(
            "EXAMPLES",
            (
                (
                    "tcpeek -i eth0 http-rx:RX@%:80:443 db:TX@192.168.0.0/24:3306 :RX@*:22",
                    "tcpeek -r capture.pcap --local 198.18.0.1 --icmp --json",
                ),
            ),
        ),
        Section(
            "DIFFERENCES FROM THE ORIGINAL",
            (
                "IPv6 and ICMPv6; unreachable codes beyond host and port (net, protocol, "
                "admin-prohibited) are reported in `--json` with their code.",
                "`-r`, `--local`, `--json`; `-l` works; SYNs with ECN bits open handshakes; "
                "the socket is safe with slow clients and stale files; `tcpeekstat` is Python "
                "3 with one-line errors.",
            ),
        ),
        Section("SEE ALSO", ("`tcpeekstat`(1), `miruo`(1), `pcap-filter`(7)",)),
    ),
)
