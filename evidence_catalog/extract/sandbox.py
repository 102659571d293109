"""Running a reader of hostile files in a child process, and saying how it ended.

The media reader (:mod:`~evidence_catalog.extract.media`), the perceptual hasher
(:mod:`~evidence_catalog.extract.perceptual`) and the Content Credentials reader
(:mod:`~evidence_catalog.extract.credentials`) each run a script of their own in a child
process that limits its own time, CPU and memory (``SIGALRM``, ``SIGXCPU``, an address-space
limit that ends in ``SIGKILL`` or a ``MemoryError``), and writes one JSON report on its standard
output.  What ended the child -- the wall-time limit, a crash, a limit -- is said here, once, in
the words each reader's ``stopped_by_the_machine`` recognises; what the report says is the
reader's own business.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any


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
    stopped = f"the {reader} did not finish within {seconds} s and was stopped; {nothing}"
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
        return None, [stopped]
    except OSError as exc:
        return None, [f"the {reader} could not be started: {exc.strerror or exc}"]
    if done.returncode < 0:
        number = -done.returncode
        if number == signal.SIGALRM:
            return None, [stopped]
        if number == signal.SIGXCPU:
            why = "used up its CPU time limit"
        elif number == signal.SIGKILL:
            why = "was killed (out of memory?)"
        else:
            why = f"crashed ({signal_name(number)})"
        return None, [f"the {reader} {why} on this file; {nothing}"]
    return done, []


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
