"""The ``small`` benchmark (issue 22, target 1): adding a folder of many small files.

``evidence-catalog add --recursive`` of ``--small-files`` files (default 10,000) of 4-64 KiB of
distinct content, in 100 folders, as users run it -- a new ``python -m evidence_catalog`` process
with default options, start-up included -- and in-process (``Catalog.add(folder,
recursive=True)`` in a child process that has imported the library and opened the catalog; only
the call is timed), each into a new catalog (made before the clock starts), against two standard
tools on the same folder in the same run:

* ``cp -r`` of the folder, ``sha256sum`` of every copied file, ``sync``: what storing a copy and
  its digest costs at the least (target: ours at least 0.5x as fast);
* ``git add`` + ``git commit`` of the folder into a new repository (git's defaults; target: ours
  faster, a ratio above 1).

Every side reads the folder from the page cache (read once before timing); ``sync`` runs before
each timed run so that no side pays for the write-back of another; the sides alternate, each
round in the opposite order to the one before, and the *median* of ``--repeat`` runs of each is
compared (the machine may be shared: medians of paired rounds, not single runs).  Each of our
runs is checked: every file a new record (the command's output lines, the call's results).

``--floor`` (run alone) also times the blob store's own work with nothing else: a minimal
loop that reads, hashes and places each file in the store's layout (``sha256/ab/cd/<hash>``,
through a temporary file) and syncs once -- what an add cannot do without, whatever its
database and custody log cost.

``--baseline DIR`` (run as ``python benchmarks/small_files.py``) times another checkout of the
library too -- the code before a change -- with its default options, CLI and in-process, in the
same rounds, for before/after ratios.  Through ``benchmarks/run.py --only small`` there is no
baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bag_speed import set_aside  # benchmarks/bag_speed.py (this folder is on the path)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OPERATOR = "Benchmark <bench@example.org>"
KIB = 1024
SEED = 20261204
FILES_PER_FOLDER = 100
#: The side ``--floor`` adds (see store_layout_floor).
FLOOR = "the store's layout alone (a minimal loop)"
#: Targets: ours / (cp -r + sha256sum + sync), at least; ours / (git add + commit), above.
CP_TARGET = 0.5
GIT_TARGET = 1.0

#: Run in a child process with the library at argv[1] first on the path: open the catalog at
#: argv[3], add the folder argv[2] (recursive; default options, or ``batch=argv[5]``), check
#: that the argv[4] files are new records, print the seconds of the call.
_IN_PROCESS = """
import sys, time
sys.path.insert(0, sys.argv[1])
from evidence_catalog import Catalog
options = {"batch": int(sys.argv[5])} if len(sys.argv) > 5 else {}
with Catalog.open(sys.argv[3]) as catalog:
    started = time.perf_counter()
    results = catalog.add([sys.argv[2]], recursive=True, **options)
    seconds = time.perf_counter() - started
assert len(results) == int(sys.argv[4]) and all(r.new_record for r in results), "not every file a new record"
print(seconds)
"""

_INIT = """
import sys
sys.path.insert(0, sys.argv[1])
from evidence_catalog import Catalog
Catalog.init(sys.argv[2], operator=sys.argv[3]).close()
"""


@dataclass
class Side:
    """One timed side of the comparison: its name and the seconds of each run."""

    name: str
    run: Callable[[Path], float]
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def make_tree(root: Path, count: int, seed: int = SEED) -> int:
    """*count* files of 4-64 KiB, each of its own content (half text, half binary), in folders of
    100; return their total size."""
    rng = random.Random(seed)
    total = 0
    for number in range(count):
        folder = root / f"d{number // FILES_PER_FOLDER:04d}"
        if number % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True)
        size = rng.randint(4 * KIB, 64 * KIB)
        header = f"small file {number}\n".encode("ascii")
        if number % 2:
            body = rng.randbytes(size - len(header))
            name = f"f{number:06d}.bin"
        else:
            body = rng.randbytes(size).hex().encode("ascii")[: size - len(header)]
            name = f"f{number:06d}.txt"
        (folder / name).write_bytes(header + body)
        total += size
    return total


def read_through(root: Path) -> None:
    """Read every file once (into the page cache)."""
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as stream:
                while stream.read(1 << 20):
                    pass


def _env(library: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.fspath(library), *filter(None, [env.get("PYTHONPATH")])])
    env["EVIDENCE_CATALOG_OPERATOR"] = OPERATOR
    env.pop("EVIDENCE_CATALOG", None)
    return env


def _fresh(path: Path) -> None:
    """Make room at *path*: what a previous side wrote there is set aside (emptied and moved
    into ``set-aside`` beside it, deleted with the work folder at the end), not deleted, so that
    no inode is freed while the sides are timed (see ``bag_speed.set_aside`` for why)."""
    set_aside(path, path.parent / "set-aside")
    subprocess.run(["sync"], check=True)


def _new_catalog(library: Path, path: Path) -> None:
    _fresh(path)
    subprocess.run([sys.executable, "-c", _INIT, os.fspath(library), os.fspath(path), OPERATOR], check=True)
    subprocess.run(["sync"], check=True)


def cli_add(library: Path, tree: Path, work: Path, count: int) -> float:
    """``python -m evidence_catalog add --recursive TREE`` with the library at *library*, default
    options, output to a file (as to a terminal: every line written); the wall time."""
    catalog = work / "catalog-cli"
    _new_catalog(library, catalog)
    output = work / "cli-output.txt"
    command = [sys.executable, "-m", "evidence_catalog", "add", "--recursive", os.fspath(tree), "--catalog"]
    with open(output, "wb") as out:
        started = time.perf_counter()
        subprocess.run([*command, os.fspath(catalog)], check=True, stdout=out, env=_env(library), cwd=work)
        seconds = time.perf_counter() - started
    lines = output.read_text("utf-8").splitlines()
    if len(lines) != count or any(line.split("\t")[2] != "new" for line in lines):
        raise AssertionError(f"the command did not add every file as a new record ({len(lines)} lines)")
    _fresh(catalog)
    return seconds


def in_process_add(library: Path, tree: Path, work: Path, count: int, batch: int | None = None) -> float:
    """``Catalog.add([tree], recursive=True)`` (with *batch*, if given) in a child process; the
    seconds of the call."""
    catalog = work / "catalog-call"
    _new_catalog(library, catalog)
    command = [sys.executable, "-c", _IN_PROCESS, os.fspath(library), os.fspath(tree), os.fspath(catalog), str(count)]
    done = subprocess.run(
        [*command, *([] if batch is None else [str(batch)])],
        check=True,
        capture_output=True,
        text=True,
        env=_env(library),
        cwd=work,
    )
    _fresh(catalog)
    return float(done.stdout.strip().splitlines()[-1])


def cp_sha256sum_sync(tree: Path, work: Path, count: int) -> float:
    """``cp -r``, ``sha256sum`` of every copied file (1,000 to a call), ``sync``."""
    copy = work / "copy"
    _fresh(copy)
    started = time.perf_counter()
    subprocess.run(["cp", "-r", os.fspath(tree), os.fspath(copy)], check=True)
    files = sorted(os.path.join(folder, name) for folder, _, names in os.walk(copy) for name in names)
    for start in range(0, len(files), 1000):
        subprocess.run(["sha256sum", *files[start : start + 1000]], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["sync"], check=True)
    seconds = time.perf_counter() - started
    if len(files) != count:
        raise AssertionError(f"cp -r copied {len(files)} files of {count}")
    _fresh(copy)
    return seconds


def store_layout_floor(tree: Path, work: Path, count: int) -> float:
    """The least the blob store's own work costs: each file read, hashed (SHA-256), written to a
    temporary file of the store, made read-only and linked into ``sha256/ab/cd/<hash>`` (its
    folders made as needed), the temporary name removed; one ``sync`` at the end.  No database,
    no description, no custody event: what is left of an add's time beyond this is theirs."""
    store = work / "layout"
    _fresh(store)
    started = time.perf_counter()
    tmp = store / "tmp"
    tmp.mkdir(parents=True)
    made: set[str] = set()
    stored = 0
    for folder, _, names in os.walk(tree):
        for name in names:
            with open(os.path.join(folder, name), "rb", buffering=0) as source:
                data = source.read()
            sha256 = hashlib.sha256(data).hexdigest()
            part = f"{tmp}/{os.urandom(16).hex()}.part"
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
                os.fchmod(fd, 0o444)
            finally:
                os.close(fd)
            fan_out = f"{store}/sha256/{sha256[:2]}/{sha256[2:4]}"
            if fan_out not in made:
                os.makedirs(fan_out, exist_ok=True)
                made.add(fan_out)
            with contextlib.suppress(FileExistsError):
                os.link(part, f"{fan_out}/{sha256}")
            os.unlink(part)
            stored += 1
    subprocess.run(["sync"], check=True)
    seconds = time.perf_counter() - started
    if stored != count:
        raise AssertionError(f"the layout loop stored {stored} files of {count}")
    _fresh(store)
    return seconds


def git_add_commit(tree: Path, work: Path, count: int) -> float:
    """``git add -A`` and ``git commit`` of the folder into a new repository (made first)."""
    repository = work / "repository.git"
    _fresh(repository)
    git = ["git", f"--git-dir={repository}", f"--work-tree={tree}", "-c", "user.name=Benchmark"]
    git += ["-c", "user.email=bench@example.org", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run(["sync"], check=True)
    started = time.perf_counter()
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "small files"], check=True)
    seconds = time.perf_counter() - started
    listed = subprocess.run([*git, "ls-files"], check=True, capture_output=True, text=True).stdout.splitlines()
    if len(listed) != count:
        raise AssertionError(f"git committed {len(listed)} files of {count}")
    _fresh(repository)
    return seconds


def compare(
    count: int,
    repeat: int,
    work: Path,
    baseline: Path | None = None,
    library: Path = REPO,
    baseline_batch: int | None = None,
    floor: bool = False,
) -> tuple[list[Side], dict[str, float]]:
    """Make the folder, time every side in alternating rounds; return the sides and the ratios
    (reference or baseline median / ours, above 1 when ours is faster)."""
    tree = work / "small"
    print(f"(creating {count} files of 4-64 KiB ...)", flush=True)
    total = make_tree(tree, count)
    read_through(tree)
    print(f"  {count} files, {total / (1 << 20):.1f} MiB", flush=True)
    sides = [
        Side("ours, CLI (evidence-catalog add --recursive)", lambda w: cli_add(library, tree, w, count)),
        Side("ours, in-process (Catalog.add)", lambda w: in_process_add(library, tree, w, count)),
        Side("cp -r + sha256sum + sync", lambda w: cp_sha256sum_sync(tree, w, count)),
        Side("git add + git commit", lambda w: git_add_commit(tree, w, count)),
    ]
    if baseline is not None:
        sides += [
            Side("before, CLI", lambda w: cli_add(baseline, tree, w, count)),
            Side("before, in-process", lambda w: in_process_add(baseline, tree, w, count)),
        ]
        if baseline_batch is not None:
            name = f"before, in-process, batch={baseline_batch}"
            sides.append(Side(name, lambda w: in_process_add(baseline, tree, w, count, baseline_batch)))
    if floor:
        sides.append(Side(FLOOR, lambda w: store_layout_floor(tree, w, count)))
    for round_number in range(repeat):
        for side in sides if round_number % 2 == 0 else list(reversed(sides)):
            read_through(tree)
            side.seconds.append(side.run(work))
            print(f"    {side.name}: {side.seconds[-1]:.2f} s ({count / side.seconds[-1]:.0f} files/s)", flush=True)
    shutil.rmtree(tree, ignore_errors=True)
    by_name = {side.name: side.median for side in sides}
    cli, call = by_name[sides[0].name], by_name[sides[1].name]
    cp, git = by_name[sides[2].name], by_name[sides[3].name]
    ratios = {"cli/cp": cp / cli, "call/cp": cp / call, "cli/git": git / cli, "call/git": git / call}
    if baseline is not None:
        ratios["cli/before"] = by_name["before, CLI"] / cli
        ratios["call/before"] = by_name["before, in-process"] / call
        if baseline_batch is not None:
            name = f"before, in-process, batch={baseline_batch}"
            ratios[f"call/before with batch={baseline_batch}"] = by_name[name] / call
    if floor:
        ratios["floor/cp"] = cp / by_name[FLOOR]
    return sides, ratios


def report(count: int, sides: Sequence[Side], ratios: dict[str, float]) -> list[str]:
    """The runs and ratios as lines of text."""
    lines = []
    for side in sides:
        runs = " ".join(f"{s:.2f}" for s in side.seconds)
        lines.append(f"  {count / side.median:8.0f} files/s  median {side.median:7.2f} s  (runs: {runs})  {side.name}")
    for name, value in ratios.items():
        ours, _, other = name.partition("/")
        if ours == "floor":
            lines.append(f"  the store's layout alone (no database, no custody) vs cp: {value:.2f}x")
            continue
        who = "CLI" if ours == "cli" else "in-process"
        target = {"cp": f">= {CP_TARGET}x", "git": f"> {GIT_TARGET}x"}.get(other, "")
        verdict = ("PASS" if value >= CP_TARGET else "FAIL") if other == "cp" else ""
        verdict = ("PASS" if value > GIT_TARGET else "FAIL") if other == "git" else verdict
        lines.append(f"  ours ({who}) vs {other}: {value:.2f}x  {target}  {verdict}".rstrip())
    return lines


def bench_small_files(ctx: Any, row: Callable[..., Any]) -> list[Any]:
    """The ``small`` benchmark of ``benchmarks/run.py``: add of many small files, CLI and in-process,
    vs cp -r + sha256sum + sync and git add + git commit (*row* makes its summary rows)."""
    count = ctx.small_files
    work = ctx.scratch / "small-files"
    work.mkdir()
    sides, ratios = compare(count, ctx.repeat, work)
    for line in report(count, sides, ratios):
        print(line)
    shutil.rmtree(work, ignore_errors=True)
    medians = {side.name: side.median for side in sides}
    rows = []
    for ours, label in ((sides[0].name, "cli"), (sides[1].name, "call")):
        for reference, key, target in ((sides[2].name, "cp", CP_TARGET), (sides[3].name, "git", GIT_TARGET)):
            ratio = ratios[f"{label}/{key}"]
            passed = ratio >= target if key == "cp" else ratio > target
            rows.append(
                row(
                    benchmark=f"add of {count} files of 4-64 KiB, {'CLI' if label == 'cli' else 'in-process'}",
                    ours=f"{count / medians[ours]:.0f} files/s ({medians[ours]:.1f} s, median)",
                    reference=f"{reference}: {count / medians[reference]:.0f} files/s ({medians[reference]:.1f} s)",
                    ratio=f"{ratio:.2f}x",
                    target=f">= {target}x" if key == "cp" else f"> {target}x",
                    status="PASS" if passed else "FAIL",
                )
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone run, with an optional baseline checkout for before/after ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=10_000, help="number of small files (default 10000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout of the library to time too")
    parser.add_argument(
        "--baseline-batch", type=int, default=None, help="also time the baseline in-process with this batch"
    )
    parser.add_argument(
        "--floor", action="store_true", help="also time the blob store's layout alone (a minimal loop, no database)"
    )
    parser.add_argument("--workdir", type=Path, default=HERE / "scratch", help="where to work (on a disk, not tmpfs)")
    args = parser.parse_args(argv)
    baseline = None if args.baseline is None else args.baseline.resolve()

    def run(work: Path) -> list[str]:
        sides, ratios = compare(
            args.files, args.repeat, work, baseline, baseline_batch=args.baseline_batch, floor=args.floor
        )
        return report(args.files, sides, ratios)

    return in_scratch(args.workdir, "small-", run)


def in_scratch(workdir: Path, prefix: str, run: Callable[[Path], list[str]]) -> int:
    """A standalone run: *run* in a new folder under *workdir* (removed after), the load average
    printed before and after, then the report lines it returns."""
    workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=workdir))
    try:
        print(f"load average at start {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
        lines = run(work)
        print(f"load average at end {os.getloadavg()[0]:.2f}")
        for line in lines:
            print(line)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
