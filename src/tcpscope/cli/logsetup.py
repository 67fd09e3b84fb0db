"""Logging for the daemons (tcpeek `-l LEVEL`): stderr always, syslog when it makes sense.

Levels are named as syslog names them; the three syslog levels Python lacks
(NOTICE, ALERT, EMERG) get their own numbers so that ordering and printed
names stay right.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
from typing import TextIO

from tcpscope.errors import UsageError

NOTICE = 25  # between INFO (20) and WARNING (30), as in syslog
ALERT = 51  # above CRITICAL (50)
EMERG = 52

for _level, _name in ((NOTICE, "NOTICE"), (ALERT, "ALERT"), (EMERG, "EMERG")):
    logging.addLevelName(_level, _name)

_LEVELS: dict[str, int] = {
    "EMERG": EMERG,
    "ALERT": ALERT,
    "CRIT": logging.CRITICAL,
    "CRITICAL": logging.CRITICAL,
    "ERR": logging.ERROR,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "NOTICE": NOTICE,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
}

# Python level name → syslog priority name, for the levels SysLogHandler's own
# map does not know (it would send them all as "warning").
_SYSLOG_PRIORITIES: dict[str, str] = {
    "DEBUG": "debug",
    "INFO": "info",
    "NOTICE": "notice",
    "WARNING": "warning",
    "ERROR": "err",
    "CRITICAL": "crit",
    "ALERT": "alert",
    "EMERG": "emerg",
}

DEFAULT_SYSLOG_ADDRESS = "/dev/log"


def parse_level(text: str) -> int:
    """`LOG_NOTICE`, `notice`, `Warn`, ... → a Python logging level."""
    name = text.strip().upper()
    if name.startswith("LOG_"):
        name = name[4:]
    try:
        return _LEVELS[name]
    except KeyError:
        raise UsageError(f"bad log level '{text}'") from None


class _QuietSysLogHandler(logging.handlers.SysLogHandler):
    """A syslog handler that drops what it cannot deliver.

    A stopped syslog daemon must not fill stderr with logging tracebacks,
    let alone stop the capture.
    """

    priority_map = _SYSLOG_PRIORITIES

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def setup_logging(
    prog: str,
    level: int,
    stderr: TextIO,
    use_syslog: bool | None = None,
    syslog_address: str = DEFAULT_SYSLOG_ADDRESS,
) -> logging.Logger:
    """Configure and return the logger `tcpscope.<prog>`.

    Messages at `level` and above go to `stderr` as `prog: LEVEL: message`,
    and to syslog (facility daemon) as `prog[pid]: message` when `use_syslog`
    is True, or when it is None, `stderr` is not a terminal and the syslog
    socket exists.  Only this logger is touched (it does not propagate to the
    root logger); calling again replaces its handlers rather than adding more.
    """
    logger = logging.getLogger(f"tcpscope.{prog}")
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    logger.setLevel(level)
    logger.propagate = False

    safe_prog = prog.replace("%", "%%")  # prog goes into a %-style format string
    console = logging.StreamHandler(stderr)
    console.setFormatter(logging.Formatter(f"{safe_prog}: %(levelname)s: %(message)s"))
    logger.addHandler(console)

    if use_syslog is None:
        use_syslog = not _is_terminal(stderr) and os.path.exists(syslog_address)
    if use_syslog:
        syslog = _open_syslog(syslog_address)
        if syslog is not None:
            syslog.setFormatter(logging.Formatter(f"{safe_prog}[%(process)d]: %(message)s"))
            logger.addHandler(syslog)
    return logger


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):  # closed or detached stream
        return False


def _open_syslog(address: str) -> logging.Handler | None:
    # Newer Pythons build the handler even when nobody listens and then drop
    # every message; probe first so that "no syslog" means "no handler".
    if not _syslog_listening(address):
        return None  # no syslog daemon: stderr alone will do
    try:
        return _QuietSysLogHandler(
            address=address, facility=logging.handlers.SysLogHandler.LOG_DAEMON
        )
    except OSError:
        return None


def _syslog_listening(address: str) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):  # syslog daemons use either
        with socket.socket(socket.AF_UNIX, kind) as probe:
            try:
                probe.connect(address)
            except OSError:
                continue
            return True
    return False
