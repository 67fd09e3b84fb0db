"""runloop.finish_unless_stopped: a stop signal cuts the end-of-capture reports
short, even one that comes while its handlers are going in."""

from __future__ import annotations

import os
import signal

import pytest

from tcpscope.cli import runloop

SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


def test_a_signal_during_finish_cuts_it_short() -> None:
    def finish() -> None:
        os.kill(os.getpid(), signal.SIGUSR2)
        raise AssertionError("not cut short")

    assert runloop.finish_unless_stopped(finish, SIGNALS)
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL


def test_a_signal_between_two_handlers_going_in_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first handler is in, the second not yet, when SIGUSR1 comes (a worker
    told to stop just as its capture ended): cut short, not a traceback."""
    real = signal.signal
    installs = []

    def install_then_signal(signum: int, handler: object) -> object:
        previous = real(signum, handler)  # type: ignore[arg-type]
        installs.append(signum)
        if len(installs) == 1:
            os.kill(os.getpid(), signal.SIGUSR1)
        return previous

    monkeypatch.setattr(runloop.signal, "signal", install_then_signal)
    finished = []
    assert runloop.finish_unless_stopped(lambda: finished.append(1), SIGNALS)
    monkeypatch.undo()
    assert not finished
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL


def _signal_at_restore(monkeypatch: pytest.MonkeyPatch, restore_number: int) -> None:
    """The signal whose handler goes back `restore_number`-th comes just before
    it does (after the two installed ones), so ours still takes it."""
    real = signal.signal
    calls = []

    def signal_then_restore(signum: int, handler: object) -> object:
        calls.append(signum)
        if len(calls) == len(SIGNALS) + restore_number:
            assert signum == SIGNALS[restore_number - 1]
            os.kill(os.getpid(), signum)  # handled here, by our handler
        return real(signum, handler)  # type: ignore[arg-type]

    monkeypatch.setattr(runloop.signal, "signal", signal_then_restore)


def test_a_second_signal_while_the_handlers_go_back_is_no_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stop twice (the second as the first's clean-up runs): cut short once, and
    the handlers are back (stop 23's CI: a worker's traceback from the finally)."""
    _signal_at_restore(monkeypatch, 1)

    def finish() -> None:
        os.kill(os.getpid(), signal.SIGUSR2)
        raise AssertionError("not cut short")

    assert runloop.finish_unless_stopped(finish, SIGNALS)
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL


def test_a_first_signal_after_finish_is_done_cuts_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reports are all out when the stop comes, as the second handler goes back."""
    _signal_at_restore(monkeypatch, 2)
    finished = []
    assert not runloop.finish_unless_stopped(lambda: finished.append(1), SIGNALS)
    monkeypatch.undo()
    assert finished == [1]
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL
