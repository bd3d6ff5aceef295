"""How the stand-in servers (mailbox, devshop, devmodel) wait for SIGINT/SIGTERM: sigwait, no Python handler.

    hold_stop_signals()           # first thing in main(), before any thread starts
    ... start the server thread ...
    wait_for_stop_signal()        # blocks the main thread until SIGINT or SIGTERM
    ... shut the server down ...

Why not `signal.signal(SIGTERM, lambda *_: event.set())`: a Python signal handler runs in the main
thread between two bytecodes of whatever it was doing, and `Event.set()` takes the event's lock,
which is not reentrant. When a second signal arrived while the first handler (or the main thread's
own `event.wait()`) held that lock, the handler waited forever on a lock its own thread held, while
the server thread kept serving: a mailbox that outlived `make dev` and ignored every further
SIGTERM. Here the signals are blocked in every thread and taken synchronously with sigwait, so no
signal ever interrupts code that holds a lock.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def hold_stop_signals() -> None:
    """Block SIGINT and SIGTERM in this thread and in every thread started after it (threads inherit the
    mask), so they wait for wait_for_stop_signal() instead of interrupting whatever code is running."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def wait_for_stop_signal() -> signal.Signals:
    """Block until SIGINT or SIGTERM arrives and return it.

    From then on either signal has its default action again: a second one ends the process at once,
    even if the graceful stop that follows the first one hangs.
    """
    received = signal.sigwait(STOP_SIGNALS)
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    return signal.Signals(received)
