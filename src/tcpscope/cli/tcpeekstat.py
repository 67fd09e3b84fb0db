"""tcpeekstat: ask a running tcpeek for its statistics over the UNIX socket.

Default: GET and print one block per filter and section. ``-j``: GET and print
the JSON on one line. ``-g``: REFRESH and feed the reject, timeout, dupsyn and
dupsynack deltas to Ganglia's ``gmetric``. Every failure is one line on stderr
and exit status 1.

A REFRESH hands over the change since the previous one, once: so that a failing
gmetric loses nothing, the values it could not send are kept in a small file
(``--unsent``, default ``$XDG_STATE_HOME/tcpeekstat/`` + the socket path) and
added to the next run's. Whatever the server sends is shown with its control
characters escaped (``\x1b``), never raw on a terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
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
    parser.set_defaults(socket=DEFAULT_SOCKET, unsent=None)
    return parser


# --- talking to the server ----------------------------------------------


def fetch(path: str, request: str, timeout: float = TIMEOUT) -> bytes:
    """Send one request line and read the answer until the server closes."""
    if not path:
        raise StatError("the socket path is empty (-U PATH)")
    if "\0" in path:
        raise StatError(f"the socket path {printable(path)} holds a NUL byte")
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
        raise StatError(f"{printable(path)}: {err.strerror or err}") from None
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
    except RecursionError:
        raise StatError(f"bad answer from {path}: JSON nested too deeply") from None
    if isinstance(doc, dict) and "error" in doc:
        raise StatError(f"server error: {printable(str(doc['error']))[:200]}")
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


def printable(text: str) -> str:
    """`text` with control characters (C0, DEL, C1) escaped, for a terminal."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def json_printable(text: str) -> str:
    """JSON text with the control characters json leaves raw (DEL, C1) as \\u escapes."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        else:
            out.append(json.dumps(ch)[1:-1] if ord(ch) > 0xFFFF else f"\\u{ord(ch):04x}")
    return "".join(out)


def render_text(stats: Stats) -> str:
    """One block per filter (and the pcap element), one sub-block per section."""
    lines: list[str] = []
    for name, sections in stats:
        lines.append(RULE)
        lines.append(f" {printable(name)}")
        width = max((len(printable(i)) for _, items in sections for i, _ in items), default=0)
        for section, items in sections:
            lines.append(f"   {printable(section)}")
            lines.extend(f"     {printable(item):<{width}} : {value}" for item, value in items)
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


def find_gmetric(program: str) -> str:
    binary = shutil.which(program)
    if binary is None:
        raise StatError(f"gmetric not found: {printable(program)}")
    return binary


def unsent_path(socket_path: str) -> str:
    """Where -g keeps what gmetric could not send, one file per socket."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    name = urllib.parse.quote(os.path.abspath(socket_path), safe="") + ".unsent.json"
    return os.path.join(base, "tcpeekstat", name)


def load_unsent(path: str) -> dict[str, int]:
    try:
        with open(path, encoding="utf-8") as stream:
            doc = json.load(stream)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as err:
        raise StatError(f"{path}: cannot read the unsent values ({err})") from None
    if not isinstance(doc, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in doc.values()
    ):
        raise StatError(f"{path}: not a file of unsent values")
    return {str(k): int(v) for k, v in doc.items()}


def save_unsent(path: str, values: dict[str, int]) -> None:
    if not values:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(values, stream)
    os.replace(temporary, path)


def with_unsent(calls: list[tuple[str, int]], unsent: dict[str, int]) -> list[tuple[str, int]]:
    """This REFRESH's values plus what earlier runs could not send (uint32 wraps)."""
    merged = [(m, (v + unsent.get(m, 0)) & 0xFFFFFFFF) for m, v in calls]
    names = {m for m, _ in calls}
    return merged + [(m, v) for m, v in unsent.items() if m not in names]


def send_refresh(program: str, socket_path: str, unsent_file: str | None) -> None:
    """-g: REFRESH, add what was left unsent, send; keep what could not be sent."""
    binary = find_gmetric(program)  # before the REFRESH: a missing gmetric loses nothing
    keep = unsent_file or unsent_path(socket_path)
    earlier = load_unsent(keep)
    stats, _ = parse_answer(fetch(socket_path, "REFRESH", TIMEOUT), socket_path)
    calls = with_unsent(gmetric_calls(stats), earlier)
    try:
        run_gmetric(binary, calls)
    except GmetricFailed as failed:
        _keep_unsent(keep, dict(calls[failed.sent :]))
        kept = len(calls) - failed.sent
        raise StatError(f"{failed}; {kept} values kept for the next run") from None
    _keep_unsent(keep, {})


def _keep_unsent(path: str, values: dict[str, int]) -> None:
    try:
        save_unsent(path, values)
    except OSError as err:
        raise StatError(f"{path}: cannot keep the unsent values: {err.strerror or err}") from None


class GmetricFailed(StatError):
    """gmetric failed after `sent` values had gone out."""

    def __init__(self, message: str, sent: int) -> None:
        super().__init__(message)
        self.sent = sent


def run_gmetric(program: str, calls: Sequence[tuple[str, int]]) -> None:
    """Send each value in order; GmetricFailed at the first that fails."""
    binary = find_gmetric(program)
    for sent, (metric, value) in enumerate(calls):
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
            raise GmetricFailed(f"gmetric timed out for {printable(metric)}", sent) from None
        except OSError as err:
            raise GmetricFailed(f"cannot run {binary}: {err.strerror or err}", sent) from None
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = f": {printable(said[0])[:200]}" if said else ""
            raise GmetricFailed(
                f"gmetric failed (exit {done.returncode}) for {printable(metric)}{detail}", sent
            )


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
            send_refresh(args.gmetric, args.socket, args.unsent)
        elif args.json:
            _, doc = parse_answer(fetch(args.socket, "GET", TIMEOUT), args.socket)
            out.write(json_printable(json.dumps(doc, separators=(",", ":"), ensure_ascii=False)))
            out.write("\n")
        else:
            stats, _ = parse_answer(fetch(args.socket, "GET", TIMEOUT), args.socket)
            out.write(render_text(stats) + "\n")
    except TcpscopeError as error:
        err.write(f"{PROG}: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1  # whoever read our output went away; nothing useful to say
    return 0


def entry() -> None:
    sys.exit(main())
