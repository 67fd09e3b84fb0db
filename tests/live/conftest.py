"""Fixtures for live tests (they run as root in network namespaces; see tests/support/netns.py).

Every test under tests/live/ is marked `live` automatically. The `lab` fixture
skips the test when it cannot run (not root), fails instead when $CI is set,
installs nftables when `nft` is missing, and yields a fresh `Lab` that is torn
down after the test whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import Lab, require_root_and_tools

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.live)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A client and a server namespace joined by a veth pair (see `Lab`)."""
    require_root_and_tools()
    with Lab() as built:
        yield built
