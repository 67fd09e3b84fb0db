"""Fixtures shared across the test folders."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator

import pytest


@pytest.fixture
def sockdir() -> Iterator[str]:
    """A short temporary directory for UNIX sockets (AF_UNIX paths stop at 107 bytes,
    and pytest's tmp_path can be longer)."""
    path = tempfile.mkdtemp(prefix="tss", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC (outputs with local times compared byte for byte), and is
    put back after the test."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
