"""The transition table against the spec's rules ("Per-side TCP state")."""

from __future__ import annotations

import itertools

import pytest

from tcpscope.decode.records import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG
from tcpscope.track import states as st
from tcpscope.track.states import (
    CLOSE_WAIT,
    CLOSED,
    ESTABLISHED,
    FIN_WAIT1,
    FIN_WAIT2,
    LAST_ACK,
    SYN_RECV,
    SYN_SENT,
    TIME_WAIT,
)

ALL_STATES = range(st.NSTATES)


def test_state_names_match_the_spec() -> None:
    assert st.STATE_NAMES[SYN_SENT] == "SYN_SENT"
    assert st.STATE_NAMES[TIME_WAIT] == "TIME_WAIT"
    assert st.STATE_NAMES[st.NONE] == "-"
    assert len(st.STATE_NAMES) == st.NSTATES


def test_synack_establishes_a_syn_sent_receiver() -> None:
    s, r, out = st.step(SYN | ACK, SYN_RECV, SYN_SENT)
    assert (s, r) == (SYN_RECV, ESTABLISHED)
    assert out & st.ESTABLISHING and out & st.CHANGED and not out & st.UNEXPECTED


@pytest.mark.parametrize("receiver", [s for s in ALL_STATES if s != SYN_SENT])
def test_synack_to_anything_else_is_unexpected(receiver: int) -> None:
    s, r, out = st.step(SYN | ACK, SYN_RECV, receiver)
    assert (s, r) == (SYN_RECV, receiver)
    assert out & st.UNEXPECTED


@pytest.mark.parametrize(
    ("sender", "receiver", "expected"),
    [
        (SYN_SENT, SYN_RECV, (SYN_SENT, ESTABLISHED)),  # the handshake's third segment
        (ESTABLISHED, SYN_RECV, (ESTABLISHED, ESTABLISHED)),
        (ESTABLISHED, FIN_WAIT1, (CLOSE_WAIT, FIN_WAIT2)),
        (FIN_WAIT1, FIN_WAIT1, (FIN_WAIT1, FIN_WAIT2)),
        (FIN_WAIT2, LAST_ACK, (TIME_WAIT, CLOSED)),
        (ESTABLISHED, LAST_ACK, (ESTABLISHED, CLOSED)),
        (ESTABLISHED, ESTABLISHED, (ESTABLISHED, ESTABLISHED)),
        (CLOSE_WAIT, FIN_WAIT2, (CLOSE_WAIT, FIN_WAIT2)),
    ],
)
def test_ack_rules(sender: int, receiver: int, expected: tuple[int, int]) -> None:
    s, r, out = st.step(ACK, sender, receiver)
    assert (s, r) == expected
    assert not out & st.UNEXPECTED
    assert bool(out & st.CHANGED) == ((s, r) != (sender, receiver))


def test_the_closing_ack_is_flagged() -> None:
    assert st.step(ACK, FIN_WAIT2, LAST_ACK)[2] & st.CLOSING_ACK
    assert not st.step(ACK, ESTABLISHED, FIN_WAIT1)[2] & st.CLOSING_ACK


@pytest.mark.parametrize("fin", [FIN, FIN | ACK])
@pytest.mark.parametrize(
    ("sender", "receiver", "expected"),
    [
        (ESTABLISHED, ESTABLISHED, (FIN_WAIT1, ESTABLISHED)),
        (ESTABLISHED, FIN_WAIT1, (LAST_ACK, FIN_WAIT2)),  # simultaneous close
        (CLOSE_WAIT, FIN_WAIT2, (LAST_ACK, FIN_WAIT2)),
        (SYN_RECV, ESTABLISHED, (FIN_WAIT1, ESTABLISHED)),
    ],
)
def test_fin_rules(fin: int, sender: int, receiver: int, expected: tuple[int, int]) -> None:
    s, r, out = st.step(fin, sender, receiver)
    assert (s, r) == expected
    assert not out & st.UNEXPECTED


@pytest.mark.parametrize("sender", [SYN_SENT, FIN_WAIT1, FIN_WAIT2, LAST_ACK, CLOSED, TIME_WAIT])
def test_fin_from_a_state_that_cannot_send_one_is_unexpected(sender: int) -> None:
    assert st.step(FIN | ACK, sender, ESTABLISHED)[2] & st.UNEXPECTED


@pytest.mark.parametrize("rst", [RST, RST | ACK])
@pytest.mark.parametrize(("sender", "receiver"), list(itertools.product(ALL_STATES, ALL_STATES)))
def test_rst_closes_both_sides(rst: int, sender: int, receiver: int) -> None:
    s, r, out = st.step(rst, sender, receiver)
    assert (s, r) == (CLOSED, CLOSED)
    assert out & st.IS_RST
    during_close = {sender, receiver} & {CLOSE_WAIT} and {sender, receiver} & {FIN_WAIT1, FIN_WAIT2}
    assert bool(out & st.RST_DURING_CLOSE) == bool(during_close)


@pytest.mark.parametrize(
    "flags", [SYN, SYN | FIN, SYN | RST, FIN | RST, FIN | RST | ACK, SYN | FIN | ACK, 0, PSH, URG]
)
def test_other_flag_combinations_are_unexpected_and_change_nothing(flags: int) -> None:
    s, r, out = st.step(flags, ESTABLISHED, ESTABLISHED)
    assert (s, r) == (ESTABLISHED, ESTABLISHED)
    assert out & st.UNEXPECTED


def test_psh_urg_ece_cwr_do_not_count() -> None:
    for extra in (PSH, URG, ECE, CWR, PSH | URG | ECE | CWR):
        assert st.step(ACK | extra, ESTABLISHED, FIN_WAIT1) == st.step(ACK, ESTABLISHED, FIN_WAIT1)
        assert st.step(FIN | ACK | extra, ESTABLISHED, ESTABLISHED) == st.step(
            FIN | ACK, ESTABLISHED, ESTABLISHED
        )


def test_is_closed() -> None:
    assert st.is_closed(CLOSED, CLOSED)
    assert st.is_closed(TIME_WAIT, CLOSED)
    assert st.is_closed(CLOSED, TIME_WAIT)
    assert not st.is_closed(TIME_WAIT, TIME_WAIT)
    assert not st.is_closed(CLOSED, LAST_ACK)


def test_opens_session_ignores_ecn_bits() -> None:
    assert st.opens_session(SYN)
    assert st.opens_session(SYN | ECE | CWR)  # an ECN-setup SYN (the original missed these)
    assert not st.opens_session(SYN | ACK)
    assert not st.opens_session(SYN | RST)
    assert not st.opens_session(ACK)


def test_a_whole_close_sequence() -> None:
    """The README's session 3615: FIN from the client, FIN/ACK back, the last ACK."""
    c, s = ESTABLISHED, ESTABLISHED
    c, s, _ = st.step(FIN | ACK, c, s)
    assert (c, s) == (FIN_WAIT1, ESTABLISHED)
    s, c, _ = st.step(FIN | ACK, s, c)
    assert (c, s) == (FIN_WAIT2, LAST_ACK)
    c, s, out = st.step(ACK, c, s)
    assert (c, s) == (TIME_WAIT, CLOSED)
    assert st.is_closed(c, s) and out & st.CLOSING_ACK
