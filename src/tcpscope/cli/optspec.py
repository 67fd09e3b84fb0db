"""One table of options per command: the parser, `--help`, the man page and the
Python API's keywords all read it, so they cannot drift apart.

Adding an option is one `Opt` entry in the command's table (`miruo_spec`,
`tcpeek_spec`, `tcpeekstat_spec`) and, when it sets something, a field of the
same name in the command's `Options`.
"""

from __future__ import annotations

import argparse
import getopt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from tcpscope.errors import UsageError

# (the value as written, the option as the user spelled it) -> the parsed value.
# Raises UsageError with the message the user sees.
Convert = Callable[[str, str], Any]


@dataclass(frozen=True)
class Opt:
    """One command-line option."""

    long: str  # "retransmit" for --retransmit
    help: str  # the comment of its --help line, as printed
    short: str = ""  # "r" for -r
    arg: str = ""  # the value as --help spells it ("time[ms]"); "" = takes none
    dest: str = ""  # the Options field it sets; "" for -h and -V
    convert: Convert | None = None  # None: the text as given (or True for a flag)
    count: bool = False  # a flag that may repeat and is counted (-qq)
    append: bool = False  # a value that may repeat, kept in order (--local A --local B)
    optional: bool = False  # the value may be left out (tcpeekstat -g[PATH])
    const: str = ""  # the value when an optional value is left out
    aliases: tuple[str, ...] = ()  # other long spellings accepted, not listed in --help
    action: str = ""  # "help" or "version": answered before anything runs
    api: str = ""  # its keyword in tcpscope.sessions()/handshakes(); "" = not offered
    man: str = ""  # the man page's paragraph (see manpage.py for the markup)
    hidden: bool = False  # accepted but left out of --help (and named in the man page)

    @property
    def takes_value(self) -> bool:
        return bool(self.arg)

    @property
    def names(self) -> tuple[str, ...]:
        """Every spelling, as getopt reports it: "-r", "--retransmit", aliases."""
        short = (f"-{self.short}",) if self.short else ()
        return short + tuple(f"--{name}" for name in (self.long, *self.aliases))


@dataclass(frozen=True)
class Layout:
    """How the help lines are laid out: `    -r, --retransmit=time[ms]      # ...`."""

    indent: int
    sep: str  # between the short and the long spelling
    column: int  # where "# comment" starts


@dataclass
class Parsed:
    values: dict[str, Any] = field(default_factory=dict)
    operands: list[str] = field(default_factory=list)
    action: str = "run"


@dataclass(frozen=True)
class Command:
    """A command's options, in the order --help lists them, and its usage text."""

    prog: str
    options: tuple[Opt, ...]
    layout: Layout
    head: str  # the usage text before the option lines
    tail: str = ""  # and after them
    exclusive: tuple[tuple[str, str], ...] = ()  # dests that cannot both be given
    requires: tuple[tuple[str, str], ...] = ()  # (a, b): a needs b given too

    def usage(self) -> str:
        lines = [help_line(opt, self.layout) for opt in self.options if not opt.hidden]
        return self.head + "".join(line + "\n" for line in lines) + self.tail

    # --- the getopt parser (miruo, tcpeek)

    def getopt_short(self) -> str:
        return "".join(o.short + (":" if o.takes_value else "") for o in self.options if o.short)

    def getopt_long(self) -> list[str]:
        suffix = {True: "=", False: ""}
        return [
            name + suffix[o.takes_value] for o in self.options for name in (o.long, *o.aliases)
        ]

    def by_name(self) -> dict[str, Opt]:
        return {name: opt for opt in self.options for name in opt.names}

    def parse(self, argv: Sequence[str]) -> Parsed:
        """GNU style: `-x V`, `-xV`, `--long=V`, `--long V`; options may follow operands.

        -h/-V end the parse at once (what else was given does not matter).
        """
        try:
            pairs, rest = getopt.gnu_getopt(list(argv), self.getopt_short(), self.getopt_long())
        except getopt.GetoptError as err:
            raise UsageError(str(err)) from None
        table = self.by_name()
        parsed = Parsed(operands=rest)
        given: dict[str, str] = {}
        for name, text in pairs:
            opt = table[name]
            if opt.action:
                return Parsed(action=opt.action)
            parsed.values[opt.dest] = self._value(opt, name, text, parsed.values)
            given.setdefault(opt.dest, self.spelling(opt.dest))
        self.check_exclusive(given)
        return parsed

    @staticmethod
    def _value(opt: Opt, name: str, text: str, values: dict[str, Any]) -> Any:
        if opt.count:
            return int(values.get(opt.dest, 0)) + 1
        if not opt.takes_value:
            return True
        value = opt.convert(text, name) if opt.convert is not None else text
        if opt.append:
            return (*values.get(opt.dest, ()), value)
        return value

    def check_exclusive(self, given: dict[str, str]) -> None:
        for a, b in self.exclusive:
            if a in given and b in given:
                raise UsageError(f"give {given[a]} or {given[b]}, not both")
        for a, b in self.requires:
            if a in given and b not in given:
                raise UsageError(f"{given[a]} needs {self.spelling(b)}")

    # --- the argparse parser (tcpeekstat: -g takes an optional value)

    def argparser(self) -> argparse.ArgumentParser:
        parser = _RaisingParser(prog=self.prog, add_help=False)
        for opt in self.options:
            names = list(opt.names)
            if opt.optional:
                parser.add_argument(
                    *names, dest=opt.dest, nargs="?", const=opt.const, default=None
                )
            elif opt.takes_value:
                parser.add_argument(*names, dest=opt.dest or opt.action, default=None)
            else:
                parser.add_argument(*names, dest=opt.dest or opt.action, action="store_true")
        return parser

    def spelling(self, dest: str) -> str:
        """How messages name the option that sets `dest`: "-g" (or "--all")."""
        opt = self.option(dest)
        return f"-{opt.short}" if opt.short else f"--{opt.long}"

    def option(self, dest: str) -> Opt:
        for opt in self.options:
            if opt.dest == dest:
                return opt
        raise KeyError(dest)


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def spelled(opt: Opt, sep: str = ", ") -> str:
    """`-r, --retransmit=time[ms]` (or `--all`)."""
    value = ""
    if opt.takes_value:
        value = f"[={opt.arg}]" if opt.optional else f"={opt.arg}"
    long = f"--{opt.long}{value}"
    return f"-{opt.short}{sep}{long}" if opt.short else long


def help_line(opt: Opt, layout: Layout) -> str:
    if opt.short:
        left = " " * layout.indent + spelled(opt, layout.sep)
    else:
        left = " " * (layout.indent + 2 + len(layout.sep)) + spelled(opt)
    left = left.ljust(layout.column) if len(left) < layout.column else left + " "
    return f"{left}# {opt.help}".rstrip()
