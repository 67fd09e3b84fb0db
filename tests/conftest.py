"""Fixtures shared across the test folders."""

from __future__ import annotations

import shutil
import tempfile
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
