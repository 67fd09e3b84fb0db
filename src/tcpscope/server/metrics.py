"""The /metrics HTTP endpoint (`--metrics [ADDR:]PORT`): prometheus_client's WSGI
application and threading server over a registry of collectors that read
published snapshots (output.metrics), so a scrape never touches live counters.

The library's server gives every connection a thread; this one also gives each a
socket timeout (a scraper that connects and never sends, or never reads the
answer, is dropped after `CLIENT_TIMEOUT_S`) and caps the connections served at
once (past `MAX_CLIENTS`, new ones are closed at once). It binds in the
constructor, before capture starts, so a port in use is one clear error.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from tcpscope.errors import TcpscopeError

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1"
CLIENT_TIMEOUT_S = 10.0
MAX_CLIENTS = 128
POLL_INTERVAL_S = 0.25
MAX_AGE_S = 0.5  # an answer reused for alike scrapes at most this long
MAX_ANSWERS = 16


class MetricsServerError(TcpscopeError):
    """The metrics endpoint cannot be served (bad address, port in use...)."""


def parse_listen(text: str) -> tuple[str, int]:
    """`[ADDR:]PORT` -> (address, port). `PORT` alone is 127.0.0.1; an empty address
    (`:PORT`) is every address (returned as ""); IPv6 in brackets (`[::1]:9470`)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = DEFAULT_ADDRESS
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host:
            raise MetricsServerError(f"cannot serve metrics on {text}: empty IPv6 address")
    elif ":" in host:
        raise MetricsServerError(
            f"cannot serve metrics on {text}: write an IPv6 address in brackets, [ADDR]:PORT"
        )
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise MetricsServerError(f"cannot serve metrics on {text}: bad port '{port_text}'")
    return host, int(port_text)


def show_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Handler(WSGIRequestHandler):
    timeout = CLIENT_TIMEOUT_S  # socket timeout for reading the request and writing

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr (stderr carries tcpeek's table)."""


class _Server(ThreadingWSGIServer):
    """The library's threading WSGI server, bound without a reverse DNS lookup, with
    IPv6 sockets dual-stack and a cap on the connections served at once."""

    request_queue_size = 256  # listen backlog: socketserver's 5 drops a burst of scrapers

    def __init__(self, family: int, address: tuple[Any, ...]) -> None:
        self.address_family = family
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        super().__init__(address, _Handler, bind_and_activate=False)
        try:
            self.server_bind()
            self.server_activate()
        except BaseException:
            self.server_close()
            raise

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many at once: this one waits for no one
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _bind(host: str, port: int) -> _Server:
    if host == "":  # every address: IPv6 and IPv4 on one socket, or IPv4 alone
        try:
            return _Server(socket.AF_INET6, ("::", port, 0, 0))
        except OSError:
            return _Server(socket.AF_INET, ("0.0.0.0", port))
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    return _Server(family, address)


class SharedScrapes:
    """The library's WSGI app, formatting one scrape at a time and answering alike
    requests from the last answer while it is fresh: while `version()` (the published
    snapshot) is the same object and for at most MAX_AGE_S (the process metrics).

    A scrape is Python work under the GIL the capture thread needs too; without this,
    100 scrapers back to back format 100 answers at once and crowd capture out (the
    live test saw libpcap drop packets). Now most of them wait on a lock, which costs
    no GIL, and are answered with the same bytes.
    """

    def __init__(self, app: Any, version: Callable[[], object]) -> None:
        self._app = app
        self._version = version
        self._lock = threading.Lock()
        # (path, query, Accept, Accept-Encoding) -> (version, when, status, headers, body)
        self._answers: dict[tuple[str, ...], tuple[object, float, str, list[Any], bytes]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        key = tuple(
            str(environ.get(name, ""))
            for name in ("PATH_INFO", "QUERY_STRING", "HTTP_ACCEPT", "HTTP_ACCEPT_ENCODING")
        )
        with self._lock:
            version, now = self._version(), time.monotonic()
            known = self._answers.get(key)
            if known is None or known[0] is not version or now - known[1] > MAX_AGE_S:
                said: list[Any] = []

                def keep(status: str, headers: list[Any], exc_info: Any = None) -> None:
                    said[:] = [status, headers]

                body = b"".join(self._app(environ, keep))
                if len(self._answers) >= MAX_ANSWERS:  # odd headers must not grow it
                    self._answers.clear()
                known = self._answers[key] = (version, now, said[0], said[1], body)
        start_response(known[2], list(known[3]))
        return [known[4]]


class MetricsServer:
    """Serves `registry` on http://ADDR:PORT/metrics from a daemon thread. `version`:
    what changes when the numbers do (the published snapshot); alike scrapes between
    two changes share one answer (`SharedScrapes`)."""

    def __init__(
        self, listen: str, registry: CollectorRegistry, version: Callable[[], object] = object
    ) -> None:
        host, port = parse_listen(listen)
        self.shown = show_address(host, port)
        try:
            self._server = _bind(host, port)
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise MetricsServerError(f"cannot serve metrics on {self.shown}: {reason}") from None
        self._server.set_app(SharedScrapes(make_wsgi_app(registry), version))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_S},
            name="metrics",
            daemon=True,
        )
        self._thread.start()
        log.info("serving metrics on http://%s/metrics", show_address(*self._address()))

    def _address(self) -> tuple[str, int]:
        return str(self._server.server_address[0]), self.port

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
