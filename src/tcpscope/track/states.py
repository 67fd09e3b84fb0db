"""The two sides' TCP states and the one transition table that moves them.

Only FIN, SYN, RST and ACK decide a transition (spec: "Per-side TCP state").
`step(flags, sender, receiver)` is a single list lookup: the table is built
once, at import, from the rules below, so the rules stay readable and the hot
path stays cheap.
"""

from __future__ import annotations

from typing import Final

from tcpscope.decode.records import ACK, FIN, RST, SYN

NONE: Final = 0
LISTEN: Final = 1
SYN_SENT: Final = 2
SYN_RECV: Final = 3
ESTABLISHED: Final = 4
FIN_WAIT1: Final = 5
FIN_WAIT2: Final = 6
CLOSE_WAIT: Final = 7
LAST_ACK: Final = 8
CLOSED: Final = 9
TIME_WAIT: Final = 10
NSTATES: Final = 11

STATE_NAMES: Final = (
    "-",
    "LISTEN",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "CLOSE_WAIT",
    "LAST_ACK",
    "CLOSED",
    "TIME_WAIT",
)

# Either side in one of these for 30 s destroys the session (spec: Timeouts).
HALF_OPEN_STATES: Final = frozenset(
    {SYN_SENT, SYN_RECV, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK}
)

DECISIVE_FLAGS: Final = FIN | SYN | RST | ACK

# Outcome bits of one step.
CHANGED: Final = 1  # a side's state changed
UNEXPECTED: Final = 2  # the flags did not fit the states: the segment is shown red
ESTABLISHING: Final = 4  # the SYN/ACK or ACK that made a side ESTABLISHED
CLOSING_ACK: Final = 8  # the ACK that closed the session (TIME_WAIT/CLOSED): blue
IS_RST: Final = 16
RST_DURING_CLOSE: Final = 32  # RST while one side CLOSE_WAIT, the other FIN_WAIT1/2


def _rule(flags: int, sender: int, receiver: int) -> tuple[int, int, int]:
    """The spec's rules for one segment: new sender state, new receiver state, outcome."""
    s, r = sender, receiver
    out = 0
    if flags == SYN | ACK:
        if r == SYN_SENT:
            r = ESTABLISHED
            out |= ESTABLISHING
        else:
            out |= UNEXPECTED
    elif flags == ACK:
        if r == SYN_RECV:
            r = ESTABLISHED
            out |= ESTABLISHING
        elif r == FIN_WAIT1:
            r = FIN_WAIT2
            if s == ESTABLISHED:
                s = CLOSE_WAIT
        elif r == LAST_ACK:
            r = CLOSED
            if s == FIN_WAIT2:
                s = TIME_WAIT
            out |= CLOSING_ACK
    elif flags in (FIN, FIN | ACK):
        if s == ESTABLISHED:
            s = LAST_ACK if r == FIN_WAIT1 else FIN_WAIT1
        elif s == CLOSE_WAIT:
            s = LAST_ACK
        elif s == SYN_RECV:
            s = FIN_WAIT1
        else:
            out |= UNEXPECTED
        if r == FIN_WAIT1:
            r = FIN_WAIT2
    elif flags in (RST, RST | ACK):
        pair = {s, r}
        if CLOSE_WAIT in pair and (FIN_WAIT1 in pair or FIN_WAIT2 in pair):
            out |= RST_DURING_CLOSE
        s = r = CLOSED
        out |= IS_RST
    else:
        # SYN alone on an open session from the server, SYN+FIN, SYN+RST, no flags...
        out |= UNEXPECTED
    if (s, r) != (sender, receiver):
        out |= CHANGED
    return s, r, out


def _build_table() -> list[tuple[int, int, int]]:
    table = []
    for flags in range(16):
        bits = (
            (FIN if flags & 1 else 0)
            | (SYN if flags & 2 else 0)
            | (RST if flags & 4 else 0)
            | (ACK if flags & 8 else 0)
        )
        for sender in range(NSTATES):
            for receiver in range(NSTATES):
                table.append(_rule(bits, sender, receiver))
    return table


_TABLE: Final = _build_table()
# flags byte (FIN SYN RST . ACK) → the 4-bit index used above
_FLAG_INDEX: Final = tuple(
    (1 if f & FIN else 0) | (2 if f & SYN else 0) | (4 if f & RST else 0) | (8 if f & ACK else 0)
    for f in range(256)
)


# The receiver states in which a bare ACK changes nothing and is not unexpected,
# whatever the sender's state: such an ACK has no outcome at all.
QUIET_ACK_RECEIVERS: Final = frozenset(
    r for r in range(NSTATES) if all(_rule(ACK, s, r) == (s, r, 0) for s in range(NSTATES))
)


def step(flags: int, sender: int, receiver: int) -> tuple[int, int, int]:
    """New (sender, receiver) states and the outcome bits for a segment's flags byte."""
    return _TABLE[(_FLAG_INDEX[flags & 0xFF] * NSTATES + sender) * NSTATES + receiver]


def is_closed(client: int, server: int) -> bool:
    """Both CLOSED, or one TIME_WAIT and the other CLOSED."""
    if client == CLOSED:
        return server in (CLOSED, TIME_WAIT)
    return client == TIME_WAIT and server == CLOSED


def opens_session(flags: int) -> bool:
    """A SYN without ACK (nor FIN/RST) opens a session; ECE, CWR, PSH, URG are ignored."""
    return flags & DECISIVE_FLAGS == SYN
