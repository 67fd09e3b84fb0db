"""The cached local times (output.text.clock_ms, tcpeek's row stamp) follow a
time zone changed in the same process (time.tzset): the cache is keyed by it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tcpscope.output import tcpeek_text
from tcpscope.output.text import clock_ms, local_strftime

T = 1_700_000_005_123_000_000  # 2023-11-14 22:13:25.123 UTC


@pytest.fixture(autouse=True)
def restore_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield
    monkeypatch.undo()
    time.tzset()


def _in(zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()


def test_the_clock_follows_tzset(monkeypatch: pytest.MonkeyPatch) -> None:
    _in("UTC0", monkeypatch)
    assert clock_ms(T) == "22:13:25.123"
    _in("JST-9", monkeypatch)  # a POSIX zone: +9, needs no tzdata
    assert clock_ms(T) == "07:13:25.123"
    _in("UTC0", monkeypatch)
    assert clock_ms(T + 999_000_000) == "22:13:26.122"


def test_the_tcpeek_stamp_follows_tzset(monkeypatch: pytest.MonkeyPatch) -> None:
    _in("UTC0", monkeypatch)
    utc = local_strftime(tcpeek_text.STAMP_FORMAT, T // 10**9)
    _in("JST-9", monkeypatch)
    tokyo = local_strftime(tcpeek_text.STAMP_FORMAT, T // 10**9)
    assert (utc, tokyo) == ("23-11-14 22:13:25", "23-11-15 07:13:25")
