"""The namespace lab: two network namespaces joined by a veth pair, for live tests.

Live tests need root. They build a private little network, drive real TCP
between its two ends and capture it, and leave nothing behind:

    from tests.support.netns import Lab, require_root_and_tools

    def test_something() -> None:
        require_root_and_tools()            # skip (or fail when $CI is set) unless root
        with Lab() as lab:                   # namespaces, veth, addresses; all removed on exit
            server = lab.start_server([80], mode="http")        # in the server namespace
            miruo = lab.popen(lab.client_ns, sys.executable, "-m", "tcpscope", "miruo",
                              "-i", lab.client_if, stdout=subprocess.PIPE, text=True)
            attempts = lab.connect(lab.server4, 80, send="GET / HTTP/1.1\\r\\n\\r\\n", recv="close")
            assert attempts[0]["result"] == "connected"

`tests/live/conftest.py` offers the same as a `lab` fixture.

What a `Lab` has (X is a per-lab number, so captures of different labs differ):

    client_ns, server_ns     "<prefix>-c", "<prefix>-s" (prefix unique per lab)
    client_if, server_if     the veth ends, one in each namespace
    client4, server4         198.18.X.1 and 198.18.X.2 (/24)
    client6, server6         fd00:X::1 and fd00:X::2 (/64, no duplicate-address wait)

and these methods (ns is a namespace name):

    run(ns, *cmd, check=True, timeout=60, input=None)  CompletedProcess, text output captured
    popen(ns, *cmd, **popen_kw)      Popen; killed at exit if still running
    nft(ns, ruleset)                  load an nft ruleset (`nft -f -`) into the namespace
    nft_flush(ns)                     remove every nft rule of the namespace
    sysctl(ns, key, value)            e.g. sysctl(lab.client_ns, "net.ipv4.tcp_syn_retries", 1)
    inside(ns)                        context manager: the calling *thread* enters the
                                      namespace (setns), e.g. to open a capture in-process;
                                      sockets and captures opened there stay bound to it
    start_server(ports, mode="echo", ns=server_ns)   nettool server; returns once listening
    connect(host, port, count=1, ns=client_ns, timeout=5.0, send="", recv="", rst=False,
            hold=0.0)                 nettool client; one dict per attempt: "result" is
                                      connected / refused / timeout / unreachable / error,
                                      plus "local_port", "reply", "error", "elapsed"
    connect_popen(host, port, ...)    the same client as a Popen (stdout=PIPE, text), for
                                      scenarios that interleave (see nettool's --pause-stdin)

The helper programs live in `tests/support/nettool.py` (stdlib only; its
docstring lists the options). Rules kept here: addresses only in 198.18.0.0/15
and fd00::/8, traffic only between the two namespaces, everything deleted on
exit even after a failure, every command bounded by a timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

NETTOOL = Path(__file__).with_name("nettool.py")
CLONE_NEWNET = 0x40000000
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
_apt_updated = False


def _unavailable(reason: str) -> None:
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"live test cannot run in CI: {reason}")
    pytest.skip(reason)


def _which(tool: str) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + _SBIN
    return shutil.which(tool, path=path)


def _install_nftables() -> None:
    global _apt_updated
    apt = _which("apt-get")
    if apt is None:
        _unavailable("nft is missing and apt-get is not available to install nftables")
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        subprocess.run([apt, "update"], env=env, capture_output=True, timeout=600, check=False)
        _apt_updated = True
    done = subprocess.run(
        [apt, "install", "-y", "--no-install-recommends", "nftables"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or _which("nft") is None:
        _unavailable(f"could not install nftables: {done.stderr.strip()[-300:]}")


def require_root_and_tools(nft: bool = True) -> None:
    """Skip the test unless it can build a lab (fail instead when $CI is set).

    Needs root and `ip`; with `nft`, installs nftables with apt-get when `nft`
    is missing (running `apt-get update` once per process).
    """
    if os.geteuid() != 0:
        _unavailable("live tests need root (network namespaces)")
    if _which("ip") is None:
        _unavailable("iproute2 'ip' is not installed")
    if nft and _which("nft") is None:
        _install_nftables()


class LabError(RuntimeError):
    """Building or driving the lab failed (the message has the command's stderr)."""


def _libc_setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise LabError(f"setns: {os.strerror(err)}")


class Lab:
    """Two namespaces, client and server, joined by a veth pair. A context manager."""

    def __init__(self) -> None:
        self.prefix = "tsl" + secrets.token_hex(3)
        self.subnet = 1 + secrets.randbelow(254)
        self.client_ns = f"{self.prefix}-c"
        self.server_ns = f"{self.prefix}-s"
        self.client_if = f"{self.prefix}c"
        self.server_if = f"{self.prefix}s"
        self.client4 = f"198.18.{self.subnet}.1"
        self.server4 = f"198.18.{self.subnet}.2"
        self.client6 = f"fd00:{self.subnet:x}::1"
        self.server6 = f"fd00:{self.subnet:x}::2"
        self._ip = _which("ip") or "ip"
        self._procs: list[subprocess.Popen[Any]] = []
        self._created: list[str] = []

    # --- building and tearing down

    def __enter__(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ipcmd(self, *args: str) -> None:
        done = subprocess.run(
            [self._ip, *args], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise LabError(f"ip {' '.join(args)}: {done.stderr.strip()}")

    def _build(self) -> None:
        for ns in (self.client_ns, self.server_ns):
            self._ipcmd("netns", "add", ns)
            self._created.append(ns)
        self._ipcmd(
            "link", "add", self.client_if, "netns", self.client_ns, "type", "veth",
            "peer", "name", self.server_if, "netns", self.server_ns,
        )  # fmt: skip
        sides = (
            (self.client_ns, self.client_if, self.client4, self.client6),
            (self.server_ns, self.server_if, self.server4, self.server6),
        )
        for ns, ifname, addr4, addr6 in sides:
            self._ipcmd("-n", ns, "link", "set", "lo", "up")
            self._ipcmd("-n", ns, "addr", "add", f"{addr4}/24", "dev", ifname)
            self._ipcmd("-n", ns, "-6", "addr", "add", f"{addr6}/64", "dev", ifname, "nodad")
            self._ipcmd("-n", ns, "link", "set", ifname, "up")
        self._wait_carrier()

    def _wait_carrier(self) -> None:
        deadline = time.monotonic() + 5.0
        for ns, ifname in ((self.client_ns, self.client_if), (self.server_ns, self.server_if)):
            while True:
                shown = subprocess.run(
                    [self._ip, "-n", ns, "-o", "link", "show", "dev", ifname],
                    capture_output=True, text=True, timeout=10, check=False,
                )  # fmt: skip
                if "LOWER_UP" in shown.stdout:
                    break
                if time.monotonic() > deadline:
                    raise LabError(f"{ifname} in {ns} did not come up: {shown.stdout.strip()}")
                time.sleep(0.05)

    def close(self) -> None:
        """Stop what the lab started and delete both namespaces (idempotent)."""
        for proc in self._procs:
            _stop(proc)
        self._procs.clear()
        for ns in self._created:
            self._kill_leftovers(ns)
            subprocess.run(
                [self._ip, "netns", "del", ns], capture_output=True, timeout=30, check=False
            )
        self._created.clear()

    def _kill_leftovers(self, ns: str) -> None:
        # Only processes inside this lab's own namespaces, which this lab started.
        listed = subprocess.run(
            [self._ip, "netns", "pids", ns], capture_output=True, text=True, timeout=10, check=False
        )
        for word in listed.stdout.split():
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(word), signal.SIGKILL)

    # --- running things inside

    def _wrap(self, ns: str, cmd: tuple[Any, ...]) -> list[str]:
        if ns not in (self.client_ns, self.server_ns):
            raise LabError(f"{ns!r} is not one of this lab's namespaces")
        return [self._ip, "netns", "exec", ns, *(str(c) for c in cmd)]

    def run(
        self,
        ns: str,
        *cmd: Any,
        check: bool = True,
        timeout: float = 60.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the namespace and wait for it (text stdout/stderr captured)."""
        done = subprocess.run(
            self._wrap(ns, cmd), capture_output=True, text=True, timeout=timeout, input=input,
            check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise LabError(
                f"in {ns}: {' '.join(map(str, cmd))} exited {done.returncode}: "
                f"{done.stderr.strip()[-2000:]}"
            )
        return done

    def popen(self, ns: str, *cmd: Any, **kw: Any) -> subprocess.Popen[Any]:
        """Start a command in the namespace; it is stopped at exit if still running."""
        proc: subprocess.Popen[Any] = subprocess.Popen(self._wrap(ns, cmd), **kw)
        self._procs.append(proc)
        return proc

    def nft(self, ns: str, ruleset: str) -> None:
        """Load an nft ruleset (as for `nft -f`) into the namespace."""
        self.run(ns, _which("nft") or "nft", "-f", "-", input=ruleset, timeout=30)

    def nft_flush(self, ns: str) -> None:
        """Remove every nft table of the namespace."""
        self.run(ns, _which("nft") or "nft", "flush", "ruleset", timeout=30)

    def sysctl(self, ns: str, key: str, value: object) -> None:
        """Set a sysctl of the namespace, e.g. ("net.ipv4.tcp_syn_retries", 1)."""
        path = "/proc/sys/" + key.replace(".", "/")
        code = "import sys; open(sys.argv[1], 'w').write(sys.argv[2])"
        self.run(ns, sys.executable, "-c", code, path, str(value), timeout=30)

    @contextlib.contextmanager
    def inside(self, ns: str) -> Iterator[None]:
        """Move the calling thread into the namespace for the block, then back."""
        if ns not in (self.client_ns, self.server_ns):
            raise LabError(f"{ns!r} is not one of this lab's namespaces")
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                _libc_setns(target)
            finally:
                os.close(target)
            try:
                yield
            finally:
                _libc_setns(home)
        finally:
            os.close(home)

    # --- the nettool helpers

    def start_server(
        self, ports: list[int], mode: str = "echo", ns: str | None = None, timeout: float = 10.0
    ) -> subprocess.Popen[str]:
        """Start nettool's server listening on `ports` (dual-stack); return once it is ready."""
        args: list[Any] = [sys.executable, str(NETTOOL), "serve", "--mode", mode]
        for port in ports:
            args += ["--port", port]
        proc: subprocess.Popen[str] = self.popen(
            ns or self.server_ns, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = _readline(proc, timeout)
        if not line or json.loads(line).get("event") != "ready":
            proc.kill()
            proc.wait(timeout=5)
            why = proc.stderr.read() if proc.stderr else ""
            _stop(proc)
            raise LabError(f"server did not start: {line!r} {why.strip()[-2000:]}")
        return proc

    def _client_args(
        self,
        host: str,
        port: int,
        count: int,
        timeout: float,
        send: str,
        recv: str | int,
        rst: bool,
        hold: float,
        pause_stdin: bool,
    ) -> list[Any]:
        args: list[Any] = [
            sys.executable, str(NETTOOL), "connect", host, port,
            "--count", count, "--timeout", timeout,
        ]  # fmt: skip
        if send:
            args += ["--send", send]
        if recv != "":
            args += ["--recv", recv]
        if rst:
            args.append("--rst")
        if hold:
            args += ["--hold", hold]
        if pause_stdin:
            args.append("--pause-stdin")
        return args

    def connect(
        self,
        host: str,
        port: int,
        count: int = 1,
        ns: str | None = None,
        timeout: float = 5.0,
        send: str = "",
        recv: str | int = "",
        rst: bool = False,
        hold: float = 0.0,
    ) -> list[dict[str, Any]]:
        """Connect `count` times from the namespace (client by default); one dict per attempt."""
        args = self._client_args(host, port, count, timeout, send, recv, rst, hold, False)
        budget = count * (timeout * 3 + hold + 5)
        done = self.run(ns or self.client_ns, *args, timeout=budget)
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def connect_popen(
        self,
        host: str,
        port: int,
        count: int = 1,
        ns: str | None = None,
        timeout: float = 5.0,
        send: str = "",
        recv: str | int = "",
        rst: bool = False,
        hold: float = 0.0,
        pause_stdin: bool = False,
    ) -> subprocess.Popen[str]:
        """The same client, started in the background (stdin/stdout pipes, text)."""
        args = self._client_args(host, port, count, timeout, send, recv, rst, hold, pause_stdin)
        return self.popen(
            ns or self.client_ns, *args,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line of the process's stdout, or "" after `timeout` seconds or at EOF.

    A reader thread per process feeds a queue, so lines already buffered are
    never missed and a silent process cannot block the caller.
    """
    lines: queue.Queue[str] | None = getattr(proc, "_lab_lines", None)
    if lines is None:
        lines = queue.Queue()
        proc._lab_lines = lines  # type: ignore[attr-defined]

        def pump(out: Any, sink: queue.Queue[str]) -> None:
            with contextlib.suppress(OSError, ValueError):
                for line in out:
                    sink.put(line)
            sink.put("")

        threading.Thread(target=pump, args=(proc.stdout, lines), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


def read_json_line(proc: subprocess.Popen[str], timeout: float = 10.0) -> dict[str, Any]:
    """The next JSON line a nettool process prints; LabError on timeout or EOF."""
    line = _readline(proc, timeout)
    if not line:
        raise LabError(f"no output from {proc.args!r} within {timeout} s")
    result: dict[str, Any] = json.loads(line)
    return result


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
