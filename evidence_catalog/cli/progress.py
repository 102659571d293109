"""Progress bars on standard error, shown only on a terminal and never with ``--quiet``."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from evidence_catalog.cli.output import printable

if TYPE_CHECKING:
    from rich.progress import Progress

    from evidence_catalog.capture import CaptureProgress


def progress_bars() -> Progress:
    """Byte-counting progress bars on standard error, removed when done."""
    # rich is imported here, when a bar is drawn on a terminal: never for output to a pipe or file.
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=Console(stderr=True), transient=True)


def shows_progress(*, quiet: bool) -> bool:
    """Whether a progress bar would be drawn: standard error is a terminal, and not --quiet."""
    return not quiet and sys.stderr.isatty()


@contextmanager
def bytes_progress(
    total: int | None, label: str, *, quiet: bool, deferred: bool = False
) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on standard error when it is a terminal; nothing otherwise.

    *deferred*: the bar is drawn from the first bytes counted, not before.  Drawing it runs a
    thread (rich's refresh), and a process running another thread does not fork: ``verify``
    and ``add`` fork their worker processes before they count a byte, and get them on a
    terminal too."""
    if not shows_progress(quiet=quiet):
        yield None
        return
    if not deferred:
        with progress_bars() as progress:
            task = progress.add_task(label, total=total)
            yield lambda n: progress.advance(task, n)
        return
    tasks: list[Any] = []
    with _bars_from_first_use(lambda bars: tasks.append(bars.add_task(label, total=total))) as drawn:
        yield lambda n: drawn().advance(tasks[0], n)


@contextmanager
def _bars_from_first_use(started: Callable[[Progress], None] = lambda _: None) -> Iterator[Callable[[], Progress]]:
    """Progress bars drawn the first time they are asked for (then *started* is given them),
    from whichever thread asks first, and stopped at the end: drawing them runs a thread
    (rich's refresh), and a process running another thread does not fork its workers."""
    lock = threading.Lock()
    shown: list[Progress] = []

    def drawn() -> Progress:
        if not shown:
            with lock:  # (the first progress may be reported on several threads at once)
                if not shown:
                    bars = progress_bars()
                    bars.start()
                    started(bars)
                    shown.append(bars)
        return shown[0]

    try:
        yield drawn
    finally:
        with lock:
            if shown:
                shown[0].stop()


@contextmanager
def capture_progress(*, quiet: bool) -> Iterator[tuple[CaptureProgress | None, Callable[[], None]]]:
    """Progress bars fed by yt-dlp's progress hooks, one per file being downloaded; nothing
    when standard error is not a terminal or with --quiet.  The bars are drawn from the first
    file's progress, not before: drawing them runs a thread, and ``ingest`` (whose media are
    captured after its reports are in) forks its worker before then, on a terminal too."""
    if quiet or not sys.stderr.isatty():
        yield None, lambda: None
        return
    tasks: dict[str, Any] = {}
    with _bars_from_first_use() as drawn:

        def update(name: str, done: int, total: int | None) -> None:
            progress = drawn()
            task = tasks.get(name)
            if task is None:
                task = tasks[name] = progress.add_task(printable(name), total=total)
            progress.update(task, completed=done, total=total)

        def clear() -> None:
            if tasks:
                progress = drawn()
                for task in tasks.values():
                    progress.remove_task(task)
                tasks.clear()

        yield update, clear


@contextmanager
def export_progress(*, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar for the bytes a bag export copies, on a terminal only."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    with progress_bars() as bars:
        task = bars.add_task("exporting", total=None)
        yield lambda done, total: bars.update(task, completed=done, total=total)
