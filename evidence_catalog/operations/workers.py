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
import gc
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future
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


def collect_own_cycles() -> None:
    """A worker's collector, as its tasks need it: on (also when the worker was forked while its
    parent had collection paused or turned off), and never walking what it was forked with
    (the parent's pages, replay, records), which is put in the permanent generation."""
    gc.freeze()
    gc.enable()


def forked_pool(workers: int, timeout: float, initializer: Callable[..., None], *initargs: Any) -> Any:
    """A ``ProcessPoolExecutor`` of *workers* processes forked now, each having run
    ``initializer(*initargs)`` (waited for up to *timeout* seconds), or ``None`` where they cannot
    be had (the pool, if one was made, stopped again): the operation then does its work alone.

    The pool's threads in this process are started with SIGPIPE blocked: a task written to a
    worker that died is then an error the pool handles, where the command line (which has
    SIGPIPE end the process, as Unix tools do) would otherwise end there and then.  The workers
    get SIGPIPE back as this process had it."""
    import multiprocessing  # imported only when workers are started
    from concurrent.futures import ProcessPoolExecutor

    pool = None
    unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
    try:
        pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_worker_started,
            initargs=(unblocked, initializer, initargs),
        )
        started = pool.submit(int)  # the workers forked, the pool's threads started
    except Exception:  # noqa: BLE001 -- no workers
        if pool is not None:
            stop_pool(pool, kill=True, seconds=1.0)
        return None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
    try:
        answer(pool, started, timeout)
    except Exception:  # noqa: BLE001 -- workers that did not start
        stop_pool(pool, kill=True, seconds=1.0)
        return None
    return pool


def _worker_started(mask: Any, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    initializer(*initargs)


def _processes(pool: Any) -> list[Any]:
    """The worker processes of *pool* (``ProcessPoolExecutor`` keeps them by pid)."""
    return list((getattr(pool, "_processes", None) or {}).values())


def workers_alive(pool: Any) -> bool:
    """Whether every worker of *pool* is still running."""
    return all(process.is_alive() for process in _processes(pool))


def answer(
    pool: Any, future: Future[Any], timeout: float, *, every: float = 0.25, waiting: Callable[[], None] | None = None
) -> Any:
    """*future*'s result, within *timeout* seconds: ``TimeoutError`` then, or as soon as a worker
    of *pool* is gone (a worker killed while it wrote its answer leaves half a message in the
    pipe back, whose rest the pool waits for for ever: the future would never end).  *waiting*
    is called every *every* seconds meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return future.result(timeout=max(0.0, min(every, deadline - time.monotonic())))
        except TimeoutError:
            if time.monotonic() >= deadline or not workers_alive(pool):
                raise
        if waiting is not None:
            waiting()


def stop_pool(pool: Any, *, kill: bool, seconds: float) -> None:
    """Stop a worker pool (a ``ProcessPoolExecutor``) an operation is done with: its tasks not
    started are dropped, the one a worker is doing is waited for up to *seconds* (so that it
    leaves no half-written file), and a worker that does not end then -- or at once, with
    *kill* (one given up on) -- is killed.  The pool's thread in this process is waited for too
    (``shutdown`` without waiting forgets it), so that the process runs no other thread
    afterwards: a later operation forks its own workers only then."""
    processes = _processes(pool)
    manager = getattr(pool, "_executor_manager_thread", None)
    answers: Any = getattr(pool, "_result_queue", None)  # (shutdown forgets it)
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
    if manager is None:
        return
    if manager.is_alive() and not any(process.is_alive() for process in processes):
        # A worker killed while it wrote its answer left the pool's thread reading the rest of
        # it: this process's own copy of the pipe's writing end, closed once no worker is left,
        # ends that read (the pool then finds itself broken, and its thread ends).
        with contextlib.suppress(Exception):
            answers._writer.close()
    manager.join(seconds)
