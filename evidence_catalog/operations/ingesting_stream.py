"""An RSS or Atom feed read in an ingest's worker process while the ingest writes its entries.

feedparser returns nothing before it has read the whole feed, and reading takes about as long
as all the ingest does with the entries afterwards.  With two CPUs or more, an ingest of a feed
of :data:`~evidence_catalog.operations.ingesting_offload.OFFLOAD_BYTES` or more forks two
workers instead of one: one reads the feed (:func:`~evidence_catalog.ingest.feed.stream_feed`)
and sends its entries down a pipe, a batch at a time, as feedparser ends each; the other
preseals the events of the entries the ingest has made records of meanwhile.

The worker reads; the ingest decides.  What was sent stands only when the worker's last message
says so: the feed was well-formed, its kind, title and link did not change after the entries
were made, and :func:`~evidence_catalog.ingest.feed.parse_feed` would accept it.  Anything else
-- that message saying otherwise, a worker that died, a message cut short, nothing for
:data:`~evidence_catalog.operations.ingesting_offload.TASK_TIMEOUT` seconds -- is
:class:`StreamLostError`: the ingest rolls back what it wrote of the entries and reads the feed
itself, as an ingest without a worker does, which also says what is wrong with a feed it
refuses.  ``tests/test_ingest_stream.py`` holds the outcome of both equal.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import pickle
import select
import struct
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from evidence_catalog.ingest.feed import FeedEntry, stream_feed, worth_reading_apart
from evidence_catalog.ingest.formats import PreparedReport
from evidence_catalog.operations import ingesting_offload
from evidence_catalog.operations.workers import workers_alive

#: A message's length, before it: 8 bytes, little-endian.
_HEADER = struct.Struct("<Q")
#: The longest message taken (a batch of entries is some hundreds of KiB).
MAX_MESSAGE = 1 << 30
#: The pipe's room (the most a process may give one without privileges, by default): some
#: batches of entries, which the worker sends without waiting for the ingest.
PIPE_BYTES = 1 << 20
#: How often a wait for the reading worker looks whether it is still there.
_EVERY = 0.25


class StreamLostError(Exception):
    """What the worker sent cannot be used: the ingest reads the feed itself."""


def streamed(task: tuple[bytes, str, int]) -> bool:
    """The reading worker's task: *raw*'s entries sent down the pipe *fd* as
    ``("entries", [prepared report, ...])`` messages, then ``("end", warnings)``, where
    ``warnings`` is ``None`` when what was sent is not to be used."""
    raw, where, fd = task

    def send(entries: list[FeedEntry]) -> None:
        _write(fd, ("entries", [(e.report, e.title, e.where, (), e.document) for e in entries]))

    # The collector paused while the feed is read, as the ingest reading it itself pauses it:
    # what feedparser builds lives to the end, and each full collection would walk all of it.
    gc.disable()
    try:
        _write(fd, ("end", stream_feed(raw, where=where, send=send)))
    finally:
        gc.enable()
    return True


def _write(fd: int, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


class FeedStream:
    """The entries a reading worker sends (see the module's documentation)."""

    def __init__(self, fd: int, future: Future[Any], pool: Any) -> None:
        self.fd, self.future, self.pool = fd, future, pool
        #: The feed's warnings, once every entry was read.
        self.warnings: tuple[tuple[int, str], ...] = ()
        #: Whether every entry was read; *settled*: that, or that they cannot be used.
        self.finished = self.settled = False

    @classmethod
    def start(cls, presealing: ingesting_offload.Presealing, raw: bytes, where: str) -> FeedStream | None:
        """Fork *presealing*'s workers, two of them, and have one read the feed *raw*; ``None``
        where that cannot be had (the input is too small, one CPU, another thread running...):
        the ingest then reads the feed itself, and *presealing* may have one worker or none."""
        if not worth_reading_apart(raw):
            return None
        read_end, write_end = os.pipe()
        with contextlib.suppress(OSError):  # room for some batches: the worker reads on meanwhile
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        try:
            presealing.begin(len(raw), workers=2, closed_in_workers=read_end)
        finally:
            os.close(write_end)  # the workers have it (had they been forked)
        future = presealing.submit(streamed, (raw, where, write_end)) if presealing.workers == 2 else None
        if future is None:
            os.close(read_end)
            return None
        stream = cls(read_end, future, presealing.pool)
        presealing.stream = stream
        return stream

    def chunks(self) -> Iterator[list[PreparedReport]]:
        """The feed's entries, a batch at a time; :class:`StreamLostError` when they cannot be used
        (those given before are then not to be used either)."""
        try:
            while True:
                kind, payload = self._message()
                if kind == "entries" and isinstance(payload, list):
                    yield payload
                elif kind == "end" and isinstance(payload, tuple):
                    self.warnings, self.finished = payload, True
                    self.settled = True
                    return
                else:
                    raise StreamLostError
        except StreamLostError:
            self.settled = True
            raise

    def _message(self) -> tuple[Any, Any]:
        (size,) = _HEADER.unpack(self._read(_HEADER.size))
        if size > MAX_MESSAGE:
            raise StreamLostError
        try:
            message = pickle.loads(self._read(size))
        except Exception:  # noqa: BLE001 -- cut short or garbled
            raise StreamLostError from None
        if not isinstance(message, tuple) or len(message) != 2:
            raise StreamLostError
        return message[0], message[1]

    def _read(self, size: int) -> bytes:
        """*size* bytes from the pipe, waiting at most TASK_TIMEOUT seconds for each part."""
        try:
            return self._read_within(size)
        except (OSError, ValueError):  # the pipe itself failing: as a worker that said nothing
            raise StreamLostError from None

    def _read_within(self, size: int) -> bytes:
        if self.fd < 0:
            raise StreamLostError
        # poll, not select: a process holding more than 1,024 descriptors can still wait on it
        waiting = select.poll()
        waiting.register(self.fd, select.POLLIN)
        data = bytearray()
        deadline = time.monotonic() + ingesting_offload.TASK_TIMEOUT
        while len(data) < size:
            if waiting.poll(_EVERY * 1000):
                part = os.read(self.fd, min(size - len(data), 1 << 20))
                if not part:
                    raise StreamLostError
                data += part
                deadline = time.monotonic() + ingesting_offload.TASK_TIMEOUT
            elif self.future.done():  # it ended: what it wrote is in the pipe, or it never will be
                if not waiting.poll(0):
                    raise StreamLostError
            elif time.monotonic() >= deadline or not workers_alive(self.pool):
                raise StreamLostError
        return bytes(data)

    def close(self) -> None:
        """Stop reading: a worker still writing gets an error, and ends its task."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
