"""Start-up of the ``evidence-catalog`` command (issue 22, target 3): what every call costs before
it does anything.

Timed through the installed command, each run a new process, as a user runs it: ``--version`` and
``--help`` (target: at most 0.15 s), ``list``, ``show`` and ``verify`` of a small catalog (20
files of 1-4 KiB; target: at most 0.35 s), and ``python -c "import evidence_catalog"`` (what a
script pays before it asks for anything) and ``python -c "from evidence_catalog import Catalog"``
(before it opens a catalog).  The reference is ``python -c pass`` with the same interpreter.  The
floor of ``list``/``show``/``verify`` is timed too: ``python -c`` importing what reading a
catalog cannot do without (SQLAlchemy's core and ORM, SQLModel with pydantic, and the tables of
``store/tables.py`` that use them), each alone.

Every command runs once untimed first, then ``--repeat`` rounds (at least 5), the commands
interleaved and in the opposite order every other round; the *median* counts.  CPU time (user +
system of the process) is shown beside the wall time: on a shared machine it moves far less.
Byte code is cached (in a folder of the run, ``PYTHONPYCACHEPREFIX``) as an installed wheel has it:
with ``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__`` (an editable install that never wrote
one), every call compiles the library's modules again, some tenths of a second more.

Run alone, ``python benchmarks/startup.py [--repeat N] [--before DIR]``: with ``--before``, the
same commands are also timed with the package of another checkout (``DIR`` put first on
``PYTHONPATH``), alternating with this one: before and after in one run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import evidence_catalog

#: Targets of the issue, in seconds (wall clock, median).
VERSION_HELP_TARGET = 0.15
READING_TARGET = 0.35
#: The small catalog: this many files of 1-4 KiB.
FILES = 20
MIN_ROUNDS = 5
#: What a script that opens a catalog imports first.
SCRIPT_OPENING = "from evidence_catalog import Catalog"

R = TypeVar("R")


@dataclass
class Side:
    """One command timed: its runs' wall and CPU seconds."""

    label: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    target: float | None = None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def run(self) -> None:
        """Run the command once (its output thrown away); a failure stops the benchmark."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            self.argv, env=self.env, cwd=self.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(self.argv)} exited with {done.returncode}: {done.stderr.decode()[-2000:]}")
        self.wall.append(seconds)
        self.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

    @property
    def median(self) -> float:
        """Median wall seconds."""
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        """Median CPU seconds (user + system)."""
        return statistics.median(self.cpu)

    def describe(self) -> str:
        """One line: median wall and CPU time, then every run."""
        runs = " ".join(f"{s:.3f}" for s in self.wall)
        return f"median {self.median:6.3f} s  CPU {self.cpu_median:6.3f} s  (runs: {runs})  {self.label}"


def interleaved(sides: Sequence[Side], rounds: int) -> None:
    """Run every side once untimed (byte code compiled, files cached), then *rounds* times,
    interleaved, in the opposite order every other round."""
    for side in sides:
        side.run()
        side.wall.clear()
        side.cpu.clear()
    for number in range(rounds):
        for side in sides if number % 2 == 0 else list(reversed(sides)):
            side.run()


def environment(scratch: Path, package_root: Path) -> dict[str, str]:
    """The children's environment: this run's package first, byte code cached in the run's
    folder, the verifier's remembered checkpoints kept there too, no catalog or operator set."""
    env = {k: v for k, v in os.environ.items() if k not in ("EVIDENCE_CATALOG", "EVIDENCE_CATALOG_OPERATOR")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    env["XDG_STATE_HOME"] = str(scratch / "state")
    env["PYTHONPATH"] = os.pathsep.join([str(package_root), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def make_catalog(directory: Path) -> str:
    """A catalog of :data:`FILES` small files; one of its record ids."""
    from evidence_catalog import Catalog

    sources = directory.parent / "small-files"
    sources.mkdir()
    paths = []
    for number in range(FILES):
        path = sources / f"file-{number:02d}.bin"
        path.write_bytes(os.urandom(1024 + number * 150))
        paths.append(path)
    with Catalog.init(directory, operator="Benchmark <bench@example.org>") as catalog:
        results = catalog.add(paths)
    return results[0].record_id


def installed_command() -> Path:
    """The ``evidence-catalog`` console script of this interpreter's environment."""
    command = Path(sys.executable).with_name("evidence-catalog")
    if not command.exists():
        found = shutil.which("evidence-catalog")
        if found is None:
            raise RuntimeError("the evidence-catalog command is not installed (pip install -e .)")
        command = Path(found)
    return command


def command_sides(label: str, env: dict[str, str], catalog: Path, record_id: str) -> list[Side]:
    """The commands and scripts whose start-up is timed, with their targets; each runs in the
    catalog's parent folder (``python -c`` puts its folder first on ``sys.path``)."""
    command = str(installed_command())
    work = catalog.parent
    python = sys.executable
    at = ["--catalog", str(catalog)]
    return [
        Side(f"{label}evidence-catalog --version", [command, "--version"], env, work, VERSION_HELP_TARGET),
        Side(f"{label}evidence-catalog --help", [command, "--help"], env, work, VERSION_HELP_TARGET),
        Side(f"{label}evidence-catalog list", [command, "list", *at], env, work, READING_TARGET),
        Side(f"{label}evidence-catalog show", [command, "show", record_id, *at], env, work, READING_TARGET),
        Side(f"{label}evidence-catalog verify", [command, "verify", *at], env, work, READING_TARGET),
        Side(f"{label}import evidence_catalog", [python, "-c", "import evidence_catalog"], env, work),
        Side(f"{label}from evidence_catalog import Catalog", [python, "-c", SCRIPT_OPENING], env, work),
    ]


def floor_sides(env: dict[str, str], work: Path) -> list[Side]:
    """``python -c pass``, and the imports reading a catalog cannot do without, each alone."""
    python = sys.executable
    imports = (
        ("import click", "click"),
        ("import sqlalchemy", "SQLAlchemy core"),
        ("import sqlalchemy.orm", "SQLAlchemy core + ORM"),
        ("import sqlmodel", "SQLModel (SQLAlchemy ORM + pydantic)"),
        ("import evidence_catalog.store.tables", "SQLModel + the catalog's tables"),
        # The command ends so (cli.app.run): the interpreter's last collections are skipped.
        ("import evidence_catalog.store.tables, gc; gc.freeze()", "the same, ending as the command ends"),
        # ... and importing as the command imports the library (library_imports in cli/options.py):
        # with the cycle collector paused.  What a command that reads a catalog cannot go below.
        (
            "import gc; gc.disable(); import evidence_catalog.store.tables; gc.freeze(); gc.enable()",
            "the same, imported as the command imports, collector paused",
        ),
    )
    sides = [Side("python -c pass", [python, "-c", "pass"], env, work)]
    sides += [Side(f"python -c '{code}' ({what})", [python, "-c", code], env, work) for code, what in imports]
    return sides


def bench(scratch: Path, repeat: int, row: Callable[..., R], before: Path | None = None) -> list[R]:
    """Time start-up; the summary rows, each made by *row* (benchmark, ours, reference, ratio,
    target, status).  With *before*, the commands are also timed with that checkout's package."""
    package_root = Path(evidence_catalog.__file__).resolve().parent.parent
    work = Path(tempfile.mkdtemp(prefix="startup-", dir=scratch))
    try:
        env = environment(work, package_root)
        catalog = work / "catalog"
        record_id = make_catalog(catalog)
        ours = command_sides("", env, catalog, record_id)
        floor = floor_sides(env, work)
        old: list[Side] = []
        if before is not None:
            old = command_sides("before: ", environment(work, before.resolve()), catalog, record_id)
        rounds = max(repeat, MIN_ROUNDS)
        print(f"  package: {package_root}" + (f"; before: {before.resolve()}" if before is not None else ""))
        print(f"  {rounds} rounds (median counts), after one untimed run of each", flush=True)
        busy = os.getloadavg()[0]
        interleaved([*floor, *ours, *old], rounds)
        busy = max(busy, os.getloadavg()[0])
        if busy > (os.cpu_count() or 1):
            print(f"  note: the machine was busy (load average {busy:.1f} on {os.cpu_count()} CPUs): wall times are")
            print("  inflated and the targets cannot be judged by them; the CPU times show what start-up costs")
        reference = floor[0]
        for side in [*floor, *ours, *old]:
            print(f"  {side.describe()}")
        return rows(ours, old, floor, reference, row)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def rows(ours: list[Side], old: list[Side], floor: list[Side], reference: Side, row: Callable[..., R]) -> list[R]:
    """The summary: each command against ``python -c pass`` and its target; the floor as info."""
    made = []
    before = {side.label.removeprefix("before: "): side for side in old}
    for side in ours:
        target = "-" if side.target is None else f"<= {side.target:.2f} s"
        status = "INFO" if side.target is None else "PASS" if side.median <= side.target else "FAIL"
        was = before.get(side.label)
        ours_text = f"{side.median:.3f} s (CPU {side.cpu_median:.3f} s)" + (
            f"; before {was.median:.3f} s (CPU {was.cpu_median:.3f} s), {was.median / side.median:.1f}x faster"
            if was is not None
            else ""
        )
        made.append(
            row(
                f"startup: {side.label}",
                ours_text,
                f"python -c pass: {reference.median:.3f} s",
                f"{reference.median / side.median:.2f}x",
                target,
                status,
            )
        )
    for side in floor[1:]:
        made.append(
            row(
                f"startup floor: {side.label.removeprefix('python -c ')}",
                f"{side.median:.3f} s (CPU {side.cpu_median:.3f} s)",
                f"python -c pass: {reference.median:.3f} s",
                f"{reference.median / side.median:.2f}x",
                "none (info)",
                "INFO",
            )
        )
    return made


def main(argv: Sequence[str] | None = None) -> int:
    """Run the start-up benchmark alone; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=MIN_ROUNDS, help=f"timed rounds (at least {MIN_ROUNDS})")
    parser.add_argument("--before", type=Path, help="a checkout whose package is timed too, alternating")
    parser.add_argument("--workdir", type=Path, default=None, help="where to put scratch files (default: a temp dir)")
    args = parser.parse_args(argv)

    def row(benchmark: str, ours: str, reference: str, ratio: str, target: str, status: str) -> tuple[str, ...]:
        return benchmark, ours, reference, ratio, target, status

    scratch = Path(tempfile.mkdtemp(prefix="startup-bench-", dir=args.workdir))
    try:
        print(f"load average at start {os.getloadavg()[0]:.2f}")
        made = bench(scratch, args.repeat, row, args.before)
        print(f"load average at end {os.getloadavg()[0]:.2f}\n\nSummary")
        for benchmark, ours, reference, ratio, target, status in made:
            print(f"  {status:4s}  {benchmark}  ours {ours}; {reference}; ratio {ratio}; target {target}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if any(r[5] == "FAIL" for r in made) else 0


if __name__ == "__main__":
    sys.exit(main())
