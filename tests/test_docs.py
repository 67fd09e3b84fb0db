"""Every ```python block of docs/api.md and README.md runs (in order, one namespace
per file, from the repository's root); ```python live blocks need an interface and
root, so they are only compiled."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(python[^\n]*)\n(.*?)^```$", re.M | re.S)


def blocks(path: Path) -> list[tuple[str, str, int]]:
    text = path.read_text(encoding="utf-8")
    return [
        (m.group(1).strip(), m.group(2), text.count("\n", 0, m.start()) + 2)
        for m in FENCE.finditer(text)
    ]


@pytest.mark.parametrize("name", ["docs/api.md", "README.md"])
def test_every_python_block_runs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    found = blocks(REPO / name)
    runnable = [b for b in found if b[0] == "python"]
    assert runnable, f"{name} has no python blocks"
    assert {b[0] for b in found} <= {"python", "python live"}
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for kind, code, line in found:
        compiled = compile(code, f"{name}:{line}", "exec")
        if kind == "python":
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compiled, namespace)
