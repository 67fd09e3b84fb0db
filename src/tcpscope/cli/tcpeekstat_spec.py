"""tcpeekstat's options and manual: the one source of its parser, --help and man page."""

from __future__ import annotations

from tcpscope.cli.manpage import Page, Section
from tcpscope.cli.optspec import Command, Layout, Opt

DEFAULT_SOCKET = "/var/run/tcpeek/tcpeek.sock"

OPTIONS = (
    Opt(
        "gmetric",
        "exec gmetric (REFRESH; PATH: the gmetric program)",
        short="g",
        arg="PATH",
        dest="gmetric",
        optional=True,
        const="gmetric",
        man="Ask for `REFRESH` (the change since the previous `REFRESH`) and send reject, "
        "timeout, dupsyn and dupsynack of every filter to Ganglia: "
        "`gmetric -n tcpeek_FILTER_SECTION_ITEM -v VALUE -t uint32`. <<PATH>> names the "
        "gmetric program (default: `gmetric`, found in PATH).",
    ),
    Opt(
        "json",
        "print the JSON on one line",
        short="j",
        dest="json",
        man="Ask for `GET` and print the answer as JSON on one line.",
    ),
    Opt(
        "socket",
        f"unix domain socket (default: {DEFAULT_SOCKET})",
        short="U",
        arg="path",
        dest="socket",
        man=f"tcpeek's statistics socket. Default {DEFAULT_SOCKET}.",
    ),
    Opt(
        "unsent",
        "where -g keeps what gmetric could not send",
        arg="FILE",
        dest="unsent",
        man="Where `-g` keeps the values gmetric could not send, to add them to the next "
        "run's (a `REFRESH` hands each change over once). Default: "
        "`$XDG_STATE_HOME/tcpeekstat/` (`~/.local/state/tcpeekstat/`) and the socket path.",
    ),
    Opt("version", "version", short="v", action="version", man="Print the version and exit 0."),
    Opt("help", "help", short="h", action="help", man="Print the usage and exit 0."),
)

COMMAND = Command(
    prog="tcpeekstat",
    options=OPTIONS,
    layout=Layout(indent=4, sep="  ", column=23),
    head="usage: tcpeekstat [OPTION]\n  [OPTION]\n",
    exclusive=(("gmetric", "json"),),
)

PAGE = Page(
    name="tcpeekstat",
    summary="print the statistics of a running tcpeek",
    synopsis="`tcpeekstat` [`-j` | `-g`[<<PATH>>]] [`-U` <<path>>]",
    description=(
        "`tcpeekstat` connects to the UNIX socket of a running `tcpeek`(1), asks for its "
        "counters and prints them: by default the totals since tcpeek started, one block "
        "per filter and section.",
        "The socket protocol: the client sends one line, `GET` (totals) or `REFRESH` (the "
        "change since the previous `REFRESH`), and reads a JSON array until the server "
        "closes.",
    ),
    sections=(
        Section(
            "OUTPUT",
            (
                "The default table, one block per filter (and libpcap's counters):",
                (
                    "------------------------------------",
                    " RX",
                    "   success",
                    "     total     : 0",
                ),
                "With `-j`, the JSON array on one line:",
                (
                    '[{"RX":{"success":{"total":0,"dupsyn":0,"dupsynack":0},'
                    '"failure":{"total":10,',
                    '"timeout":0,"reject":10,"unreach":0}}},...,'
                    '{"pcap":{"stats":{"recv":89,"drop":0,"ifdrop":0}}}]',
                ),
            ),
        ),
        Section(
            "EXIT STATUS",
            (
                "0 on success; 1 on a bad command line, no socket, a refused or silent "
                "connection, a bad answer, or a gmetric that is missing or fails. Each error "
                "is one line on standard error.",
            ),
        ),
        Section("FILES", (f"{DEFAULT_SOCKET}: the default socket.",)),
        Section(
            "EXAMPLES",
            (
                (
                    "tcpeekstat",
                    "tcpeekstat -j -U /run/tcpeek.sock | jq .",
                    "tcpeekstat -g/usr/local/bin/gmetric",
                ),
            ),
        ),
        Section(
            "DIFFERENCES FROM THE ORIGINAL",
            (
                "Python 3; `-j`; `-g` takes the gmetric program's path; every failure is one "
                "line on standard error, never a traceback; answers are checked and bounded "
                "in size and time.",
            ),
        ),
        Section("SEE ALSO", ("`tcpeek`(1), `gmetric`(1)",)),
    ),
)
