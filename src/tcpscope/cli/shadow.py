"""--paths shadow: the bulk and the exact engine side by side on the same
batches, each writing into its own streams; after every batch, tick and the
finish, what each has written since must be the same, byte for byte. The bulk
run's streams pass through to the real output; the exact run's are kept only
to compare. The first difference stops the run with one line that says where.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TextIO

from tcpscope.capture import RawBatch
from tcpscope.engine import Engine
from tcpscope.errors import TcpscopeError

SHADOW_MISMATCH_EXIT = 3
_BEFORE, _AFTER = 30, 50  # characters shown around the first difference


class ShadowMismatch(TcpscopeError):
    """The bulk and the exact path wrote different output."""

    exit_code = SHADOW_MISMATCH_EXIT


class Recorder(io.StringIO):
    """A text stream that keeps what is written since the last `take()`, and
    passes it on to `target` if there is one."""

    def __init__(self, target: TextIO | None = None) -> None:
        super().__init__()
        self.target = target

    def write(self, text: str) -> int:
        if self.target is not None:
            self.target.write(text)
        return super().write(text)

    def flush(self) -> None:
        if self.target is not None:
            self.target.flush()

    def isatty(self) -> bool:
        return self.target is not None and self.target.isatty()

    def take(self) -> str:
        text = self.getvalue()
        self.seek(0)
        self.truncate()
        return text


def first_difference(bulk: str, exact: str) -> str:
    """Where two outputs part: the first line that differs, both ways, cut to a
    window around the first character that differs."""
    a, b = bulk.splitlines(), exact.splitlines()
    for n, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            pairs = enumerate(zip(x, y, strict=False))
            at = next((i for i, (p, q) in pairs if p != q), min(len(x), len(y)))
            lo = max(0, at - _BEFORE)
            return (
                f"line {n + 1}, column {at + 1}: "
                f"bulk {x[lo : at + _AFTER]!r}, exact {y[lo : at + _AFTER]!r}"
            )
    n = min(len(a), len(b))
    longer, name = (a, "bulk") if len(a) > len(b) else (b, "exact")
    extra = longer[n][: _BEFORE + _AFTER] if n < len(longer) else ""
    return f"line {n + 1}: only {name} has {extra!r}"


class ShadowEngine:
    """Feeds two engines and compares their outputs after each step (cli.runloop
    drives it as it would one engine)."""

    def __init__(
        self,
        bulk: Engine,
        exact: Engine,
        streams: list[tuple[Recorder, Recorder]],
        checked: Callable[[], None] | None = None,
    ) -> None:
        self.bulk = bulk
        self.exact = exact
        self.streams = streams  # (bulk's, exact's) for each output stream
        self.checked = checked  # called after each check that passed

    @property
    def last_ts(self) -> int | None:
        return self.bulk.last_ts

    @property
    def first_ts(self) -> int | None:
        return self.bulk.first_ts

    def prepare(self, batch: RawBatch) -> None:
        self.bulk.prepare(batch)  # the exact engine reads no columns

    def feed_batch(self, batch: RawBatch) -> None:
        self.bulk.feed_batch(batch)
        self.exact.feed_batch(batch)
        self.check()

    def tick(self, now: int) -> None:
        self.bulk.tick(now)
        self.exact.tick(now)
        self.check()

    def finish(self, now: int) -> None:
        self.bulk.finish(now)
        self.exact.finish(now)
        self.check()

    def check(self) -> None:
        """Both outputs since the last check must be the same."""
        for bulk, exact in self.streams:
            a, b = bulk.take(), exact.take()
            if a != b:
                raise ShadowMismatch(
                    f"--paths shadow: the bulk and exact paths differ by packet "
                    f"{self.bulk.packets}: {first_difference(a, b)}"
                )
        if self.checked is not None:
            self.checked()
