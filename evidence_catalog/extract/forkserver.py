"""The server side of the readers' fork server: run as a script in its own interpreter
(``python -I forkserver.py PARENT_PID``), it imports the libraries a reader needs once, then
for each request forks a fresh child that runs the reader's script exactly as ``python -I
SCRIPT ARGS...`` would: its standard input the request's bytes (else ``/dev/null``), its
standard output captured, its standard error dropped, its environment the request's.  The child
sets its own limits, as the script does in a process of its own; a crash, a hang or an
allocation past a limit ends that child, never this server, which reports the child's exit
status (negative: the signal that ended it) or that it was stopped at the request's time limit.

Every file is read in a new process, as before: the server never reads one, and what a hostile
file does to a decoder's memory dies with the child that decoded it.  The server saves what
starting an interpreter and importing numpy, Pillow, PyAV or c2pa costs (a fifth of a second)
on every file.

It imports only the standard library (and the libraries it is asked to preload); the parent is
:mod:`evidence_catalog.extract.sandbox`.  It stops when its standard input closes, or when the
parent dies.

Requests and replies on standard input and output: a 4-byte big-endian length and a JSON header,
then an 8-byte big-endian length and that many bytes (the child's input; the child's output).
Those bytes pass through anonymous memory files, a buffer's worth at a time, never through this
server's heap: a child forked from it starts with the address space it had before any request,
so that what one file's reader said, however long, leaves every later reader its whole limit.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import runpy
import select
import signal
import struct
import sys
import time
import types
from typing import Any

#: Linux's ``prctl`` option that has the kernel send a signal when the parent dies.
_PR_SET_PDEATHSIG = 1
#: The largest request header read (a script's arguments and an environment).
_MAX_HEADER = 16 * 1024 * 1024
#: The most input a request may carry (a C2PA trust list is at most 16 MiB).
_MAX_INPUT = 64 * 1024 * 1024
#: The bytes of a request's input or a child's output moved at a time.
_CHUNK = 256 * 1024


def _read_exact(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1024 * 1024))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _spool_in(fd: int, size: int, buffer: bytearray) -> int:
    """*size* bytes read from *fd* into a new anonymous memory file, at its start."""
    spool = os.memfd_create("input")
    try:
        view = memoryview(buffer)
        while size:
            got = os.readv(fd, [view[: min(size, len(view))]])
            if not got:
                raise EOFError
            _write_all(spool, view[:got])
            size -= got
        os.lseek(spool, 0, os.SEEK_SET)
    except BaseException:
        os.close(spool)
        raise
    return spool


def _send_spool(fd: int, spool: int, size: int, buffer: bytearray) -> None:
    """The first *size* bytes of the memory file *spool* written to *fd*."""
    view = memoryview(buffer)
    offset = 0
    while offset < size:
        got = os.preadv(spool, [view[: min(size - offset, len(view))]], offset)
        if not got:
            raise EOFError
        _write_all(fd, view[:got])
        offset += got


def _die_with(parent: int) -> None:
    """Be killed when *parent*, the process that started this one, dies (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before that was set
        os._exit(0)


def _preload(names: list[str]) -> None:
    """Import each module named (``module`` or ``module:function``, the function then called);
    one that cannot be imported is left to the child, which says so as it would alone."""
    for name in names:
        module_name, _, function = name.partition(":")
        try:
            module = importlib.import_module(module_name)
            if function:
                getattr(module, function)()
        except Exception:  # noqa: BLE001 -- the child imports it again and reports why not
            continue


def _threads() -> int:
    """How many threads this process runs (1 where it cannot be told)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _child(server: int, header: dict[str, Any], stdin: int, stdout: int, devnull: int) -> None:
    """In the forked child: become ``python -I SCRIPT ARGS...``, in the parent's working
    directory and with its umask of now, and run it; never returns.  It dies with the *server*,
    which is killed when the parent gives the request up (an interrupt, a time-out, its thread
    gone): no process goes on reading the file, or writing into the work folder the run that
    replaces it writes into."""
    code = 1
    interrupted = False
    try:
        _die_with(server)
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.dup2(devnull, 2)
        os.closerange(3, 65536)
        # As an interpreter started by the caller: SIGINT ignored when the caller ignores it.
        signal.signal(signal.SIGINT, signal.SIG_IGN if header.get("sigint_ignored") else signal.default_int_handler)
        if header.get("cwd") is not None:
            with contextlib.suppress(OSError):  # gone since: where the server is, as good a place
                os.chdir(header["cwd"])
        if header.get("umask") is not None:
            os.umask(int(header["umask"]))
        os.environ.clear()
        os.environ.update(header["env"])
        script = header["script"]
        sys.argv = [script, *header["args"]]
        try:
            compiled = _COMPILED.get(script)
            if compiled is None:
                runpy.run_path(script, run_name="__main__")
            else:  # what run_path does, without compiling the script again for every file
                main = types.ModuleType("__main__")
                main.__dict__.update(__file__=script, __cached__=None, __loader__=None, __package__="", __spec__=None)
                sys.modules["__main__"] = main
                exec(compiled[1], main.__dict__)  # the reader's own script, as python -I runs it
            code = 0
        except SystemExit as exc:
            code = _status(exc.code)
        except KeyboardInterrupt:  # an interpreter then ends by the signal, as a Unix tool does
            interrupted = True
        except BaseException:  # noqa: BLE001 -- as an interpreter would: exit status 1
            code = 1
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):  # a closed pipe: nothing more to say
                stream.flush()
        with contextlib.suppress(BaseException):  # and what C libraries wrote, as exit() does
            ctypes.CDLL(None).fflush(None)
    finally:
        if interrupted:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
            code = 128 + signal.SIGINT  # an interpreter's status where the signal does not end it
        os._exit(code)


def _status(code: object) -> int:
    """The exit status an interpreter gives ``SystemExit(code)``: 0 for ``None``, an integer's
    C ``(int)`` of a ``long`` (-1 past one), 1 for anything else (which it prints)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF if -(2**63) <= code < 2**63 else 255
    return 1


#: Each script run so far, compiled: ``(its source, code)``.  Compiled here, before a child is
#: forked, once per version of the file; a script that cannot be read or compiled is left to
#: ``runpy`` in the child, which fails as ``python -I SCRIPT`` would.  The file is read for every
#: request and its bytes compared (a few kilobytes): its size and times can stay the same across
#: a change (two writes within one tick of the file system's clock, a copy that keeps the time).
_COMPILED: dict[str, tuple[bytes, Any]] = {}


def _compile(script: str) -> None:
    if not os.path.isabs(script):  # the child finds it where the caller is: runpy reads it there
        return
    try:
        with open(script, "rb") as stream:
            source = stream.read()
        known = _COMPILED.get(script)
        if known is not None and known[0] == source:
            return
        _COMPILED[script] = (source, compile(source, script, "exec", dont_inherit=True))
    except (OSError, SyntaxError, ValueError):
        _COMPILED.pop(script, None)


def _run(header: dict[str, Any], stdin: int, output: int, devnull: int, buffer: bytearray) -> dict[str, Any]:
    """Fork a child for one request and wait for it, at most the request's seconds; what it
    wrote is in the memory file *output*, its size in the reply."""
    seconds = float(header["seconds"])
    _compile(header["script"])
    read_end, write_end = os.pipe()
    server = os.getpid()
    pid = os.fork()
    if pid == 0:
        _child(server, header, stdin, write_end, devnull)
    os.close(write_end)
    deadline = time.monotonic() + seconds
    view = memoryview(buffer)
    written = 0
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_end], [], [], left)
            if not ready:
                continue
            got = os.readv(read_end, [view])
            if not got:
                break
            _write_all(output, view[:got])
            written += got
        if not timed_out:
            status = _wait(pid, deadline)
            if status is not None:
                return {"returncode": os.waitstatus_to_exitcode(status), "timed_out": False, "size": written}
    except BaseException:  # its output could not be kept: the child is not left running
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(read_end)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return {"returncode": -signal.SIGKILL, "timed_out": True, "size": 0}


def _wait(pid: int, deadline: float) -> int | None:
    """The wait status of the child *pid* once it has ended, or ``None`` at *deadline*.

    Its output has closed, so it is ending: woken by a pidfd as it does (Linux 5.3 and later),
    else polled every millisecond -- never a sleep longer than it takes to end, which every
    file's reading would pay."""
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if pidfd is not None:
                select.select([pidfd], [], [], left)
            else:
                time.sleep(min(0.001, left))
    finally:
        if pidfd is not None:
            os.close(pidfd)


def main() -> None:
    """Serve requests until standard input closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the parent's to handle
    _die_with(int(sys.argv[1]))
    devnull = os.open(os.devnull, os.O_RDWR)
    buffer = bytearray(_CHUNK)  # the only buffer requests' bytes pass through
    while True:
        try:
            (size,) = struct.unpack(">I", _read_exact(0, 4))
            if size > _MAX_HEADER:
                return
            header = json.loads(_read_exact(0, size))
            (length,) = struct.unpack(">Q", _read_exact(0, 8))
            if length > _MAX_INPUT:
                return
            spool = _spool_in(0, length, buffer)
        except (EOFError, OSError, ValueError):
            return
        try:
            _serve_one(header, spool if header.get("input") else None, devnull, buffer)
        except (EOFError, OSError):
            return
        finally:
            os.close(spool)


def _serve_one(header: dict[str, Any], stdin: int | None, devnull: int, buffer: bytearray) -> None:
    """Run one request and write its reply (an :class:`OSError` when the parent is gone)."""
    _preload(list(header.get("preload", ())))
    output = os.memfd_create("output")
    try:
        if _threads() > 1:  # a fork would copy a lock some other thread holds: refused
            reply: dict[str, Any] = {"refused": "the fork server runs more than one thread", "size": 0}
        else:
            try:
                reply = _run(header, devnull if stdin is None else stdin, output, devnull, buffer)
            except OSError as exc:  # no process could be made: the parent runs it alone
                reply = {"refused": f"the fork server could not run it: {exc}", "size": 0}
        size = int(reply.pop("size"))
        body = json.dumps(reply).encode("ascii")
        _write_all(1, struct.pack(">I", len(body)) + body + struct.pack(">Q", size))
        _send_spool(1, output, size, buffer)
    finally:
        os.close(output)


if __name__ == "__main__":
    main()
