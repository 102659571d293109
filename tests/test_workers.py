"""Stopping an operation's worker pool (``workers.stop_pool``) leaves no thread behind, also when
a worker was killed while it wrote its answer: the pool's thread in this process would read the
rest of that answer for ever, and the interpreter waits for that thread when it exits."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

import pytest

from evidence_catalog.operations import workers

from .spawned import in_new_interpreter

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the workers are forked: Linux only")


def _answering_half(_: Any) -> None:
    """A worker's task that writes the start of an answer of 1 MiB into the pipe back, then
    kills its worker."""
    import gc
    import struct
    from multiprocessing.queues import SimpleQueue

    [answers] = [o for o in gc.get_objects() if isinstance(o, SimpleQueue)]
    os.write(answers._writer.fileno(), struct.pack("!i", 1 << 20) + b"\x80\x04")  # type: ignore[attr-defined]
    os.kill(os.getpid(), signal.SIGKILL)


def _stopped(kill: bool) -> dict[str, Any]:
    pool = workers.forked_pool(1, 10.0, lambda: None)
    assert pool is not None
    future = pool.submit(_answering_half, None)
    time.sleep(1.0)  # (the half answer written, the worker gone; the pool's thread reads on)
    started = time.monotonic()
    workers.stop_pool(pool, kill=kill, seconds=5.0)
    return {
        "seconds": time.monotonic() - started,
        "threads": threading.active_count(),
        "done": future.done(),
    }


@pytest.mark.parametrize("kill", [True, False])
def test_a_pool_whose_worker_died_answering_is_stopped_with_its_thread(kill: bool) -> None:
    result = in_new_interpreter(_stopped, kill, timeout=60)
    assert result.get("threads") == 1, result
    assert result["seconds"] < 4.0  # not the wait for the pool's thread that cannot end
