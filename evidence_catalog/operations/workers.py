"""Worker processes forked by an operation (``verify``, ``add``): how many CPUs there are, and
how a worker arranges to die with the process that forked it.

Workers are forked (Linux only), from a process running no other thread: a lock another thread
held at the fork would stay held in the worker for ever.  Whatever a worker does not bring back
is done again by the process that forked it, with the same functions, so that a worker changes
no outcome (see ``verifying._Offload`` and ``adding_offload.Storing``).
"""

from __future__ import annotations

import ctypes
import os
import signal

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
