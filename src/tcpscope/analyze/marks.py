"""Why a segment is shown (and how it is coloured), and why a session is shown."""

from __future__ import annotations

from typing import Final

# Segment marks (Segment.marks).
M_SYN: Final = 1 << 0  # the opening SYN: yellow
M_ESTAB: Final = 1 << 1  # the SYN/ACK or ACK that established a side: yellow
M_STATE: Final = 1 << 2  # changed a side's state: always among the printed lines
M_CLOSE_ACK: Final = 1 << 3  # the ACK that closed the session: blue
M_RETRANS: Final = 1 << 4  # a retransmission: red
M_RETRANS_OPT: Final = 1 << 5  # a retransmission whose options changed: magenta
M_ORIGINAL: Final = 1 << 6  # the original of a shown retransmission: green
M_BETWEEN: Final = 1 << 7  # between an original and its retransmission: cyan (if shown)
M_RST: Final = 1 << 8  # red
M_FRAG: Final = 1 << 9  # an IP fragment: red
M_DELAY: Final = 1 << 10  # came more than -t ms after the previous segment: red
M_DELAY_PREV: Final = 1 << 11  # the segment before a delayed one
M_UNEXPECTED: Final = 1 << 12  # flags that did not fit the states: red
M_DPI: Final = 1 << 13  # carries DPI lines
M_CONTEXT: Final = 1 << 14  # -v context around a shown segment
M_DUP_SYN: Final = 1 << 15  # the SYN that broke an older session on its 4-tuple: red

# Every mark makes a segment printed when its session is shown.
SHOWN: Final = ~0
# The marks that give a segment a colour (the others print uncoloured): a shown
# retransmission turns the uncoloured segments between it and its original cyan.
COLOURED: Final = (
    M_SYN | M_ESTAB | M_CLOSE_ACK | M_RETRANS | M_RETRANS_OPT | M_ORIGINAL | M_BETWEEN
    | M_RST | M_FRAG | M_DELAY | M_UNEXPECTED | M_DUP_SYN
)  # fmt: skip

# Session reasons (Session.reasons), in the order JSON lists them.
R_RETRANSMIT: Final = 1 << 0
R_SYN_RETRANSMIT: Final = 1 << 1
R_LONG_DELAY: Final = 1 << 2
R_LONG_CONNECT: Final = 1 << 3
R_RST: Final = 1 << 4
R_FRAGMENT: Final = 1 << 5
R_UNEXPECTED: Final = 1 << 6
R_TIMEOUT: Final = 1 << 7
R_DUPLICATE: Final = 1 << 8
R_HALF_OPEN: Final = 1 << 9  # still half-open at the end of the capture
R_ALL: Final = 1 << 10
R_AFTER_DUPLICATE: Final = 1 << 11  # opened by the SYN that broke an older session
R_RST_HIDDEN: Final = 1 << 12  # its RST is one -R does not show (not listed in JSON)

# Reasons that show a session. Unexpected flags colour their segment but, as in
# the original, do not show the session by themselves.
SHOWING: Final = ~(R_UNEXPECTED | R_RST_HIDDEN)
# What an RST that is not shown (-R) takes back: the original keeps one "shown"
# bit per session, and such an RST clears what the segments before it had set.
BEFORE_RST: Final = (
    R_RETRANSMIT | R_SYN_RETRANSMIT | R_LONG_DELAY | R_FRAGMENT | R_AFTER_DUPLICATE | R_RST
)

REASON_NAMES: Final = (
    (R_RETRANSMIT, "retransmit"),
    (R_SYN_RETRANSMIT, "syn_retransmit"),
    (R_LONG_DELAY, "long_delay"),
    (R_LONG_CONNECT, "long_connect"),
    (R_RST, "rst"),
    (R_FRAGMENT, "fragment"),
    (R_UNEXPECTED, "unexpected_flags"),
    (R_TIMEOUT, "timeout"),
    (R_DUPLICATE, "duplicate"),
    (R_HALF_OPEN, "half_open"),
    (R_ALL, "all"),
    (R_AFTER_DUPLICATE, "after_duplicate"),
)


def reason_names(reasons: int) -> list[str]:
    return [name for bit, name in REASON_NAMES if reasons & bit]
