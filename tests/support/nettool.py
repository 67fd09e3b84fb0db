"""A tiny TCP server and client for the namespace lab; stdlib only, run as a script.

It is started inside a namespace with `ip netns exec NS python nettool.py ...`
(see `tests.support.netns.Lab.start_server` / `Lab.connect`, which build these
command lines). Output is machine-readable: one JSON object per line.

serve --port P [--port P ...] [--mode echo|http|hold] [--host ADDR]
    Listen on every port (dual-stack "::" by default) and print {"event": "ready"}
    once all are bound; then serve until killed, one thread per connection:
      echo  send back whatever arrives, close at the peer's EOF;
      http  read a request head (up to CRLF CRLF), answer "HTTP/1.1 200 OK" with a
            small HTML body and "Connection: close", then close;
      hold  read and discard until the peer closes.

connect HOST PORT [--count N] [--timeout S] [--send TEXT] [--recv N|close]
        [--rst] [--pause-stdin] [--hold S]
    Connect N times, one after the other. For each attempt print
      {"result": "connected"|"refused"|"timeout"|"unreachable"|"error",
       "local_port": int|null, "reply": str, "error": str, "elapsed": float}
    connected: --send TEXT is sent (escapes like \\r\\n are understood), then
    --recv N reads N bytes or --recv close reads until the server closes; --hold
    keeps the connection open S seconds; --rst closes with SO_LINGER 0 (an RST)
    instead of a FIN. --pause-stdin prints {"event": "connected", "local_port": P}
    after the handshake and waits for one line on stdin before sending.
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import struct
import sys
import threading
import time
from typing import Any

HTTP_BODY = b"<html><body>tcpscope sample</body></html>\n"


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _serve_echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)


def _serve_http(conn: socket.socket) -> None:
    head = b""
    while b"\r\n\r\n" not in head:
        data = conn.recv(65536)
        if not data:
            return
        head += data
    response = (
        b"HTTP/1.1 200 OK\r\n"
        b"Server: nettool\r\n"
        b"Content-Type: text/html\r\n"
        b"Content-Length: " + str(len(HTTP_BODY)).encode() + b"\r\n"
        b"Connection: close\r\n"
        b"\r\n" + HTTP_BODY
    )
    conn.sendall(response)


def _serve_hold(conn: socket.socket) -> None:
    while conn.recv(65536):
        pass


HANDLERS = {"echo": _serve_echo, "http": _serve_http, "hold": _serve_hold}


def _handle(conn: socket.socket, mode: str) -> None:
    try:
        with conn:
            HANDLERS[mode](conn)
    except OSError:
        pass  # a reset by the client is part of some scenarios


def _accept_loop(listener: socket.socket, mode: str) -> None:
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_handle, args=(conn, mode), daemon=True).start()


def serve(host: str, ports: list[int], mode: str) -> None:
    listeners = []
    for port in ports:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(128)
        listeners.append(sock)
    for sock in listeners:
        threading.Thread(target=_accept_loop, args=(sock, mode), daemon=True).start()
    _emit({"event": "ready", "ports": ports})
    while True:
        time.sleep(3600)


def _attempt(args: argparse.Namespace) -> dict[str, Any]:
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(args.timeout)
    result: dict[str, Any] = {"result": "error", "local_port": None, "reply": "", "error": ""}
    start = time.monotonic()
    try:
        try:
            sock.connect((args.host, args.port))
        except ConnectionRefusedError as exc:
            result.update(result="refused", error=str(exc))
            return result
        except TimeoutError as exc:  # socket timeout or the kernel's ETIMEDOUT
            result.update(result="timeout", error=str(exc) or "timed out")
            return result
        except OSError as exc:
            unreachable = exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
            result.update(result="unreachable" if unreachable else "error", error=str(exc))
            return result
        result.update(result="connected", local_port=sock.getsockname()[1])
        if args.pause_stdin:
            _emit({"event": "connected", "local_port": result["local_port"]})
            sys.stdin.readline()
        if args.send:
            sock.sendall(args.send.encode().decode("unicode_escape").encode("latin-1"))
        reply = b""
        try:
            if args.recv == "close":
                while data := sock.recv(65536):
                    reply += data
            elif args.recv:
                while len(reply) < int(args.recv):
                    data = sock.recv(65536)
                    if not data:
                        break
                    reply += data
        except OSError as exc:
            result["error"] = str(exc)
        result["reply"] = reply.decode("latin-1")
        if args.hold:
            time.sleep(args.hold)
        if args.rst:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return result
    finally:
        sock.close()
        result["elapsed"] = round(time.monotonic() - start, 3)


def connect(args: argparse.Namespace) -> None:
    for _ in range(args.count):
        _emit(_attempt(args))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nettool")
    sub = parser.add_subparsers(dest="command", required=True)
    srv = sub.add_parser("serve")
    srv.add_argument("--port", type=int, action="append", required=True)
    srv.add_argument("--mode", choices=sorted(HANDLERS), default="echo")
    srv.add_argument("--host", default="::")
    cli = sub.add_parser("connect")
    cli.add_argument("host")
    cli.add_argument("port", type=int)
    cli.add_argument("--count", type=int, default=1)
    cli.add_argument("--timeout", type=float, default=5.0)
    cli.add_argument("--send", default="")
    cli.add_argument("--recv", default="")
    cli.add_argument("--rst", action="store_true")
    cli.add_argument("--pause-stdin", action="store_true")
    cli.add_argument("--hold", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.host, args.port, args.mode)
    else:
        connect(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
