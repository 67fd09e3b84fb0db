"""The statistics socket: a stream UNIX socket answering ``GET`` / ``REFRESH``.

It runs in its own daemon thread with one selector loop over non-blocking
sockets, so no client can hold up capture or another client: a client has
`read_timeout` seconds to send its one-line request and must keep reading its
answer (no `write_timeout` seconds without progress), else it is dropped. The
answer comes from `snapshot_provider(request)`, which must read only published
snapshots (never the capture thread's live counters). After the answer the
connection closes.

Under load: the listen queue is the system's largest (SOMAXCONN), the open
files limit is raised to its hard limit, and up to `max_clients` (4096)
connections are served at once. When that many are open, the oldest client
still silent (no request yet) is dropped to make room for the new one; one
that has asked and is reading its answer is never dropped for a newcomer.
"""

from __future__ import annotations

import logging
import os
import resource
import selectors
import socket
import stat
import threading
import time
from collections.abc import Callable
from types import TracebackType

from tcpscope.errors import TcpscopeError
from tcpscope.output.stats_json import REQUESTS, render_error, unknown_request

log = logging.getLogger(__name__)

DEFAULT_SOCKET_PATH = "/var/run/tcpeek/tcpeek.sock"
SOCKET_MODE = 0o660
DIRECTORY_MODE = 0o755
MAX_REQUEST = 256  # bytes in a request line; "REFRESH\r\n" is 9
MAX_CLIENTS = 4096  # connections served at once (each is one descriptor)
_FD_SPARE = 64  # descriptors left for capture, logging and the rest
_RECV_SIZE = 4096

_LISTENER = object()
_WAKER = object()


class _Client:
    """One connection: the request being read, then the answer being written."""

    __slots__ = ("answer", "deadline", "inbuf", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.inbuf = bytearray()
        self.answer: memoryview | None = None


def _request_line(buf: bytearray) -> str | None:
    """The request when a full line is in; None while more is needed."""
    end = buf.find(b"\n")
    if end < 0:
        return None
    line = bytes(buf[:end])
    if line.endswith(b"\r"):
        line = line[:-1]
    return line.decode("utf-8", "replace")


class StatsServer:
    """Serve statistics on a UNIX socket at `path` from its own thread."""

    def __init__(
        self,
        path: str,
        snapshot_provider: Callable[[str], bytes],
        owner_uid: int | None = None,
        owner_gid: int | None = None,
        *,
        read_timeout: float = 5.0,
        write_timeout: float = 5.0,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.path = path
        self._provider = snapshot_provider
        self._owner_uid = owner_uid
        self._owner_gid = owner_gid
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._max_clients = max_clients
        self._listener: socket.socket | None = None
        self._waker_r: socket.socket | None = None
        self._waker_w: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._clients: dict[int, _Client] = {}  # in the order they were accepted
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of our socket file

    # --- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Create the directory if needed, replace a stale socket, bind, listen, serve."""
        if self._thread is not None:
            raise TcpscopeError(f"socket {self.path} is already being served")
        self._prepare_directory()
        self._remove_stale_socket()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.path)
            st = os.stat(self.path)
            self._identity = (st.st_dev, st.st_ino)
            os.chmod(self.path, SOCKET_MODE)
            self._chown(self.path)
            listener.listen(socket.SOMAXCONN)
            listener.setblocking(False)
        except OSError as err:
            listener.close()
            self._unlink_own_socket()
            raise TcpscopeError(f"socket {self.path}: {err.strerror or err}") from err
        self._listener = listener
        self._max_clients = min(self._max_clients, _descriptors_for_clients())
        self._waker_r, self._waker_w = socket.socketpair()
        self._waker_r.setblocking(False)
        self._waker_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, _LISTENER)
        self._selector.register(self._waker_r, selectors.EVENT_READ, _WAKER)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tcpscope-statsock", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread, drop the clients, remove the socket file. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake()
            thread.join(timeout=5.0)
        for client in list(self._clients.values()):
            self._drop(client)
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        for sock in (self._listener, self._waker_r, self._waker_w):
            if sock is not None:
                sock.close()
        self._listener = self._waker_r = self._waker_w = None
        self._unlink_own_socket()

    def __enter__(self) -> StatsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- start helpers ---------------------------------------------------

    def _chown(self, path: str) -> None:
        if self._owner_uid is None and self._owner_gid is None:
            return
        uid = -1 if self._owner_uid is None else self._owner_uid
        gid = -1 if self._owner_gid is None else self._owner_gid
        os.chown(path, uid, gid)

    def _prepare_directory(self) -> None:
        directory = os.path.dirname(self.path)
        if not directory or os.path.isdir(directory):
            return
        try:
            os.makedirs(directory, mode=DIRECTORY_MODE)
            os.chmod(directory, DIRECTORY_MODE)  # makedirs' mode is cut by the umask
            self._chown(directory)
        except FileExistsError:
            pass  # created meanwhile by someone else
        except OSError as err:
            raise TcpscopeError(f"socket directory {directory}: {err.strerror or err}") from err

    def _remove_stale_socket(self) -> None:
        """Remove a socket file nobody listens on (left by a crash); a live one is an error."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        except OSError as err:
            raise TcpscopeError(f"socket {self.path}: {err.strerror or err}") from err
        if not stat.S_ISSOCK(st.st_mode):
            raise TcpscopeError(f"socket {self.path}: exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.setblocking(False)
        try:
            probe.connect(self.path)
        except ConnectionRefusedError:
            log.info("removing stale socket %s", self.path)
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            return
        except FileNotFoundError:
            return
        except BlockingIOError:
            pass  # the listener's backlog is full: it is alive
        except OSError as err:
            raise TcpscopeError(f"socket {self.path}: {err.strerror or err}") from err
        finally:
            probe.close()
        raise TcpscopeError(f"socket {self.path} is in use")

    def _unlink_own_socket(self) -> None:
        identity, self._identity = self._identity, None
        if identity is None:
            return
        try:
            st = os.lstat(self.path)
            # another process may have replaced it since: remove only ours
            if (st.st_dev, st.st_ino) == identity:
                os.unlink(self.path)
        except OSError:
            pass

    # --- the loop --------------------------------------------------------

    def _wake(self) -> None:
        if self._waker_w is not None:
            try:
                self._waker_w.send(b"x")
            except OSError:
                pass

    def _run(self) -> None:
        selector = self._selector
        assert selector is not None
        while not self._stop.is_set():
            now = time.monotonic()
            timeout = 1.0
            if self._clients:
                nearest = min(c.deadline for c in self._clients.values())
                timeout = min(timeout, max(nearest - now, 0.0))
            try:
                events = selector.select(timeout)
            except OSError:
                if self._stop.is_set():
                    break
                raise
            for key, mask in events:
                try:
                    self._dispatch(key.data, mask)
                except Exception:  # a bug must not end the server: drop that client only
                    log.exception("statistics socket: unexpected error")
                    if isinstance(key.data, _Client):
                        self._drop(key.data)
            self._expire(time.monotonic())

    def _dispatch(self, data: object, mask: int) -> None:
        if data is _LISTENER:
            self._accept()
        elif data is _WAKER:
            assert self._waker_r is not None
            try:
                self._waker_r.recv(64)
            except OSError:
                pass
        elif isinstance(data, _Client):
            if mask & selectors.EVENT_READ and data.answer is None:
                self._read(data)
            elif mask & selectors.EVENT_WRITE and data.answer is not None:
                self._write(data)

    def _accept(self) -> None:
        assert self._listener is not None and self._selector is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                # EMFILE and friends: leave the rest in the backlog until the next turn
                log.warning("statistics socket: accept failed: %s", err)
                return
            if len(self._clients) >= self._max_clients and not self._drop_oldest_silent():
                sock.close()  # every one of them is being answered: no room
                continue
            sock.setblocking(False)
            client = _Client(sock, time.monotonic() + self._read_timeout)
            self._clients[sock.fileno()] = client
            self._selector.register(sock, selectors.EVENT_READ, client)

    def _drop_oldest_silent(self) -> bool:
        """Make room: drop the oldest client that has not sent its request yet."""
        for client in self._clients.values():  # oldest first
            if client.answer is None:
                self._drop(client)
                return True
        return False

    def _read(self, client: _Client) -> None:
        try:
            chunk = client.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        if chunk:
            client.inbuf += chunk
            request = _request_line(client.inbuf)
            if request is None:
                if len(client.inbuf) <= MAX_REQUEST:
                    return
                self._respond(client, (render_error("request too long") + "\n").encode())
                return
        elif client.inbuf:
            # the peer shut down its side after a request without a newline
            request = client.inbuf.decode("utf-8", "replace").rstrip("\r")
        else:
            self._drop(client)
            return
        self._respond(client, self._answer(request))

    def _answer(self, request: str) -> bytes:
        if request not in REQUESTS:
            return (unknown_request(request[:64]) + "\n").encode()
        try:
            return self._provider(request)
        except Exception:
            log.exception("statistics socket: provider failed on %s", request)
            return (render_error("internal error") + "\n").encode()

    def _respond(self, client: _Client, answer: bytes) -> None:
        assert self._selector is not None
        client.answer = memoryview(answer)
        client.deadline = time.monotonic() + self._write_timeout
        self._write(client)
        if client.answer is not None and client.sock.fileno() >= 0:
            self._selector.modify(client.sock, selectors.EVENT_WRITE, client)

    def _write(self, client: _Client) -> None:
        answer = client.answer
        assert answer is not None
        try:
            sent = client.sock.send(answer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        client.answer = answer[sent:]
        client.deadline = time.monotonic() + self._write_timeout  # progress: more time
        if not client.answer:
            client.answer = None
            self._discard_input(client)
            self._drop(client)

    @staticmethod
    def _discard_input(client: _Client) -> None:
        """Read what the client sent beyond its request line before closing.

        Closing a UNIX socket with unread input makes the peer's reads fail with
        ECONNRESET, which can hide the answer it was just sent.
        """
        for _ in range(16):
            try:
                if not client.sock.recv(_RECV_SIZE):
                    return
            except OSError:
                return

    def _expire(self, now: float) -> None:
        for client in [c for c in self._clients.values() if c.deadline <= now]:
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        fd = client.sock.fileno()
        if fd < 0:
            return
        self._clients.pop(fd, None)
        if self._selector is not None:
            try:
                self._selector.unregister(client.sock)
            except (KeyError, ValueError):
                pass
        client.sock.close()


def _descriptors_for_clients() -> int:
    """Raise the open files limit to its hard limit; how many clients it leaves room for."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = MAX_CLIENTS + _FD_SPARE if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
            soft = max(soft, target)
        except (ValueError, OSError):
            pass
    return max(1, soft - _FD_SPARE)
