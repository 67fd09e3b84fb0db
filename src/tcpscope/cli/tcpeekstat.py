"""tcpeekstat: ask a running tcpeek for its statistics over the UNIX socket.

Default: GET and print one block per filter and section. ``-j``: GET and print
the JSON on one line. ``-g``: REFRESH and feed the reject, timeout, dupsyn and
dupsynack deltas to Ganglia's ``gmetric``. Every failure is one line on stderr
and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from tcpscope import __version__
from tcpscope.cli.tcpeekstat_spec import COMMAND, DEFAULT_SOCKET
from tcpscope.errors import TcpscopeError, UsageError

PROG = "tcpeekstat"
TIMEOUT = 10.0  # seconds for the whole exchange with the server
MAX_ANSWER = 16 * 1024 * 1024
GMETRIC_ITEMS = ("reject", "timeout", "dupsyn", "dupsynack")
GMETRIC_TIMEOUT = 10.0
RULE = "-" * 36

# The answer, checked: [(element name, [(section, [(item, value)])])]
Stats = list[tuple[str, list[tuple[str, list[tuple[str, int]]]]]]


class StatError(TcpscopeError):
    """Anything that ends tcpeekstat with a one-line message."""


USAGE = COMMAND.usage()


def _parser() -> argparse.ArgumentParser:
    parser = COMMAND.argparser()
    parser.set_defaults(socket=DEFAULT_SOCKET)
    return parser


# --- talking to the server ----------------------------------------------


def fetch(path: str, request: str, timeout: float = TIMEOUT) -> bytes:
    """Send one request line and read the answer until the server closes."""
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(request.encode("ascii") + b"\r\n")
        chunks: list[bytes] = []
        size = 0
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_ANSWER:
                raise StatError(f"answer from {path} is larger than {MAX_ANSWER} bytes")
            chunks.append(chunk)
    except FileNotFoundError:
        raise StatError(f"no socket at {path} (is tcpeek running?)") from None
    except ConnectionRefusedError:
        raise StatError(f"connection refused by {path} (is tcpeek running?)") from None
    except PermissionError:
        raise StatError(f"permission denied on {path}") from None
    except TimeoutError:
        raise StatError(f"no answer from {path} within {timeout:g} s") from None
    except ConnectionResetError:
        raise StatError(f"connection reset by {path}") from None
    except OSError as err:
        raise StatError(f"{path}: {err.strerror or err}") from None
    finally:
        sock.close()
    answer = b"".join(chunks)
    if not answer.strip():
        raise StatError(f"{path} closed the connection without answering")
    return answer


def parse_answer(answer: bytes, path: str) -> tuple[Stats, object]:
    """Check the answer's layout; return it as nested pairs and as plain JSON."""
    try:
        doc = json.loads(answer)
    except (UnicodeDecodeError, ValueError) as err:
        raise StatError(f"bad answer from {path}: not JSON ({err})") from None
    if isinstance(doc, dict) and "error" in doc:
        raise StatError(f"server error: {doc['error']}")
    bad = StatError(f"bad answer from {path}: unexpected JSON layout")
    if not isinstance(doc, list):
        raise bad
    stats: Stats = []
    for element in doc:
        if not isinstance(element, dict) or len(element) != 1:
            raise bad
        ((name, sections),) = element.items()
        if not isinstance(sections, dict):
            raise bad
        checked: list[tuple[str, list[tuple[str, int]]]] = []
        for section, items in sections.items():
            if not isinstance(items, dict):
                raise bad
            pairs: list[tuple[str, int]] = []
            for item, value in items.items():
                if not isinstance(value, int) or isinstance(value, bool):
                    raise bad
                pairs.append((item, value))
            checked.append((section, pairs))
        stats.append((name, checked))
    return stats, doc


# --- the three outputs ------------------------------------------------------


def render_text(stats: Stats) -> str:
    """One block per filter (and the pcap element), one sub-block per section."""
    lines: list[str] = []
    for name, sections in stats:
        lines.append(RULE)
        lines.append(f" {name}")
        width = max((len(item) for _, items in sections for item, _ in items), default=0)
        for section, items in sections:
            lines.append(f"   {section}")
            lines.extend(f"     {item:<{width}} : {value}" for item, value in items)
    lines.append(RULE)
    return "\n".join(lines)


def gmetric_calls(stats: Stats) -> list[tuple[str, int]]:
    """(metric name, value) for reject, timeout, dupsyn and dupsynack of every filter."""
    calls: list[tuple[str, int]] = []
    for name, sections in stats:
        if name == "pcap":
            continue
        for section, items in sections:
            for item, value in items:
                if item in GMETRIC_ITEMS:
                    calls.append((f"tcpeek_{name}_{section}_{item}", value))
    return calls


def run_gmetric(program: str, calls: Sequence[tuple[str, int]]) -> None:
    binary = shutil.which(program)
    if binary is None:
        raise StatError(f"gmetric not found: {program}")
    for metric, value in calls:
        argv = [binary, "-n", metric, "-v", str(value), "-t", "uint32"]
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=GMETRIC_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StatError(f"gmetric timed out for {metric}") from None
        except OSError as err:
            raise StatError(f"cannot run {binary}: {err.strerror or err}") from None
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = f": {said[0]}" if said else ""
            raise StatError(f"gmetric failed (exit {done.returncode}) for {metric}{detail}")


# --- entry points -----------------------------------------------------------


def main(
    argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
        COMMAND.check_exclusive(
            {dest: COMMAND.spelling(dest) for dest in ("gmetric", "json") if getattr(args, dest)}
        )
    except UsageError as usage:
        err.write(USAGE)
        err.write(f"{PROG}: {usage}\n")
        return 1
    if args.help:
        out.write(USAGE)
        return 0
    if args.version:
        out.write(f"{PROG} (tcpscope) {__version__}\n")
        return 0
    try:
        if args.gmetric is not None:
            stats, _ = parse_answer(fetch(args.socket, "REFRESH", TIMEOUT), args.socket)
            run_gmetric(args.gmetric, gmetric_calls(stats))
        elif args.json:
            _, doc = parse_answer(fetch(args.socket, "GET", TIMEOUT), args.socket)
            out.write(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")
        else:
            stats, _ = parse_answer(fetch(args.socket, "GET", TIMEOUT), args.socket)
            out.write(render_text(stats) + "\n")
    except TcpscopeError as error:
        err.write(f"{PROG}: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return 1
    except BrokenPipeError:
        return 1  # whoever read our output went away; nothing useful to say
    return 0


def entry() -> None:
    sys.exit(main())
