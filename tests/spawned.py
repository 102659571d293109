"""A test's function run in a new interpreter: for code that behaves differently in a process
running other threads (an add forks its worker only from a process running none, and a test
process may run some: another module's test server), or that may hang."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable
from typing import Any


def _deliver(out: Any, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        out.put(("ok", function(*args)))
    except BaseException as exc:  # noqa: BLE001 -- said in the test process
        out.put(("raised", repr(exc)))


def in_new_interpreter(function: Callable[..., dict[str, Any]], *args: Any, timeout: float = 120.0) -> dict[str, Any]:
    """``function(*args)`` (a module-level function: it is sent by name) in a new interpreter;
    ``{"hung": True}`` when it does not end in *timeout* seconds (it is then killed)."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_deliver, args=(out, function, args))
    process.start()
    try:
        kind, value = out.get(timeout=timeout)
    except queue.Empty:
        process.kill()
        process.join()
        return {"hung": True}
    process.join(EXIT_SECONDS)
    if process.is_alive():  # a thread left running, which the interpreter waits for as it exits
        process.kill()
        process.join()
        raise AssertionError(f"the interpreter did not end within {EXIT_SECONDS} s of its function's end")
    assert kind == "ok", value
    return value  # type: ignore[no-any-return]


#: How long an interpreter may take to end once its function returned.
EXIT_SECONDS = 30.0


def script_result(script: str, *args: str, timeout: float, what: str) -> str:
    """The last line *script* (Python source, run as ``python -c`` from the repository's root,
    so that it can import ``tests``) prints, given *args*; the test fails when the process does
    not end in *timeout* seconds or ends with a non-zero status (*what*: what the process is)."""
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    try:
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=Path(__file__).parent.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} did not end")
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    return done.stdout.strip().splitlines()[-1]
