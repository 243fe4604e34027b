"""SIGTERM and the exit flush: what lets a stopped service write what is still queued.

By default SIGTERM kills Python without running ``atexit``; `install_sigterm_handler` turns it into
``SystemExit(143)`` in the main thread (only over the default disposition, only from the main thread),
and `_close_all_at_exit` closes every live auditor at interpreter exit, ignoring a second SIGTERM
until the flush is done.

Knows nothing of the `Auditor`: what is closed at exit is whatever registered in `live_auditors`
(anything with ``close()``). Must not import the auditor, the writer or any other stage, and never
raises out of a signal handler or the exit hook (failures are reported through `guard.report`).
"""

from __future__ import annotations

import atexit
import itertools
import os
import signal
import sys
import threading
import time
import weakref
from typing import Any, Protocol

from .._guard import logger, report

__all__ = ["Closable", "install_sigterm_handler", "live_auditors"]


class Closable(Protocol):
    """What the exit flush closes: an `Auditor` (any object with ``close()``)."""

    def close(self) -> None: ...


#: The auditors closed at interpreter exit; `Auditor.__init__` adds itself.
live_auditors: weakref.WeakSet[Closable] = weakref.WeakSet()


class _SigtermExit(SystemExit):
    """The ``SystemExit(143)`` that llmaudit's SIGTERM handler raises: a subclass only so that it can
    be recognised when Python swallows it (see `_resend_swallowed_sigterm`)."""


_RESEND_DELAY_S = 0.05
_MAX_RESENDS = 100
_resends = itertools.count()  # how many times SIGTERM was sent again, capped
_hook_before_ours: Any = None


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise _SigtermExit(128 + signum)


_sigterms_during_exit: list[int] = []


def _note_sigterm_during_exit(signum: int, frame: object) -> None:
    """SIGTERM while the exit flush runs: the process is already exiting, and raising SystemExit
    there would cut the flush short (the records still queued would be lost). The flush is bounded
    by ``shutdown_timeout_s`` and spills what it cannot write, so the signal is noted (and reported
    once the flush is done, not from the handler) and otherwise ignored."""
    _sigterms_during_exit.append(signum)


def _sigterm_is_ours() -> bool:
    try:
        return signal.getsignal(signal.SIGTERM) is _exit_on_sigterm
    except (ValueError, OSError, AttributeError):  # pragma: no cover - no SIGTERM here
        return False


def _resend_swallowed_sigterm(unraisable: Any) -> None:
    """``sys.unraisablehook`` while llmaudit handles SIGTERM.

    Python runs a signal handler in the main thread at the next bytecode boundary, which can be
    inside a weakref callback, a ``__del__`` or a garbage-collector callback. An exception raised
    there cannot propagate: Python prints "Exception ignored in ..." and goes on, so the handler's
    SystemExit would be lost and the process would carry on as if it had never been asked to stop
    (seen under load: a WeakSet's callback swallowed it and the process ran to its natural end).
    When the swallowed exception is ours, SIGTERM is sent again to the main thread, from a thread,
    once the main thread has left the place that swallowed it.
    """
    if isinstance(unraisable.exc_value, _SigtermExit) and next(_resends) < _MAX_RESENDS:
        threading.Thread(target=_resend_sigterm, name="llmaudit-sigterm", daemon=True).start()
    previous = _hook_before_ours if _hook_before_ours is not None else sys.__unraisablehook__
    previous(unraisable)


def _resend_sigterm() -> None:
    time.sleep(_RESEND_DELAY_S)
    if signal.getsignal(signal.SIGTERM) is not _exit_on_sigterm:
        return  # exiting already (the exit flush swapped the handler) or an application took over
    main = threading.main_thread().ident
    if hasattr(signal, "pthread_kill") and main is not None:
        # to the main thread itself, so that a blocking call there (sleep, select) is interrupted
        signal.pthread_kill(main, signal.SIGTERM)
    else:  # pragma: no cover - Windows has no pthread_kill
        os.kill(os.getpid(), signal.SIGTERM)


def install_sigterm_handler() -> bool:
    """Make SIGTERM a normal exit (``SystemExit(143)`` in the main thread) so that the atexit flush
    runs: by default SIGTERM kills Python without running atexit, losing what is still queued.

    Only when SIGTERM still has its default disposition (an application or server that handles it
    itself exits normally and is left alone) and on the main thread (the only one that may set a
    handler). Returns whether the handler is in place. A ``sys.unraisablehook`` wrapper (which calls
    the hook it replaces) sends SIGTERM again when Python swallowed the handler's SystemExit.
    """
    global _hook_before_ours
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is _exit_on_sigterm:
            return True
        if current is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    except (ValueError, OSError, AttributeError):  # no SIGTERM here, or an embedded interpreter
        return False
    if sys.unraisablehook is not _resend_swallowed_sigterm:
        _hook_before_ours, sys.unraisablehook = sys.unraisablehook, _resend_swallowed_sigterm
    return True


@atexit.register
def _close_all_at_exit() -> None:
    # First: a SIGTERM from here on must not cut the flush short.
    ours = _sigterm_is_ours() and _set_sigterm(_note_sigterm_during_exit)
    for auditor in list(live_auditors):
        try:
            auditor.close()
        except Exception as exc:  # noqa: BLE001 - exit must go on; the loss is logged
            report("exit flush", exc)
    if ours:
        _set_sigterm(signal.SIG_DFL)  # the rest of the exit: SIGTERM kills again
        if _sigterms_during_exit:
            logger.warning("SIGTERM arrived during llmaudit's exit flush and was ignored until it ended")


def _set_sigterm(handler: Any) -> bool:
    """Set SIGTERM's handler if this thread may (the exit flush must run whatever happens here)."""
    try:
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not the main thread of the main interpreter
        return False
    return True
