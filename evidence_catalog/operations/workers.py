"""Worker processes forked by an operation (``verify``, ``add``): how many CPUs there are, and
how a worker arranges to die with the process that forked it.

Workers are forked (Linux only), from a process running no other thread: a lock another thread
held at the fork would stay held in the worker for ever.  Whatever a worker does not bring back
is done again by the process that forked it, with the same functions, so that a worker changes
no outcome (see ``verifying._Offload`` and ``adding_offload.Storing``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from typing import Any

#: ``prctl``'s option that asks for a signal when the parent dies (``linux/prctl.h``).
_PR_SET_PDEATHSIG = 1


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, as ``taskset`` sets it), else the
    machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def die_with(parent: int) -> None:
    """A worker's first act: to be killed when the process *parent* that forked it dies.  A
    forked worker holds copies of its parent's descriptors, its database connection's among
    them: one outliving an operation that was killed would keep that connection open on the
    server.  A worker that cannot arrange it stops at once (the pool is then broken, and its
    work is done by the forking process)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(1)
    except (OSError, AttributeError):
        os._exit(1)
    if os.getppid() != parent:  # the parent died before that was set
        os._exit(1)


def die_with_and_ignore_interrupts(parent: int) -> None:
    """:func:`die_with`, and Ctrl-C left to the parent: the terminal sends it to the whole
    process group, and the parent, which stops the add, stops its worker too."""
    die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_pool(pool: Any, *, kill: bool, seconds: float) -> None:
    """Stop a worker pool (a ``ProcessPoolExecutor``) an operation is done with: its tasks not
    started are dropped, the one a worker is doing is waited for up to *seconds* (so that it
    leaves no half-written file), and a worker that does not end then -- or at once, with
    *kill* (one given up on) -- is killed.  The pool's thread in this process is waited for too
    (``shutdown`` without waiting forgets it), so that the process runs no other thread
    afterwards: a later operation forks its own workers only then."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    if kill:
        for process in processes:
            with contextlib.suppress(Exception):
                process.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(seconds)
            if process.is_alive():
                process.kill()
                process.join()
    if manager is not None:
        manager.join(seconds)
