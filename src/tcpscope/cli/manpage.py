"""man pages in roff, written from a command's option table and a little prose.

Prose markup: `` `text` `` is bold (commands, options, literal values),
``<<text>>`` italic (things the user replaces). A block is a paragraph (a str)
or a verbatim example (a tuple of lines, printed as they are).
`scripts/make_manpages.py` writes the pages into man/; a test checks they are
current.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tcpscope.cli.optspec import Command, Opt

Block = str | tuple[str, ...]

_BOLD = re.compile(r"`([^`]+)`")
_ITALIC = re.compile(r"<<(.+?)>>")


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Page:
    name: str
    summary: str  # the NAME line after the dash
    synopsis: str
    description: tuple[str, ...]
    sections: tuple[Section, ...]  # after OPTIONS, in order


def escape(text: str) -> str:
    """Plain text to roff: backslashes and hyphens escaped, no control lines."""
    return text.replace("\\", "\\e").replace("-", "\\-")


def inline(text: str) -> str:
    out = _ITALIC.sub(lambda m: f"\\fI{m.group(1)}\\fR", escape(text))
    out = _BOLD.sub(lambda m: f"\\fB{m.group(1)}\\fR", out)
    return _safe_start(out)


def _safe_start(line: str) -> str:
    return "\\&" + line if line.startswith((".", "'")) else line


def _block(block: Block) -> list[str]:
    if isinstance(block, str):
        return [".PP", inline(block)]
    return [".PP", ".RS 4", ".nf", *(_safe_start(escape(line)) for line in block), ".fi", ".RE"]


def option_term(opt: Opt) -> str:
    """`-r`, `--retransmit`=<<time[ms]>> in roff."""
    names = []
    if opt.short:
        names.append(f"\\fB\\-{escape(opt.short)}\\fR")
    value = ""
    if opt.takes_value:
        arg = f"\\fI{escape(opt.arg)}\\fR"
        value = f"[={arg}]" if opt.optional else f"={arg}"
    names.append(f"\\fB\\-\\-{escape(opt.long)}\\fR{value}")
    return ", ".join(names)


def option_lines(opt: Opt) -> list[str]:
    lines = [".TP", option_term(opt), inline(opt.man or opt.help)]
    if opt.aliases:
        spelled = ", ".join(f"`--{alias}`" for alias in opt.aliases)
        lines.append(inline(f"Also spelled {spelled}."))
    return lines


def render(page: Page, command: Command, version: str) -> str:
    title = page.name.upper()
    lines = [
        f'.TH {title} 1 "" "tcpscope {escape(version)}" "User Commands"',
        ".SH NAME",
        f"{escape(page.name)} \\- {escape(page.summary)}",
        ".SH SYNOPSIS",
        inline(page.synopsis),
        ".SH DESCRIPTION",
    ]
    for i, paragraph in enumerate(page.description):
        if i:
            lines.append(".PP")
        lines.append(inline(paragraph))
    lines.append(".SH OPTIONS")
    for opt in command.options:
        lines.extend(option_lines(opt))
    for section in page.sections:
        lines.append(f".SH {escape(section.title)}")
        for block in section.blocks:
            lines.extend(_block(block))
    return "\n".join(lines) + "\n"
