"""Where tcpdump's test captures are: ../shared/corpus/tcpdump-tests, or $TCPSCOPE_CORPUS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path:
    """The corpus directory; missing it fails in CI (env CI set) and skips elsewhere."""
    configured = os.environ.get("TCPSCOPE_CORPUS")
    path = Path(configured) if configured else REPO.parent / "shared" / "corpus" / "tcpdump-tests"
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"corpus directory {path} is missing")
        pytest.skip(f"corpus directory {path} is missing")
    return path


def corpus_files() -> list[Path]:
    return sorted(p for p in corpus_dir().iterdir() if p.suffix in (".pcap", ".pcapng"))
