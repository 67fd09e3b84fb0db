"""Log levels named as syslog names them; stderr and syslog handlers on one private logger."""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator

import pytest

from tcpscope.cli import logsetup
from tcpscope.cli.logsetup import NOTICE, parse_level, setup_logging
from tcpscope.errors import UsageError

# syslog(3): facility LOG_DAEMON is 3, so PRI = 3 * 8 + severity
DAEMON = 3 * 8
SEVERITY = {"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6,
            "debug": 7}


@pytest.fixture(autouse=True)
def clean_loggers() -> Iterator[None]:
    root_handlers = list(logging.getLogger().handlers)
    yield
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("tcpscope."):
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
                handler.close()
    assert logging.getLogger().handlers == root_handlers  # the root logger was left alone


@pytest.fixture
def syslog_socket() -> Iterator[tuple[socket.socket, str]]:
    """A stand-in for /dev/log: a datagram socket we can read from."""
    directory = tempfile.mkdtemp(prefix="tsl", dir="/tmp")  # short: AF_UNIX path limit
    path = os.path.join(directory, "log")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(directory, ignore_errors=True)


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


# -- parse_level ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("LOG_EMERG", logsetup.EMERG),
        ("LOG_ALERT", logsetup.ALERT),
        ("LOG_CRIT", logging.CRITICAL),
        ("LOG_ERR", logging.ERROR),
        ("LOG_WARNING", logging.WARNING),
        ("LOG_NOTICE", 25),
        ("LOG_INFO", logging.INFO),
        ("LOG_DEBUG", logging.DEBUG),
    ],
)
def test_every_syslog_name_in_every_form(name: str, level: int) -> None:
    short = name[4:]
    for form in (name, short, short.lower(), short.capitalize(), name.lower(), f" {name}\n"):
        assert parse_level(form) == level, form


def test_aliases() -> None:
    assert parse_level("WARN") == parse_level("warn") == logging.WARNING
    assert parse_level("ERROR") == parse_level("Error") == logging.ERROR
    assert parse_level("LOG_WARN") == logging.WARNING


def test_levels_keep_syslog_order() -> None:
    names = ["DEBUG", "INFO", "NOTICE", "WARNING", "ERR", "CRIT", "ALERT", "EMERG"]
    levels = [parse_level(n) for n in names]
    assert levels == sorted(levels)
    assert len(set(levels)) == len(levels)
    assert parse_level("CRIT") >= logging.CRITICAL
    assert logging.INFO < NOTICE < logging.WARNING


def test_level_names_print_sensibly() -> None:
    assert logging.getLevelName(parse_level("notice")) == "NOTICE"
    assert logging.getLevelName(parse_level("alert")) == "ALERT"
    assert logging.getLevelName(parse_level("emerg")) == "EMERG"
    assert logging.getLevelName(parse_level("crit")) == "CRITICAL"


@pytest.mark.parametrize("text", ["", "LOG_", "LOG_FOO", "5", "noticee", "LOG-NOTICE", "LOGNOTICE"])
def test_bad_levels(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_level(text)
    assert str(err.value) == f"bad log level '{text}'"


# -- setup_logging: stderr ----------------------------------------------------


def test_threshold_and_format() -> None:
    out = io.StringIO()
    log = setup_logging("tcpeek", parse_level("LOG_NOTICE"), out, use_syslog=False)
    log.debug("not this")
    log.info("nor this")
    log.log(NOTICE, "listening on %s", "eth0")
    log.warning("careful")
    log.error("broken: %d", 3)
    assert out.getvalue().splitlines() == [
        "tcpeek: NOTICE: listening on eth0",
        "tcpeek: WARNING: careful",
        "tcpeek: ERROR: broken: 3",
    ]


def test_debug_level_prints_everything() -> None:
    out = io.StringIO()
    log = setup_logging("tcpeek", parse_level("debug"), out, use_syslog=False)
    log.debug("seq out of order")
    assert out.getvalue() == "tcpeek: DEBUG: seq out of order\n"


def test_logger_is_private() -> None:
    log = setup_logging("tcpeek", logging.INFO, io.StringIO(), use_syslog=False)
    assert log.name == "tcpscope.tcpeek"
    assert log.propagate is False
    assert log.level == logging.INFO


def test_second_call_replaces_handlers() -> None:
    first = io.StringIO()
    second = io.StringIO()
    setup_logging("tcpeek", logging.INFO, first, use_syslog=False)
    log = setup_logging("tcpeek", logging.ERROR, second, use_syslog=False)
    assert len(log.handlers) == 1
    log.warning("below the new level")
    log.error("once")
    assert first.getvalue() == ""
    assert second.getvalue() == "tcpeek: ERROR: once\n"


def test_percent_in_program_name() -> None:
    out = io.StringIO()
    log = setup_logging("a%sb", logging.INFO, out, use_syslog=False)
    log.info("x")
    assert out.getvalue() == "a%sb: INFO: x\n"


# -- setup_logging: syslog -----------------------------------------------------


def receive(sock: socket.socket) -> bytes:
    return sock.recv(4096)


def test_syslog_message_arrives(syslog_socket: tuple[socket.socket, str]) -> None:
    sock, path = syslog_socket
    out = io.StringIO()
    log = setup_logging("tcpeek", logging.DEBUG, out, use_syslog=True, syslog_address=path)
    assert len(log.handlers) == 2
    log.log(NOTICE, "hello")
    # RFC 3164 style without timestamp or host: the local daemon adds them
    assert receive(sock).rstrip(b"\0") == f"<{DAEMON + 5}>tcpeek[{os.getpid()}]: hello".encode()
    assert out.getvalue() == "tcpeek: NOTICE: hello\n"  # stderr still gets it


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        ("LOG_EMERG", "emerg"),
        ("LOG_ALERT", "alert"),
        ("LOG_CRIT", "crit"),
        ("LOG_ERR", "err"),
        ("LOG_WARNING", "warning"),
        ("LOG_NOTICE", "notice"),
        ("LOG_INFO", "info"),
        ("LOG_DEBUG", "debug"),
    ],
)
def test_syslog_severity_matches_level(
    syslog_socket: tuple[socket.socket, str], level: str, severity: str
) -> None:
    sock, path = syslog_socket
    log = setup_logging("tcpeek", logging.DEBUG, io.StringIO(), True, syslog_address=path)
    log.log(parse_level(level), "m")
    assert receive(sock).startswith(f"<{DAEMON + SEVERITY[severity]}>".encode())


def test_syslog_below_threshold_not_sent(syslog_socket: tuple[socket.socket, str]) -> None:
    sock, path = syslog_socket
    log = setup_logging("tcpeek", logging.WARNING, io.StringIO(), True, syslog_address=path)
    log.info("quiet")
    log.warning("loud")
    assert receive(sock).rstrip(b"\0").endswith(b": loud")


def test_no_duplicate_syslog_handlers(syslog_socket: tuple[socket.socket, str]) -> None:
    sock, path = syslog_socket
    setup_logging("tcpeek", logging.INFO, io.StringIO(), True, syslog_address=path)
    log = setup_logging("tcpeek", logging.INFO, io.StringIO(), True, syslog_address=path)
    assert len(log.handlers) == 2
    log.info("one")
    assert receive(sock).rstrip(b"\0").endswith(b": one")
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        receive(sock)


def test_syslog_off_when_not_asked(syslog_socket: tuple[socket.socket, str]) -> None:
    sock, path = syslog_socket
    log = setup_logging("tcpeek", logging.INFO, io.StringIO(), False, syslog_address=path)
    assert len(log.handlers) == 1
    log.info("x")
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        receive(sock)


def test_auto_syslog_when_stderr_is_not_a_terminal(
    syslog_socket: tuple[socket.socket, str],
) -> None:
    _, path = syslog_socket
    log = setup_logging("tcpeek", logging.INFO, io.StringIO(), syslog_address=path)
    assert len(log.handlers) == 2


def test_auto_no_syslog_on_a_terminal(syslog_socket: tuple[socket.socket, str]) -> None:
    _, path = syslog_socket
    log = setup_logging("tcpeek", logging.INFO, TtyStream(), syslog_address=path)
    assert len(log.handlers) == 1


def test_auto_no_syslog_without_socket() -> None:
    log = setup_logging(
        "tcpeek", logging.INFO, io.StringIO(), syslog_address="/nonexistent/tcpscope/log"
    )
    assert len(log.handlers) == 1


def test_syslog_asked_but_unavailable_is_skipped() -> None:
    out = io.StringIO()
    log = setup_logging(
        "tcpeek", logging.INFO, out, use_syslog=True, syslog_address="/nonexistent/tcpscope/log"
    )
    assert len(log.handlers) == 1
    log.info("still here")
    assert out.getvalue() == "tcpeek: INFO: still here\n"


def test_syslog_going_away_later_does_not_hurt(
    syslog_socket: tuple[socket.socket, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sock, path = syslog_socket
    out = io.StringIO()
    log = setup_logging("tcpeek", logging.INFO, out, use_syslog=True, syslog_address=path)
    sock.close()
    os.unlink(path)  # the daemon stopped
    log.error("after syslog died")
    assert out.getvalue() == "tcpeek: ERROR: after syslog died\n"
    captured = capsys.readouterr()
    assert "Logging error" not in captured.err
    assert captured.err == ""
