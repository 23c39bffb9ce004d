"""The experiment loop's Ctrl-C handling: noted at once, acted on between steps."""

import os
import signal

import pytest

from skate.tune.runner import _CtrlC

pytestmark = pytest.mark.skate_only


def test_first_ctrl_c_is_noted_a_second_interrupts_and_restore_puts_back_the_default():
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ctrl_c = _CtrlC()
    try:
        assert not ctrl_c.pressed
        # the handler runs in this (main) thread before the next line
        os.kill(os.getpid(), signal.SIGINT)
        assert ctrl_c.pressed
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        ctrl_c.restore()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_of_the_programs_own_is_left_alone():
    seen = []
    previous = signal.signal(signal.SIGINT, lambda s, f: seen.append(s))
    try:
        ctrl_c = _CtrlC()
        os.kill(os.getpid(), signal.SIGINT)
        assert seen == [signal.SIGINT] and not ctrl_c.pressed
        ctrl_c.restore()
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
