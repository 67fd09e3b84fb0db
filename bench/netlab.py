"""Two network namespaces joined by a veth pair, for the live capacity bench.

    with VethLab() as lab:                        # removed on exit, also after Ctrl-C
        lab.run(lab.send_ns, "tcpreplay", "-i", lab.send_if, "x.pcap")
        proc = lab.popen(lab.recv_ns, "tcpdump", "-i", lab.recv_if)

Smaller than tests/support/netns.Lab on purpose: no IPv6 (its neighbour and
router messages would be counted as received packets), no servers, no nft. The
replayed frames carry their own addresses (198.18.0.0/15, bench/gen.py) and MAC
addresses that are not the receiving end's, so the receiving kernel drops them
after the capture sockets have seen them and never answers. The veth ends get
fixed, locally administered MACs that no bench capture uses, and one address
each in 198.18.0.0/15.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
from types import TracebackType
from typing import Any

_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
SEND_MAC = "02:00:00:00:12:01"
RECV_MAC = "02:00:00:00:12:02"


class LabError(RuntimeError):
    """Building or driving the namespaces failed (the message has the stderr)."""


def which(tool: str) -> str | None:
    return shutil.which(tool, path=os.environ.get("PATH", "") + os.pathsep + _SBIN)


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class VethLab:
    """Namespaces `send_ns` and `recv_ns`, veth ends `send_if` and `recv_if`."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.send_ns, self.recv_ns = f"tcb{tag}-tx", f"tcb{tag}-rx"
        self.send_if, self.recv_if = f"tcb{tag}t", f"tcb{tag}r"
        subnet = 1 + secrets.randbelow(254)
        self.send4, self.recv4 = f"198.18.{subnet}.1", f"198.18.{subnet}.2"
        self._ip = which("ip") or "ip"
        self._created: list[str] = []
        self._procs: list[subprocess.Popen[Any]] = []
        self._previous_term: Any = None

    def __enter__(self) -> VethLab:
        # SIGTERM cleans up like Ctrl-C does (KeyboardInterrupt unwinds the with).
        self._previous_term = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
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

    def _ipcmd(self, *args: str) -> str:
        done = subprocess.run(
            [self._ip, *args], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise LabError(f"ip {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def _build(self) -> None:
        for ns in (self.send_ns, self.recv_ns):
            self._ipcmd("netns", "add", ns)
            self._created.append(ns)
        self._ipcmd(
            "link", "add", self.send_if, "netns", self.send_ns, "address", SEND_MAC, "type",
            "veth", "peer", "name", self.recv_if, "netns", self.recv_ns, "address", RECV_MAC,
        )  # fmt: skip
        for ns, ifname, addr in (
            (self.send_ns, self.send_if, self.send4),
            (self.recv_ns, self.recv_if, self.recv4),
        ):
            self.run(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            self.run(ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
            self._ipcmd("-n", ns, "link", "set", "lo", "up")
            self._ipcmd("-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
            self._ipcmd("-n", ns, "link", "set", ifname, "up")

    def close(self) -> None:
        """Stop what was started here and delete both namespaces (idempotent)."""
        for proc in self._procs:
            stop(proc)
        self._procs.clear()
        for ns in self._created:
            listed = subprocess.run(
                [self._ip, "netns", "pids", ns], capture_output=True, text=True, timeout=10,
                check=False,
            )  # fmt: skip
            for word in listed.stdout.split():  # only processes inside our own namespaces
                with contextlib.suppress(ValueError, OSError):
                    os.kill(int(word), signal.SIGKILL)
            subprocess.run([self._ip, "netns", "del", ns], capture_output=True, timeout=30)
        self._created.clear()
        if self._previous_term is not None:
            signal.signal(signal.SIGTERM, self._previous_term)
            self._previous_term = None

    def command(self, ns: str, *argv: object) -> list[str]:
        if ns not in (self.send_ns, self.recv_ns):
            raise LabError(f"{ns!r} is not one of this lab's namespaces")
        return [self._ip, "netns", "exec", ns, *(str(a) for a in argv)]

    def run(self, ns: str, *argv: object, timeout: float = 60.0) -> str:
        """Run a command in the namespace; its stdout (LabError if it fails)."""
        done = subprocess.run(
            self.command(ns, *argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            words = " ".join(str(a) for a in argv)
            raise LabError(f"in {ns}: {words} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def popen(self, ns: str, *argv: object, **kw: Any) -> subprocess.Popen[Any]:
        """Start a command in the namespace (`ip netns exec` execs it: same pid)."""
        proc: subprocess.Popen[Any] = subprocess.Popen(self.command(ns, *argv), **kw)
        self._procs.append(proc)
        return proc

    def link_stats(self, ns: str, ifname: str) -> dict[str, int]:
        """The interface's kernel counters: rx_packets, rx_dropped, tx_packets, tx_dropped."""
        shown = json.loads(self._ipcmd("-n", ns, "-s", "-j", "link", "show", "dev", ifname))
        stats = shown[0]["stats64"]
        return {
            "rx_packets": int(stats["rx"]["packets"]),
            "rx_dropped": int(stats["rx"]["dropped"]),
            "tx_packets": int(stats["tx"]["packets"]),
            "tx_dropped": int(stats["tx"]["dropped"]),
        }


def stop(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """Terminate a process we started, then kill it if it does not go."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
