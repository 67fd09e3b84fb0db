"""A map from 64-bit keys to row numbers, looked up, filled and emptied a
whole array of keys at a time (numpy, open addressing with linear probing).

What track.light needs to find its rows: a Python dict costs a call per key,
and at a million keys (a SYN flood) its inserts alone took a second; here a
batch of keys costs a few vectorised passes whatever the table holds.
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
G = TypeVar("G", bound=np.generic)

EMPTY, USED, GONE = 0, 1, 2  # a slot never used, in use, or freed (probing goes on)
_MIX = np.uint64(0x9FB21C651E98DF25)  # odd: spreads every key bit into the top bits
_MIN_BITS = 12
# A batch's lookup costs a numpy pass per probe step of its longest chain. A
# small table (up to 2**16 slots, ~1 MB) is kept at most 1/8 full, where chains
# are short; a larger one (a SYN flood's million keys) at most half, to bound its
# memory. A rebuild leaves room to grow: it sizes the table for twice its keys.
_SPARSE_BITS = 16


def _bits_for(entries: int) -> int:
    """The table size (log2) a rebuild gives `entries` keys: half its capacity."""
    sparse = (16 * max(entries, 1) - 1).bit_length()
    if sparse <= _SPARSE_BITS:
        return max(_MIN_BITS, sparse)
    return max(_SPARSE_BITS + 1, (4 * entries - 1).bit_length())


def _capacity(bits: int) -> int:
    """How many keys (tombstones included) a table of 2**bits slots may hold."""
    return (1 << bits) // 8 if bits <= _SPARSE_BITS else (1 << bits) // 2


def distinct(values: npt.NDArray[G]) -> npt.NDArray[G]:
    """The distinct values, sorted: what np.unique(values) gives. np.unique
    itself, asked for nothing more, asks numpy.ma whether the array is masked,
    and its first call imports numpy.ma: 30-60 ms of a run's start-up."""
    ordered = np.sort(values)
    if ordered.size < 2:
        return ordered
    first = np.empty(ordered.size, dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    kept: npt.NDArray[G] = ordered[first]
    return kept


class Found(NamedTuple):
    """What `find` saw: each key's value (or -1) and, for a key not there, the first
    slot not in use on its probe chain, where `insert` may put it without probing
    again (the flood's inserts were its lookups done twice). `layout` says which
    arrangement of slots the hints belong to: a rebuild or a clear moves keys and
    makes them void."""

    values: I64
    free: I64
    layout: int


class KeyTable:
    """Distinct uint64 keys -> int64 values. Keys are unique: `insert` is for keys
    not in the table (the caller knows it: it looked them up)."""

    def __init__(self, bits: int = _MIN_BITS) -> None:
        self.layout = 0  # Found.layout: which arrangement of slots; each reset starts a new one
        self._reset(bits)

    def _reset(self, bits: int) -> None:
        self._bits = bits
        size = 1 << bits
        self._state = np.zeros(size, dtype=np.uint8)
        self._keys = np.zeros(size, dtype=np.uint64)
        self._values = np.zeros(size, dtype=np.int32)  # rows: < 2**31
        # Scratch for insert: which key claims a slot. Only slots written in the
        # same pass are read back, so it is never cleared.
        self._claim = np.zeros(size, dtype=np.int32)
        self._used = 0
        self._gone = 0
        self.layout += 1  # find's hints from before this reset are void

    def __len__(self) -> int:
        return self._used

    def _home(self, keys: U64) -> I64:
        with np.errstate(over="ignore"):
            home: I64 = ((keys * _MIX) >> np.uint64(64 - self._bits)).astype(np.int64)
        return home

    def _slots(self, keys: U64, free: I64 | None = None) -> I64:
        """The slot holding each key, or -1; and into `free`, if given, the first
        slot not in use on the chain of each key that is not there."""
        mask = (1 << self._bits) - 1
        slots = self._home(keys)
        found = np.full(keys.size, -1, dtype=np.int64)
        pending = np.arange(keys.size)
        state, stored = self._state, self._keys
        while pending.size:
            at = slots[pending]
            here = state[at]
            hit = (here == USED) & (stored[at] == keys[pending])
            found[pending[hit]] = at[hit]
            if free is not None:
                first = (here != USED) & (free[pending] < 0)
                free[pending[first]] = at[first]
            go_on = ~hit & (here != EMPTY)
            pending = pending[go_on]
            slots[pending] = (at[go_on] + 1) & mask
        return found

    def get(self, keys: U64, default: int = -1) -> I64:
        """The value of each key, or `default`."""
        return self._values_at(self._slots(keys), default)

    def find(self, keys: U64) -> Found:
        """As `get` (-1 for a key not there), with where each missing key may go."""
        free = np.full(keys.size, -1, dtype=np.int64)
        values = self._values_at(self._slots(keys, free), -1)
        return Found(values, free, self.layout)

    def _values_at(self, slots: I64, default: int) -> I64:
        """The values in these slots (-1: no slot), or `default`."""
        values = np.full(slots.size, default, dtype=np.int64)
        hit = slots >= 0
        values[hit] = self._values[slots[hit]]
        return values

    def insert(self, keys: U64, values: I64, start: tuple[I64, int] | None = None) -> None:
        """Add keys that are not in the table (distinct among themselves). `start`:
        `find`'s free slots of these keys and its layout, to start probing at.

        Starting there is sound while the layout holds: every slot before it on the
        key's chain was in use or freed, and stays so (a freed slot only becomes
        empty in a rebuild). Removals since the find may have freed an earlier slot;
        the key then sits further along its chain, which lookups still reach."""
        if not keys.size:
            return
        if self._used + self._gone + keys.size > _capacity(self._bits):
            self._rebuild(self._used + keys.size)
        mask = (1 << self._bits) - 1
        slots = self._home(keys)
        if start is not None and start[1] == self.layout:
            slots = np.where(start[0] >= 0, start[0], slots)
        pending = np.arange(keys.size)
        state = self._state
        claim = self._claim
        while pending.size:
            at = slots[pending]
            here = state[at]
            free = np.flatnonzero(here != USED)
            # Several keys may want one free slot: one of them (the last written) takes it.
            claim[at[free]] = free
            winners = free[claim[at[free]] == free]
            taken = at[winners]
            # here[winners] is state[taken] as read above: no second gather.
            self._gone -= int(np.count_nonzero(here[winners] == GONE))
            state[taken] = USED
            self._keys[taken] = keys[pending[winners]]
            self._values[taken] = values[pending[winners]]
            self._used += winners.size
            placed = np.zeros(pending.size, dtype=bool)
            placed[winners] = True
            pending = pending[~placed]
            slots[pending] = (at[~placed] + 1) & mask

    def remove(self, keys: U64) -> None:
        """Forget these keys (those not there are ignored)."""
        slots = self._slots(keys)
        slots = distinct(slots[slots >= 0])
        self._state[slots] = GONE
        self._used -= slots.size
        self._gone += slots.size

    def set(self, keys: U64, values: I64) -> None:
        """New values for keys that are in the table."""
        slots = self._slots(keys)
        hit = slots >= 0
        self._values[slots[hit]] = values[hit]

    def clear(self) -> None:
        self._reset(_MIN_BITS)

    def items(self) -> tuple[U64, I64]:
        used = self._state == USED
        return self._keys[used], self._values[used]

    def _rebuild(self, entries: int) -> None:
        keys, values = self.items()
        self._reset(_bits_for(entries))
        self._fill(keys, values)

    def _fill(self, keys: U64, values: I64) -> None:
        """Put distinct keys into this empty table in one pass. In order of home
        slot, each key takes its home or, if taken, the slot after the previous
        key's: every slot from a key's home to its own is then in use, as linear
        probing needs. Keys pushed past the last slot go in by `insert` (they wrap)."""
        homes = self._home(keys)
        order = np.argsort(homes, kind="stable")  # nearly sorted already: items() is in slot order
        rank = np.arange(order.size)
        slots = np.maximum.accumulate(homes[order] - rank) + rank
        inside = slots < self._state.size
        placed = order[inside]
        taken = slots[inside]
        self._state[taken] = USED
        self._keys[taken] = keys[placed]
        self._values[taken] = values[placed]
        self._used += placed.size
        wrapped = order[~inside]
        self.insert(keys[wrapped], values[wrapped])
