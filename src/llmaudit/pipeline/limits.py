"""The pipeline's defaults and tuning constants, and its modes: plain values, imported by the settings,
the writer and the runners alike (so that the settings' defaults never come from the writer).

Holds no logic, does no I/O and imports nothing of llmaudit's.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FLUSH_INTERVAL_S",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "FORK_WAIT_S",
    "PROBE_INTERVAL_S",
    "RETRY_DELAYS_S",
    "SPOOL_CHECK_INTERVAL_S",
    "Mode",
    "WriterKind",
]

#: Records per storage write.
DEFAULT_BATCH_SIZE = 500
#: How long the writer thread sleeps between rounds when the queue does not fill a batch.
DEFAULT_FLUSH_INTERVAL_S = 0.5
#: Captures queued before `submit` spills from the caller's thread instead of queueing.
DEFAULT_QUEUE_SIZE = 100_000
#: How long `close` (and interpreter exit) waits for the queue to drain.
DEFAULT_SHUTDOWN_TIMEOUT_S = 10.0
#: The pauses between the tries of one storage write (background mode; sync mode tries twice).
RETRY_DELAYS_S = (0.05, 0.25, 1.0)
#: How long a backend that failed every try is left alone (records spill meanwhile).
PROBE_INTERVAL_S = 5.0
#: How often a working writer looks for spool files left by another process.
SPOOL_CHECK_INTERVAL_S = 30.0
#: How long a fork waits for a batch being written (retries included) before it goes ahead anyway.
FORK_WAIT_S = 5.0

#: ``"background"``: a writer thread stores; ``"sync"``: `submit` returns once the record is durable.
Mode = Literal["background", "sync"]
#: ``"thread"``: the writer's work in a thread of this process; ``"process"``: in a child process.
WriterKind = Literal["thread", "process"]
