"""An ingest's custody events, presealed in a worker process while the ingest goes on.

Each new report of an ingest gets its own custody event, and most of what sealing an event
costs -- a salted digest for each of the thirty or so values of its details, and the canonical
JSON of the whole -- does not depend on the events before it: only ``prev_hash`` and ``seq``
do (:func:`~evidence_catalog.sealing.preseal`).  With two CPUs or more, an ingest of
:data:`OFFLOAD_ITEMS` reports or more forks one worker, gives each event's details their
secret as they are made, and sends them in chunks; the worker makes their presealed forms while
the ingest makes the next items' records and rows, and the ingest then links each event into
the log from its form (:func:`~evidence_catalog.sealing.sealed_salted`).

The worker computes; the ingest decides.  What the worker does not bring back (an error, a
worker that died, no answer in :data:`TASK_TIMEOUT` seconds; the ingest's last chunks when
the worker has not finished them) is sealed in the ingest with
:func:`~evidence_catalog.sealing._seal`, the function an ingest without a worker uses, on the
same details and secret: the events, their hashes and leaves are the same either way, and
``tests/test_ingest_offload.py`` holds them so.  The worker is forked (Linux only), from a
process running no other thread, before the ingest's write transaction begins; it dies with
the ingest (see :mod:`evidence_catalog.operations.workers`).
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from evidence_catalog.operations.workers import (
    answer,
    collect_own_cycles,
    die_with_and_ignore_interrupts,
    forked_pool,
    stop_pool,
    usable_cpus,
)
from evidence_catalog.sealing import Presealed, preseal, with_secret
from evidence_catalog.store.database import EventDraft

#: An ingest of fewer reports seals its events itself (the fork and the pool cost more).
OFFLOAD_ITEMS = 2000
#: An input smaller than this is taken to hold fewer than :data:`OFFLOAD_ITEMS` items (a
#: digest's item is about 350 bytes, a Telegram message's 500, a tweet's thousands).
OFFLOAD_BYTES = 512 * 1024
#: Events sent to the worker in one task.
CHUNK = 256
#: How long a task may take before its events are sealed in the ingest instead.  A task takes
#: about a tenth of a second; the ingest (or import) waits for it holding the catalog's write
#: lock, which other writers wait at most 60 s for (SQLite's busy timeout): a worker stopped
#: (SIGSTOP, a debugger) must not keep them out that long.
TASK_TIMEOUT = 30.0
#: How long closing waits for the worker to end.
CLOSE_SECONDS = 10.0
#: Whether the ingest waits for its last chunks too when the worker has not finished them (the
#: tests, to know which events the worker presealed), rather than seal them itself.
PATIENT = False


def _start_worker(parent: int, closed: int | None = None) -> None:
    """The worker's first act: to die with the ingest, and to collect the reference cycles its
    tasks leave (the ingest pauses the collector, and the worker was forked so) without ever
    walking what it was forked with, which the ingest's pages hold.  *closed*: a descriptor
    of the ingest's that a worker is not to hold (the reading end of a pipe the ingest reads
    from: a worker writing to it is to fail once the ingest stops reading)."""
    if closed is not None:
        os.close(closed)
    die_with_and_ignore_interrupts(parent)
    collect_own_cycles()


def presealed_chunk(drafts: Sequence[EventDraft]) -> list[Presealed | None]:
    """The worker's task: :func:`~evidence_catalog.sealing.preseal` of each draft, in order."""
    return [preseal(**draft) for draft in drafts]


def salted(draft: EventDraft) -> EventDraft:
    """*draft* with its details given their secret (:func:`~evidence_catalog.sealing.with_secret`),
    as an event linked from a presealed form, or sealed beside such events, holds them."""
    return EventDraft(
        at=draft["at"],
        actor=draft["actor"],
        action=draft["action"],
        subject=draft["subject"],
        details=with_secret(draft["details"]),
    )


class Presealing:
    """The presealing of one ingest's events (see the module's documentation).

    :meth:`begin` forks the worker; :meth:`draft` gives an event's details their secret and,
    with a worker, sends them on;
    :meth:`take` gives the presealed forms of the drafts made since the last :meth:`take`, in
    their order (``None`` for each the ingest is to seal itself), or ``None`` without a
    worker, when the ingest seals its events as it always did."""

    def __init__(self) -> None:
        self.pool: Any = None
        self.broken = False
        #: The worker processes forked (0: none).
        self.workers = 0
        #: A feed read by one of them (see :mod:`~evidence_catalog.operations.ingesting_stream`).
        self.stream: Any = None
        #: Drafts not sent yet, and the tasks sent (each with how many drafts it holds).
        self.waiting: list[EventDraft] = []
        self.sent: deque[tuple[int, Future[list[Presealed | None]] | None]] = deque()
        #: Forms brought back and not taken yet.
        self.ready: deque[Presealed | None] = deque()

    def begin(self, size: int, *, workers: int = 1, closed_in_workers: int | None = None) -> None:
        """Fork the worker for an ingest of an input of *size* bytes, where it may pay (an input
        of :data:`OFFLOAD_BYTES` or more: the ingest stops it again, with :meth:`close`, when
        fewer than :data:`OFFLOAD_ITEMS` items are found in it) and can be had: before the
        ingest's write transaction, and before any other thread.  *workers*: two where one is
        to read the input meanwhile (and holds *closed_in_workers* no longer)."""
        if self.active or size < OFFLOAD_BYTES or usable_cpus() < 2 or not sys.platform.startswith("linux"):
            return
        if threading.active_count() > 1:  # a lock another thread holds would stay held in the worker
            return
        # (None: sealed as always)
        self.pool = forked_pool(workers, TASK_TIMEOUT, _start_worker, os.getpid(), closed_in_workers)
        self.workers = workers if self.pool is not None else 0

    @property
    def active(self) -> bool:
        """Whether events are presealed: a worker was had (whatever became of it since)."""
        return self.pool is not None or self.broken

    def draft(self, draft: EventDraft) -> EventDraft:
        """*draft* as it is to be linked into the log: with a worker, its details with their
        secret, sent to be presealed."""
        if not self.active:
            return draft
        given = salted(draft)
        self.waiting.append(given)
        if len(self.waiting) >= CHUNK:
            self._send()
        return given

    def flush(self) -> None:
        """Send the drafts made since the last chunk was sent (fewer than a chunk) now."""
        self._send()

    def take(self, count: int, *, wait: bool = True) -> list[Presealed | None] | None:
        """The presealed forms of the next *count* drafts made (the oldest not taken yet), in
        order; ``None`` without a worker.  Without *wait* (the ingest's last drafts), a chunk
        the worker has not finished is sealed by the ingest rather than waited for."""
        if not self.active:
            return None
        while len(self.ready) < count:
            if self.sent:
                self.ready.extend(self._result(*self.sent.popleft(), wait=wait))
            elif self.waiting:
                self._send()
            else:
                raise ValueError("presealed forms taken for drafts that were not made")
        return [self.ready.popleft() for _ in range(count)]

    def _send(self) -> None:
        if not self.waiting:
            return
        chunk, self.waiting = self.waiting, []
        future = None
        if self.pool is not None and not self.broken:
            try:
                future = self.pool.submit(presealed_chunk, chunk)
            except Exception:  # noqa: BLE001 -- a pool that broke: sealed in the ingest
                self.broken = True
        self.sent.append((len(chunk), future))

    def _result(
        self, size: int, future: Future[list[Presealed | None]] | None, *, wait: bool
    ) -> list[Presealed | None]:
        if future is None or self.broken:
            return [None] * size
        if not wait and not PATIENT and not future.done():
            # The ingest's last chunks: sealed there rather than waited for (the worker's
            # answer, if it comes, is not used).
            future.cancel()
            return [None] * size
        try:
            found = answer(self.pool, future, TASK_TIMEOUT)
        except Exception:  # noqa: BLE001 -- failed, died or hung: these and the rest sealed here
            self.broken = True
            return [None] * size
        if not isinstance(found, list) or len(found) != size:
            self.broken = True
            return [None] * size
        return found

    def submit(self, task: Callable[[Any], Any], argument: Any) -> Future[Any] | None:
        """Give the worker another *task* (a function it runs on *argument*); ``None`` without a
        worker or when it cannot be given (the caller then does the work itself)."""
        if self.pool is None or self.broken:
            return None
        try:
            future: Future[Any] = self.pool.submit(task, argument)
        except Exception:  # noqa: BLE001 -- a pool that broke: the caller does the work
            self.broken = True
            return None
        return future

    def answer_to(self, future: Future[Any] | None) -> Any | None:
        """What the worker gave back for a task of :meth:`submit` (waited for at most
        :data:`TASK_TIMEOUT` seconds), or ``None`` when it gave nothing: not given, failed,
        died, hung (no more tasks are then given to it)."""
        if future is None or future.cancelled():
            return None
        if future.done() and future.exception(timeout=0) is None:
            return future.result(timeout=0)  # (also a task ended before the worker was given up on)
        if self.broken:
            return None
        try:
            return answer(self.pool, future, TASK_TIMEOUT)
        except Exception:  # noqa: BLE001 -- failed, died or hung: the caller does the work
            self.broken = True
            return None

    def close(self) -> None:
        """Stop the worker (a task not started is dropped; one that does not end within
        :data:`CLOSE_SECONDS` is killed), and wait for the pool's thread here.  Closed, this
        presealing is as a new one: :meth:`begin` may fork anew."""
        pool, self.pool = self.pool, None
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.close()  # a worker still sending the feed's entries then stops
        # Not waited for: a worker given up on, or one reading a feed the ingest stopped reading.
        broken = self.broken or (stream is not None and not stream.finished)
        self.waiting.clear()
        self.sent.clear()
        self.ready.clear()
        self.broken, self.workers = False, 0  # closed: as new
        if pool is None:
            return
        stop_pool(pool, kill=broken, seconds=CLOSE_SECONDS)
