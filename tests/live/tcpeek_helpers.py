"""Helpers for tcpeek's live tests: the process under test, what it prints, the clients.

In the test process:

    TcpeekProcess(popen)            reader threads over a running tcpeek's stdout (JSON
                                    lines, each with the wall time it arrived) and stderr
    parse_rows(text) / parse_summary(text)   the session table rows and the SUMMARY block
    start_attempts(lab, jobs) / finish_attempts(proc)   connections driven from a namespace
    Recorder(lab, ns, ifname)       a second capture of the same link, kept in memory
    ask(path, request)              one GET / REFRESH on the statistics socket, parsed

Run as a script inside a namespace (stdlib only, so it needs no sys.path set-up):

    tcpeek_helpers.py attempts JOBS_JSON
        JOBS_JSON is a list of {"host", "port", "timeout"}; every job runs at once in its
        own thread, bound to an ephemeral port *before* connecting, so the client port of
        a refused or timed-out attempt is known too. One JSON line per job when it ends:
        {"host", "port", "local_port", "result": connected|refused|timeout|unreachable|
        error, "errno", "elapsed"}; a connected socket is closed with a FIN at once.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.netns import Lab

HERE = Path(__file__).resolve()
Frame = tuple[int, bytes]

# --- the connecting client (script side) -------------------------------------


def _attempt(job: dict[str, Any]) -> dict[str, Any]:
    host, port = str(job["host"]), int(job["port"])
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    out: dict[str, Any] = {"host": host, "port": port, "result": "connected", "errno": 0}
    try:
        sock.settimeout(float(job.get("timeout", 15.0)))
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        out["local_port"] = sock.getsockname()[1]
        start = time.monotonic()
        try:
            sock.connect((host, port))
        except ConnectionRefusedError:
            out["result"] = "refused"
        except TimeoutError as exc:  # the kernel's ETIMEDOUT or the socket timeout
            out.update(result="timeout", errno=exc.errno or 0)
        except OSError as exc:
            gone = exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
            out.update(result="unreachable" if gone else "error", errno=exc.errno)
        out["elapsed"] = round(time.monotonic() - start, 3)
    finally:
        sock.close()
    return out


def _attempts_main(jobs_text: str) -> int:
    jobs = json.loads(jobs_text)
    lock = threading.Lock()

    def run(job: dict[str, Any]) -> None:
        result = _attempt(job)
        with lock:
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 0


# --- driving clients from the test ------------------------------------------


def start_attempts(lab: Lab, jobs: list[dict[str, Any]], ns: str | None = None) -> Any:
    """Start the attempts in the namespace (the client's by default); a Popen."""
    return lab.popen(
        ns or lab.client_ns, sys.executable, str(HERE), "attempts", json.dumps(jobs),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish_attempts(proc: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"attempts exited {proc.returncode}: {err.strip()[-2000:]}")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def job(host: str, port: int, timeout: float = 15.0) -> dict[str, Any]:
    return {"host": host, "port": port, "timeout": timeout}


# --- the tcpeek process -------------------------------------------------------


class TcpeekProcess:
    """A running `tcpeek --json`: its verdicts (with arrival time) and its stderr lines."""

    def __init__(
        self, proc: Any, on_verdict: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self.proc = proc
        self._on_verdict = on_verdict  # when given, verdicts go there and are not kept
        self._cond = threading.Condition()
        self._verdicts: list[dict[str, Any]] = []
        self._other_stdout: list[str] = []
        self._stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump_stdout(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in self.proc.stdout:
                arrived = time.time()
                with self._cond:
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        self._other_stdout.append(line)
                    else:
                        if obj.get("type") != "handshake":  # the stats object at the end
                            self._other_stdout.append(line)
                            continue
                        obj["_arrived"] = arrived
                        if self._on_verdict is not None:
                            self._on_verdict(obj)
                        else:
                            self._verdicts.append(obj)
                    self._cond.notify_all()

    def _pump_stderr(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in self.proc.stderr:
                with self._cond:
                    self._stderr.append(line)
                    self._cond.notify_all()

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    @property
    def verdicts(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._verdicts)

    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(self._stderr)

    @property
    def other_stdout(self) -> list[str]:
        with self._cond:
            return list(self._other_stdout)

    def wait_listening(self, timeout: float = 15.0) -> str:
        """The `listening on` line; AssertionError if it does not come in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._stderr:
                    if line.startswith("listening on "):
                        return line.rstrip("\n")
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    break
                self._cond.wait(min(left, 0.2))
        raise AssertionError(
            f"tcpeek did not start (exit {self.proc.poll()}): {''.join(self._stderr)[-2000:]}"
        )

    def wait_verdicts(
        self, keys: set[tuple[str, int]], timeout: float
    ) -> dict[tuple[str, int], dict[str, Any]]:
        """Wait until a verdict exists for every (client address, client port) in `keys`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = {(v["client"], v["client_port"]): v for v in self._verdicts}
                if keys <= got.keys():
                    return {k: got[k] for k in keys}
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    missing = sorted(keys - got.keys())
                    raise AssertionError(f"no verdict for {missing} within {timeout} s")
                self._cond.wait(min(left, 0.2))

    def interrupt(self, timeout: float = 15.0) -> int:
        """SIGINT, wait for the exit, and let the readers reach EOF; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = int(self.proc.wait(timeout=timeout))
        for thread in self._threads:
            thread.join(timeout=5)
        return code


# --- what tcpeek prints ------------------------------------------------------

RESULT_WORDS = {
    "     success     ": "success",
    "failure (timeout)": "timeout",
    "failure (reject) ": "reject",
    "failure (unreach)": "unreach",
}

_ROW = re.compile(
    r"^ *(?P<secs>\d+)\.(?P<ms>\d{3}) \| (?P<stamp>\d\d-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \| "
    r" *(?P<client>\S+):(?P<cport>\d+) +(?P<server>\S+):(?P<sport>\d+) *\| "
    r"(?P<result>.{17}) \| +(?P<dupsyn>\d+) +(?P<dupsynack>\d+) $"
)


@dataclass(frozen=True)
class Row:
    elapsed_ms: int
    stamp: str
    client: str
    client_port: int
    server: str
    server_port: int
    result: str
    dupsyn: int
    dupsynack: int


def parse_rows(text: str) -> list[Row]:
    """The session rows of tcpeek's stderr (addresses without IPv6 brackets)."""
    rows = []
    for line in text.splitlines():
        m = _ROW.match(line)
        if m is None:
            continue
        rows.append(
            Row(
                int(m["secs"]) * 1000 + int(m["ms"]),
                m["stamp"],
                m["client"].strip("[]"),
                int(m["cport"]),
                m["server"].strip("[]"),
                int(m["sport"]),
                RESULT_WORDS[m["result"]],
                int(m["dupsyn"]),
                int(m["dupsynack"]),
            )
        )
    return rows


COUNT_KEYS = ("success", "dupsyn", "dupsynack", "failure", "timeout", "reject", "unreach")

_SUMMARY_LINES = (
    ("success", re.compile(r"^   Success: (\d+) session$")),
    ("dupsyn", re.compile(r"^     SYN Segment Duplicate : +(\d+)$")),
    ("dupsynack", re.compile(r"^     S/A Segment Duplicate : +(\d+)$")),
    ("failure", re.compile(r"^   Failure: (\d+) session$")),
    ("timeout", re.compile(r"^     Connection Timed Out  : +(\d+)$")),
    ("reject", re.compile(r"^     Connection Rejected   : +(\d+)$")),
    ("unreach", re.compile(r"^     ICMP Unreachable      : +(\d+)$")),
)


@dataclass
class Summary:
    filters: dict[str, dict[str, int]]  # in printed order
    pcap: dict[str, int]
    seconds: float


def parse_summary(text: str) -> Summary:
    """The SUMMARY block at the end of tcpeek's stderr; AssertionError if malformed."""
    lines = text.splitlines()
    try:
        start = lines.index("========== TCPEEK SUMMARY ==========")
        end = lines.index("=" * 36, start + 1)
    except ValueError:
        raise AssertionError(f"no summary block in:\n{text[-3000:]}") from None
    block = lines[start + 1 : end]
    time_match = re.match(r"^     time : +(\d+\.\d{3}) \(sec\)$", block[2])
    assert time_match, block[:3]
    sections: list[list[str]] = []
    for line in block[3:]:
        if line == "-" * 36:
            sections.append([])
        else:
            assert sections, f"text before the first rule: {line!r}"
            sections[-1].append(line)
    filters: dict[str, dict[str, int]] = {}
    pcap: dict[str, int] = {}
    for section in sections:
        name = section[0].strip()
        if name == "pcap stats":
            for line in section[1:]:
                m = re.match(r"^   (recv|drop|ifdrop) +: (\d+)$", line)
                assert m, line
                pcap[m[1]] = int(m[2])
            continue
        assert section[0] == f" {name}" and name not in filters, section[0]
        counts: dict[str, int] = {}
        body = section[1:]
        # the ICMP line is there only with --icmp
        assert len(body) in (len(_SUMMARY_LINES) - 1, len(_SUMMARY_LINES)), f"{name}: {body}"
        for line, (key, pattern) in zip(body, _SUMMARY_LINES[: len(body)], strict=True):
            m = pattern.match(line)
            assert m, f"block {name}: {line!r}"
            counts[key] = int(m[1])
        filters[name] = counts
    return Summary(filters, pcap, float(time_match[1]))


def tally(
    verdicts: list[dict[str, Any]], names: list[str], key: str = "filters"
) -> dict[str, dict[str, int]]:
    """Per filter, the summary's counts computed from per-session verdicts.

    `key` names the list of filter names in each verdict (in the expected ones the
    test builds, or the JSON's own `filters`).
    """
    out = {name: dict.fromkeys(COUNT_KEYS, 0) for name in names}
    for v in verdicts:
        for name in v[key]:
            row = out[name]
            if v["result"] == "success":
                row["success"] += 1
                row["dupsyn"] += 1 if v["dupsyn"] else 0
                row["dupsynack"] += 1 if v["dupsynack"] else 0
            else:
                row["failure"] += 1
                row[v["result"]] += 1
    return out


def stats_document(counts: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """The GET document's filter elements for these counts (without the pcap element)."""
    return [
        {
            name: {
                "success": {
                    "total": c["success"],
                    "dupsyn": c["dupsyn"],
                    "dupsynack": c["dupsynack"],
                },
                "failure": {
                    "total": c["failure"],
                    "timeout": c["timeout"],
                    "reject": c["reject"],
                    "unreach": c["unreach"],
                },
            }
        }
        for name, c in counts.items()
    ]


def refresh_document(counts: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """The REFRESH document for these counts: no `unreach` (it is in `reject`), no pcap."""
    return [
        {
            name: {
                "success": {
                    "total": c["success"],
                    "dupsyn": c["dupsyn"],
                    "dupsynack": c["dupsynack"],
                },
                "failure": {
                    "total": c["failure"],
                    "timeout": c["timeout"],
                    "reject": c["reject"] + c["unreach"],
                },
            }
        }
        for name, c in counts.items()
    ]


def minus(
    now: dict[str, dict[str, int]], before: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    return {n: {k: v - before[n][k] for k, v in c.items()} for n, c in now.items()}


# --- the statistics socket, spoken directly ------------------------------------


def ask(path: str, request: str, timeout: float = 5.0) -> Any:
    """Send one request line and return the parsed JSON answer."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(request.encode() + b"\n")
        chunks = []
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return json.loads(b"".join(chunks))


# --- a second capture of the same link -------------------------------------------


class Recorder(threading.Thread):
    """Capture every frame of `ifname` in namespace `ns` until `finish()`."""

    def __init__(self, lab: Lab, ns: str, ifname: str) -> None:
        super().__init__(name="tcpeek-recorder", daemon=True)
        self.lab, self.ns, self.ifname = lab, ns, ifname
        self.frames: list[Frame] = []
        self._started = threading.Event()
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def begin(self, timeout: float = 10.0) -> Recorder:
        self.start()
        if not self._started.wait(timeout) or self.error is not None:
            raise AssertionError(f"recorder did not start: {self.error!r}")
        return self

    def run(self) -> None:
        from tcpscope.capture import open_live

        try:
            with self.lab.inside(self.ns):
                cap = open_live(self.ifname, 65535, False, 100, 8)
            self._started.set()
            with cap:
                while not self._halt.is_set():
                    if cap.wait(0.1) and (batch := cap.read()):
                        self.frames.extend(batch)
                quiet_until = time.monotonic() + 0.5  # the last kernel block
                while time.monotonic() < quiet_until:
                    if cap.wait(0.1) and (batch := cap.read()):
                        self.frames.extend(batch)
        except BaseException as exc:  # reported by begin() / finish()
            self.error = exc
            self._started.set()

    def finish(self, timeout: float = 10.0) -> list[Frame]:
        self._halt.set()
        self.join(timeout)
        if self.is_alive() or self.error is not None:
            raise AssertionError(f"recorder failed: {self.error!r}")
        return list(self.frames)


def handshake_copies(
    frames: list[Frame],
) -> tuple[Counter[tuple[str, int]], Counter[tuple[str, int]]]:
    """SYNs sent by and SYN/ACKs sent to each (client address, client port), in `frames`."""
    from tests.capture.frames import ACK, RST, SYN, parse_tcp

    syns: Counter[tuple[str, int]] = Counter()
    synacks: Counter[tuple[str, int]] = Counter()
    for _, frame in frames:
        seg = parse_tcp(frame)
        if seg is None:
            continue
        flags = seg.flags & (SYN | ACK | RST)
        if flags == SYN:
            syns[(seg.src, seg.sport)] += 1
        elif flags == SYN | ACK:
            synacks[(seg.dst, seg.dport)] += 1
    return syns, synacks


def last_syn_times(frames: list[Frame]) -> dict[tuple[str, int], int]:
    """When each (client address, client port) last sent a SYN, in ns."""
    from tests.capture.frames import ACK, RST, SYN, parse_tcp

    last: dict[tuple[str, int], int] = {}
    for ts, frame in frames:
        seg = parse_tcp(frame)
        if seg is not None and seg.flags & (SYN | ACK | RST) == SYN:
            last[(seg.src, seg.sport)] = ts
    return last


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "attempts":
        sys.exit(_attempts_main(sys.argv[2]))
    sys.stderr.write("usage: tcpeek_helpers.py attempts JOBS_JSON\n")
    sys.exit(2)
