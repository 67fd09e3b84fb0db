"""The three man pages, rendered from the commands' option tables (see manpage.py)."""

from __future__ import annotations

from tcpscope import __version__
from tcpscope.cli import miruo_spec, tcpeek_spec, tcpeekstat_spec
from tcpscope.cli.manpage import render

SPECS = {"miruo": miruo_spec, "tcpeek": tcpeek_spec, "tcpeekstat": tcpeekstat_spec}


def pages() -> dict[str, str]:
    """File name ("miruo.1") -> roff text."""
    return {
        f"{name}.1": render(spec.PAGE, spec.COMMAND, __version__) for name, spec in SPECS.items()
    }
