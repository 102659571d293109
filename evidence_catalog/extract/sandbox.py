"""Running a reader of hostile files in a child process, and saying how it ended.

The media reader (:mod:`~evidence_catalog.extract.media`), the perceptual hasher
(:mod:`~evidence_catalog.extract.perceptual`) and the Content Credentials reader
(:mod:`~evidence_catalog.extract.credentials`) each run a script of their own in a child
process that limits its own time, CPU and memory (``SIGALRM``, ``SIGXCPU``, an address-space
limit that ends in ``SIGKILL`` or a ``MemoryError``), and writes one JSON report on its standard
output.  What ended the child -- the wall-time limit, a crash, a limit -- is said here, once, in
the words each reader's ``stopped_by_the_machine`` recognises; what the report says is the
reader's own business.

:func:`run_script` runs such a script through a fork server
(:mod:`evidence_catalog.extract.forkserver`, one per set of libraries, started on first use and
kept while this process lives): each file still gets a new process with the same limits, forked
from one that has imported the libraries already, which saves a fifth of a second per file.
Where no fork server can be used (not Linux, or it failed), the script runs as a process of its
own, with the same outcome.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

#: Whether :func:`run_script` may use fork servers (Linux only: they rely on ``fork``, on the
#: kernel killing them with their parent, and on anonymous memory files).
FORK_SERVER = sys.platform.startswith("linux") and hasattr(os, "memfd_create")
#: Seconds a fork server may take beyond a request's own limit before it is given up on.
SERVER_GRACE_S = 30
_SERVER_SCRIPT = Path(__file__).with_name("forkserver.py")


def run_child(
    command: Sequence[str],
    *,
    seconds: int,
    reader: str,
    nothing: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[bytes] | None, list[str]]:
    """Run *command* for at most *seconds*: the finished process and no problem, or ``None``
    and why it did not finish by itself ("the {reader} was killed (out of memory?) on this file;
    {nothing}").  *input* is its standard input (else none); its standard error is dropped."""
    try:
        done = subprocess.run(
            command,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=seconds,
            check=False,
            env=None if env is None else dict(env),
        )
    except subprocess.TimeoutExpired:
        return None, [_stopped(reader, seconds, nothing)]
    except OSError as exc:
        return None, [f"the {reader} could not be started: {exc.strerror or exc}"]
    return _ended(done, seconds=seconds, reader=reader, nothing=nothing)


def run_script(
    script: Path,
    args: Sequence[str],
    *,
    preload: Sequence[str],
    seconds: int,
    reader: str,
    nothing: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[bytes] | None, list[str]]:
    """:func:`run_child` of ``python -I SCRIPT ARGS...``, forked from a server that has imported
    the modules *preload* names (``module`` or ``module:function``, the function then called)
    where one can be used: the same outcome, without an interpreter's start per file.  In a
    thread whose :class:`Cancellation` was cancelled: :class:`RequestCancelledError`."""
    command = [sys.executable, "-I", str(script), *args]
    _check_cancelled()
    if FORK_SERVER:
        served = _serve(tuple(preload), str(script), list(args), seconds, input, env)
        if served is not None:
            done, timed_out = served
            if timed_out:
                return None, [_stopped(reader, seconds, nothing)]
            return _ended(done, seconds=seconds, reader=reader, nothing=nothing)
    _check_cancelled()  # (the server failed meanwhile)
    return run_child(command, seconds=seconds, reader=reader, nothing=nothing, input=input, env=env)


def _check_cancelled() -> None:
    """Raise :class:`RequestCancelledError` when this thread's requests were cancelled."""
    cancellation: Cancellation | None = getattr(_local, "cancellation", None)
    if cancellation is not None:
        cancellation.check()


def _ended(
    done: subprocess.CompletedProcess[bytes], *, seconds: int, reader: str, nothing: str
) -> tuple[subprocess.CompletedProcess[bytes] | None, list[str]]:
    """A finished child, or ``None`` and why a signal ended it."""
    if done.returncode < 0:
        number = -done.returncode
        if number == signal.SIGALRM:
            return None, [_stopped(reader, seconds, nothing)]
        if number == signal.SIGXCPU:
            why = "used up its CPU time limit"
        elif number == signal.SIGKILL:
            why = "was killed (out of memory?)"
        else:
            why = f"crashed ({signal_name(number)})"
        return None, [f"the {reader} {why} on this file; {nothing}"]
    return done, []


def _stopped(reader: str, seconds: int, nothing: str) -> str:
    """Why a child stopped at its wall-time limit, in the words ``stopped_by_the_machine`` knows."""
    return f"the {reader} did not finish within {seconds} s and was stopped; {nothing}"


def report(output: bytes) -> dict[str, Any] | None:
    """The child's JSON report, or ``None`` when it wrote none or something that is not one."""
    try:
        raw = json.loads(output) if output else None
    except ValueError:
        return None
    return raw if isinstance(raw, dict) else None


def signal_name(number: int) -> str:
    """``SIGSEGV`` for 11; ``signal 99`` for a number no signal has."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def clean(text: object) -> str:
    """Text that is valid UTF-8 whatever a child or a hostile file put in it."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


class _Server:
    """One fork server (:mod:`evidence_catalog.extract.forkserver`) and the socket to it.

    A socket, not pipes: what is sent to a server that has died is an error
    (``MSG_NOSIGNAL``), never the ``SIGPIPE`` that ends the command-line tool, which has
    Unix tools' handling of that signal."""

    def __init__(self, preload: tuple[str, ...]) -> None:
        # One thread for numpy's BLAS (never used by a reader): a process with more threads
        # than one cannot be forked safely.  Few malloc arenas: each decoder thread would
        # otherwise reserve 64 MiB of address space (the perceptual hasher asked for it alone).
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
        # The server is killed when the thread that starts it ends (Linux ties the parent-death
        # signal to the thread): one thread that lives as long as this process starts them all.
        self.owner = os.getpid()
        self.preload = preload
        #: Set by :meth:`Cancellation.cancel`: the request it was running was stopped on purpose.
        self.cancelled = False
        self.socket, theirs = socket.socketpair()
        try:
            self.process = _start_server(
                [sys.executable, "-I", str(_SERVER_SCRIPT), str(os.getpid())],
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            self.socket.close()
            raise
        finally:
            theirs.close()

    def request(
        self, script: str, args: list[str], seconds: int, data: bytes | None, env: Mapping[str, str] | None
    ) -> tuple[dict[str, Any], bytes]:
        header = {
            "script": script,
            "args": args,
            "env": dict(os.environ if env is None else env),
            "cwd": _cwd(),
            "umask": _umask(),
            # A process started alone inherits an ignored SIGINT (a command run in the background
            # by a shell without job control); the served one must ignore it too.
            "sigint_ignored": signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
            "seconds": seconds,
            "input": data is not None,
            "preload": list(self.preload),
        }
        body = json.dumps(header).encode("utf-8")
        payload = data or b""
        self.socket.settimeout(seconds + SERVER_GRACE_S)
        self.socket.sendall(struct.pack(">I", len(body)) + body + struct.pack(">Q", len(payload)), socket.MSG_NOSIGNAL)
        self.socket.sendall(payload, socket.MSG_NOSIGNAL)
        (size,) = struct.unpack(">I", self._receive(4))
        reply = json.loads(self._receive(size))
        (length,) = struct.unpack(">Q", self._receive(8))
        return reply, self._receive(length)

    def _receive(self, size: int) -> bytes:
        """*size* bytes from the server; an :class:`OSError` when it stopped, or took longer
        than the socket's time-out to say them (``socket.timeout`` is one)."""
        chunks = []
        while size:
            chunk = self.socket.recv(min(size, 1024 * 1024))
            if not chunk:
                raise OSError("the fork server stopped")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def cancel(self) -> None:
        """Stop the request running (from another thread, holding ``_lock``): the server is
        killed, and with it the child reading a file; the thread waiting on the socket hears it
        close."""
        self.cancelled = True
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.socket.close()
        try:
            self.process.kill()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass


def _cwd() -> str | None:
    """This process's working directory now (``None``: it was removed)."""
    try:
        return os.getcwd()
    except OSError:
        return None


def _umask() -> int | None:
    """This process's umask now, read without setting it (``os.umask`` would set it, for every
    thread, while it is read); ``None`` where Linux does not say it."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


#: Servers not in use, by what they preload: a request takes one (or starts one), so threads
#: reading files at once each have their own, and gives it back when done.
_idle: dict[tuple[str, ...], list[_Server]] = {}
_lock = threading.Lock()
#: The most idle servers kept for one set of libraries.
MAX_IDLE = 8
#: Servers running a request now, each with the :class:`Cancellation` it runs under (if any).
_busy: dict[_Server, Cancellation | None] = {}
#: The :class:`Cancellation` each thread's requests run under (:meth:`Cancellation.applied`).
_local = threading.local()


class RequestCancelledError(Exception):
    """A request stopped by :meth:`Cancellation.cancel`: nothing was read, and nothing runs on."""


class Cancellation:
    """A stop for the requests of the threads it is :meth:`applied` in, from another thread: for
    a thread pool whose caller was interrupted (only the interrupted thread hears a Ctrl-C).

    Once :meth:`cancel` is called, each request under way stops (its server is killed, with the
    child reading a file) and raises :class:`RequestCancelledError`, and so does every later
    request in those threads, before a reader starts: :func:`run_script` never runs the script
    alone instead.  A script run alone (no fork server) is stopped only before it starts."""

    def __init__(self) -> None:
        self.cancelled = False

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Make the requests this thread makes in the block this cancellation's to stop (raises
        :class:`RequestCancelledError` at once when it was cancelled already)."""
        self.check()
        previous = getattr(_local, "cancellation", None)
        _local.cancellation = self
        try:
            yield
        finally:
            _local.cancellation = previous

    def check(self) -> None:
        """Raise :class:`RequestCancelledError` when cancelled."""
        if self.cancelled:
            raise RequestCancelledError("the request was cancelled")

    def cancel(self) -> None:
        """Stop the requests under way and every later one.  Done under the servers' lock: a
        server whose request has ended since is never killed under another thread's request."""
        with _lock:
            self.cancelled = True
            for server, cancellation in _busy.items():
                if cancellation is self:
                    server.cancel()


def _serve(
    preload: tuple[str, ...],
    script: str,
    args: list[str],
    seconds: int,
    data: bytes | None,
    env: Mapping[str, str] | None,
) -> tuple[subprocess.CompletedProcess[bytes], bool] | None:
    """Run one request on a fork server for *preload*: the finished child and whether it was
    stopped at the time limit, or ``None`` when no server could run it (the caller then runs the
    script alone)."""
    cancellation: Cancellation | None = getattr(_local, "cancellation", None)
    server = None
    with _lock:
        waiting = _idle.get(preload, [])
        while waiting and server is None:
            server = waiting.pop()
            if server.owner != os.getpid() or server.process.poll() is not None:
                server.close()
                server = None
    try:
        if server is None:
            server = _Server(preload)
        with _lock:  # registered with the check, so that a cancel sees this request or it sees the cancel
            if cancellation is not None:
                cancellation.check()
            _busy[server] = cancellation
        try:
            reply, output = server.request(script, args, seconds, data, env)
        finally:
            with _lock:
                _busy.pop(server, None)
        if server.cancelled:  # its reply came, but the caller has stopped
            raise RequestCancelledError("the request was cancelled")
        if "refused" in reply:
            raise OSError(reply["refused"])
        returncode, timed_out = int(reply["returncode"]), bool(reply["timed_out"])
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        if server is not None:
            server.close()
            if server.cancelled:
                raise RequestCancelledError("the request was cancelled") from None
        return None
    except BaseException:  # an interrupt mid-request: the server's state is unknown
        if server is not None:
            server.close()
        raise
    with _lock:
        kept = _idle.setdefault(preload, [])
        if len(kept) < MAX_IDLE:
            kept.append(server)
            server = None
    if server is not None:
        server.close()
    command = [sys.executable, "-I", script, *args]
    return subprocess.CompletedProcess(command, returncode, stdout=output, stderr=None), timed_out


def close_servers() -> None:
    """Stop the fork servers this process started (done when it exits)."""
    with _lock:
        servers = [server for kept in _idle.values() for server in kept]
        _idle.clear()
    for server in servers:
        if server.owner == os.getpid():
            server.close()


#: The thread that starts fork servers, for as long as this process lives: Linux kills a server
#: when the thread that started it ends, so one started by an analysis pool's thread would die
#: with the pool, and the next pool (the next ``add`` of a script or a notebook) would pay for
#: starting it again.
_starter: ThreadPoolExecutor | None = None
_starter_lock = threading.Lock()


def _start_server(argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **options)``, made by :data:`_starter`."""
    global _starter
    with _starter_lock:
        if _starter is None:
            _starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evidence-catalog-fork-servers")
        starter = _starter

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, **options)

    return starter.submit(start).result()


def _forget_servers() -> None:
    """In a forked child: the parent's servers are not this process's to use."""
    global _lock, _starter, _starter_lock
    _starter = None  # its thread is the parent's
    _starter_lock = threading.Lock()
    _idle.clear()
    _busy.clear()
    _lock = threading.Lock()


atexit.register(close_servers)
os.register_at_fork(after_in_child=_forget_servers)
