"""``bagspeed``: BagIt export and import of a mixed catalog against the standard tools (issue 22,
targets 4 and 5), through the command line as users run it and in-process.

The catalog holds ``--bag-small-files`` records of one file of 4-64 KiB each (default 10,000,
distinct content) and ``--bag-large-files`` files of ``--bag-large-mib`` MiB (default 10 of
256 MiB), added with ``Catalog.add(..., batch=1000)``.  Measured in alternating rounds (the best
of ``--repeat`` runs of each side), everything in the page cache, ``sync`` before each run:

``export``
    ``evidence-catalog export --format bagit`` (a new interpreter each run, start-up included)
    and ``Catalog.export(format="bagit")`` timed inside a child process (``bag_speed.py child
    export``; its peak RSS too), against ``cp -r`` of the same files, ``bagit.py --processes
    <cpus> --sha256`` on the copy and ``sync``: what making the same bag with the standard tools
    costs.  Every export flushes its bag to the disk before it returns, as the reference's
    ``sync`` does.  Target: at least 1.0x.
``import``
    ``evidence-catalog import`` of that bag into an empty catalog (made untimed) and
    ``Catalog.import_records`` timed in a child, against ``bagit.py --validate --processes
    <cpus>`` of the same bag.  An import checks everything the validation checks (paths,
    completeness, Payload-Oxum, every digest) and more (schemas, custody events replayed, the
    signed log, every artifact described again from its bytes), stores every file and commits
    the records.  Target: at least 0.5x.  For context, the bag check alone
    (``interchange.bag.check_bag`` in a child, as ``benchmarks/run.py bagit`` times it).
``verify_bag.py``
    ``docs/verify_bag.py`` on a bag holding one file of ``--verify-bag-gib`` GiB (default 1):
    its peak RSS (``VmHWM``), which must not grow with the file (target: under 64 MiB), and its
    time against ``sha256sum -c`` of the bag's manifest.

With ``--bag-baseline DIR`` (a checkout of another version of the library, e.g. a worktree of
the commit before a change), its export and import run as one more side of each comparison
(``PYTHONPATH=DIR``): before and after in the same run, on the same data.

Run alone: ``python benchmarks/run.py --only bagspeed`` (smaller: ``--bag-small-files 2000
--bag-large-files 2 --bag-large-mib 128 --verify-bag-gib 0.25 --repeat 1``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VERIFY_BAG = REPO / "docs" / "verify_bag.py"
KIB, MIB, GIB = 1024, 1024 * 1024, 1024 * 1024 * 1024
SEED = 20240622
OPERATOR = "Benchmark <bench@example.org>"
EXPORT_TARGET = 1.0
IMPORT_TARGET = 0.5
VERIFY_BAG_RSS_MIB = 64.0
FILES_PER_DIR = 100


class Settings(argparse.Namespace):
    """The options of this benchmark (see :func:`add_options`)."""

    bag_small_files: int = 10_000
    bag_large_files: int = 10
    bag_large_mib: float = 256.0
    verify_bag_gib: float = 1.0
    bag_baseline: Path | None = None


SETTINGS = Settings()


def add_options(parser: argparse.ArgumentParser) -> None:
    """The command-line options of ``bagspeed``."""
    group = parser.add_argument_group("bagspeed")
    group.add_argument("--bag-small-files", type=int, default=10_000, metavar="N", help="small records (default 10000)")
    group.add_argument("--bag-large-files", type=int, default=10, metavar="N", help="large files (default 10)")
    group.add_argument("--bag-large-mib", type=float, default=256.0, metavar="MIB", help="their size (default 256)")
    group.add_argument(
        "--verify-bag-gib", type=float, default=1.0, metavar="GIB", help="file verify_bag.py checks (default 1)"
    )
    group.add_argument(
        "--bag-baseline", type=Path, default=None, metavar="DIR", help="another checkout to time as 'before'"
    )


def configure(args: argparse.Namespace) -> None:
    """Take this benchmark's options from the parsed command line."""
    for name in ("bag_small_files", "bag_large_files", "bag_large_mib", "verify_bag_gib", "bag_baseline"):
        setattr(SETTINGS, name, getattr(args, name))


def disk_needed() -> int:
    """Bytes of scratch space the benchmark needs at most (five copies of the data, with room)."""
    data = SETTINGS.bag_small_files * 40 * KIB + SETTINGS.bag_large_files * int(SETTINGS.bag_large_mib * MIB)
    return 6 * data + 3 * int(SETTINGS.verify_bag_gib * GIB)


# -- data ----------------------------------------------------------------------------------------


def make_source(
    root: Path, small: int, large: int, large_size: int, write_large: Callable[[Path, int, int], None]
) -> int:
    """*small* files of 4-64 KiB (distinct content) under ``root/small`` and *large* files of
    *large_size* bytes under ``root/large``; return the bytes written."""
    rng = random.Random(SEED)
    total = 0
    for index in range(small):
        folder = root / "small" / f"d{index // FILES_PER_DIR:04d}"
        if index % FILES_PER_DIR == 0:
            folder.mkdir(parents=True)
        size = rng.randint(4 * KIB, 64 * KIB)
        (folder / f"photo{index:06d}.jpg").write_bytes(f"{index}\n".encode() + rng.randbytes(size - 8))
        total += size - 8 + len(f"{index}\n")
    (root / "large").mkdir(parents=True, exist_ok=True)
    for index in range(large):
        write_large(root / "large" / f"video-{index:02d}.mp4", large_size, SEED + 100 + index)
        total += large_size
    return total


def make_catalog(catalog: Path, sources: list[Path]) -> None:
    """A catalog of every file under *sources*, one record each (transactions of 1,000 files)."""
    from evidence_catalog import Catalog

    with Catalog.init(catalog, operator=OPERATOR) as made:
        made.add(sources, recursive=True, batch=1000)


# -- child processes -------------------------------------------------------------------------------


def child(argv: list[str]) -> int:
    """``child export CATALOG BAG`` / ``child import CATALOG BAG`` / ``child check BAG``: run one
    call in this process and print its seconds and this process's peak RSS as JSON."""
    mode = argv[0]
    report: dict[str, Any] = {"mode": mode}
    if mode == "export":
        from evidence_catalog import Catalog

        with Catalog.open(argv[1]) as catalog:
            started = time.perf_counter()
            exported = catalog.export(argv[2], format="bagit")
            report.update(seconds=time.perf_counter() - started, records=exported.records)
    elif mode == "import":
        from evidence_catalog import Catalog

        with Catalog.init(argv[1], operator=OPERATOR) as catalog:
            started = time.perf_counter()
            imported = catalog.import_records(argv[2])
            report.update(seconds=time.perf_counter() - started, records=len(imported.records_added))
    elif mode == "check":
        from evidence_catalog.interchange.bag import check_bag

        started = time.perf_counter()
        check_bag(Path(argv[1]))
        report.update(seconds=time.perf_counter() - started)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    report["peak_kib"] = peak_kib()
    print(json.dumps(report))
    return 0


def peak_kib() -> int:
    """This process's peak resident set (``VmHWM``; 0 where there is no /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def environment(source: Path | None) -> dict[str, str]:
    """The environment of a child that imports the library from *source* (this checkout when
    ``None``)."""
    return {**os.environ, "PYTHONPATH": os.fspath(source or REPO), "PYTHONDONTWRITEBYTECODE": "1"}


def run_child(source: Path | None, *args: str) -> dict[str, Any]:
    """Run ``bag_speed.py child ARGS`` with the library from *source*; its JSON report."""
    done = subprocess.run(
        [sys.executable, os.fspath(Path(__file__)), "child", *args],
        capture_output=True,
        text=True,
        env=environment(source),
    )
    if done.returncode != 0:
        raise RuntimeError(f"bag_speed.py child {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def run_cli(source: Path | None, *args: str) -> float:
    """Seconds of ``evidence-catalog ARGS`` (``python -m evidence_catalog``: a new interpreter,
    start-up included) with the library from *source*.  ``-P``: ``-m`` would put the current
    folder first on the path, so that a run from a checkout's root timed that checkout's library
    whatever *source* was (the baseline side was this checkout again)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-P", "-m", "evidence_catalog", *args], capture_output=True, text=True, env=environment(source)
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"evidence-catalog {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return seconds


def set_aside(path: Path, attic: Path) -> None:
    """Free what a previous run wrote at *path* without deleting its files: each file emptied
    (its data freed), the tree moved into *attic*, deleted at the end of the benchmark.

    On ext4 without a journal (the file system of the machine the figures were measured on),
    an inode is not used again for 60 seconds after it is deleted (300 more while its block of
    the inode table is not written back), and every new file or folder walks past each of
    those one by one: right after ``rm -r`` of a bag of 10,000 records (40,000 inodes: a
    folder, an ``artifacts`` folder and two files a record), making the same tree again took
    7.0 s of CPU instead of 2.5 s, more with each bag deleted within the minute, and 2.7 s
    instead of 1.0 s for ``cp -r``'s tree of 10,000 files.  Deleting the previous run's output
    just before each run made every run slower than the one before it, the export (with four
    times the reference's inodes) most; set aside, no inode is freed while runs are timed."""
    if not path.exists():
        return
    attic.mkdir(exist_ok=True)
    for folder, _, files in os.walk(path):
        for name in files:
            file = os.path.join(folder, name)
            if not os.access(file, os.W_OK):
                os.chmod(file, 0o600)  # a stored blob is read-only
            os.truncate(file, 0)
    path.rename(attic / f"{sum(1 for _ in attic.iterdir()):03d}-{path.name}")


def verify_bag_peak(bag: Path) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of ``docs/verify_bag.py BAG`` (the standard library only)."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = sys.argv[1:]\n"
        "code = 0\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
        "print('PEAK', peak, code)\n"
    )
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, os.fspath(VERIFY_BAG), os.fspath(bag)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    seconds = time.perf_counter() - started
    _, peak, code = output.strip().splitlines()[-1].split()
    if code != "0":
        raise RuntimeError(f"verify_bag.py did not verify the bag:\n{output}")
    return seconds, int(peak)


# -- the benchmark ---------------------------------------------------------------------------------


def bench(ctx: Any) -> list[Any]:
    """BagIt export and import of a mixed catalog vs cp + bagit.py + sync and bagit.py --validate."""
    import run as bench_run

    timings, alternate, remove = bench_run.Timings, bench_run.alternate, bench_run.remove
    bagit_py = shutil.which("bagit.py") or os.fspath(Path(sys.executable).with_name("bagit.py"))
    cores = str(os.cpu_count() or 1)
    scratch: Path = ctx.scratch / "bagspeed"
    source = scratch / "source"
    large_size = int(SETTINGS.bag_large_mib * MIB)
    print(
        f"(creating {SETTINGS.bag_small_files} files of 4-64 KiB and {SETTINGS.bag_large_files} of"
        f" {bench_run.size_text(large_size)} ...)",
        flush=True,
    )
    total = make_source(
        source, SETTINGS.bag_small_files, SETTINGS.bag_large_files, large_size, bench_run.write_keystream_file
    )
    catalog = scratch / "catalog"
    print("(adding them to a catalog ...)", flush=True)
    make_catalog(catalog, [p for p in (source / "large", source / "small") if p.exists()])
    records = SETTINGS.bag_small_files + SETTINGS.bag_large_files
    label = f"{records} records, {bench_run.size_text(total)}"
    baseline = SETTINGS.bag_baseline
    bag, theirs = scratch / "bag", scratch / "bag-theirs"
    peaks: dict[str, list[float]] = {"export": [], "import": [], "check": []}

    def fresh(path: Path) -> None:
        set_aside(path, scratch / "set-aside")
        os.sync()

    def export_cli(library: Path | None = None) -> Callable[[], float]:
        def run() -> float:
            fresh(bag)
            return run_cli(
                library, "export", "--catalog", os.fspath(catalog), "--format", "bagit", "-o", os.fspath(bag), "-q"
            )

        return run

    def child_call(mode: str, made: Path, *paths: Path, library: Path | None = None) -> Callable[[], float]:
        """A run of ``bag_speed.py child MODE PATHS`` that makes *made* afresh (its peak RSS
        kept for this library)."""

        def run() -> float:
            fresh(made)
            report = run_child(library, mode, *map(os.fspath, paths))
            if library is None:
                peaks[mode].append(report["peak_kib"] / KIB)
            return float(report["seconds"])

        return run

    def export_call(library: Path | None = None) -> Callable[[], float]:
        return child_call("export", bag, catalog, bag, library=library)

    def reference_export() -> float:
        fresh(theirs)
        started = time.perf_counter()
        bench_run.run_tool(["cp", "-r", os.fspath(source), os.fspath(theirs)])
        bench_run.run_tool([bagit_py, "--quiet", "--processes", cores, "--sha256", os.fspath(theirs)])
        os.sync()
        seconds = time.perf_counter() - started
        return seconds

    bench_run.read_through_tree(source)
    bench_run.read_through_tree(catalog / "blobs")
    sides: list[tuple[Any, Callable[[], float]]] = [
        (timings("export (CLI)"), export_cli()),
        (timings("Catalog.export"), export_call()),
        (timings("cp -r + bagit.py + sync"), reference_export),
    ]
    if baseline is not None:
        sides += [(timings("export (CLI), baseline"), export_cli(baseline))]
        sides += [(timings("Catalog.export, baseline"), export_call(baseline))]
    alternate(ctx.repeat, *sides)
    fresh(theirs)  # set aside: no inode freed before the import runs either
    reference = sides[2][0]
    rows = [
        bench_run.compare(f"BagIt export, CLI ({label})", total, sides[0][0], reference, EXPORT_TARGET),
        bench_run.compare(f"BagIt export, in-process ({label})", total, sides[1][0], reference, EXPORT_TARGET),
    ]
    if baseline is not None:
        for index, what in ((3, "CLI"), (4, "in-process")):
            rows.append(bench_run.compare(f"BagIt export, {what}, baseline", total, sides[index][0], reference, None))
    rows.append(bench_run.info_row(f"Peak RSS of Catalog.export ({label})", f"{max(peaks['export']):.1f} MiB"))

    # -- import: the bag the last export made (made again when the last run was the reference)
    if not (bag / "bagit.txt").exists():
        export_call()()
    bench_run.read_through_tree(bag)
    target = scratch / "imported"

    def import_cli(library: Path | None = None) -> Callable[[], float]:
        def run() -> float:
            fresh(target)
            subprocess.run(
                [sys.executable, "-P", "-m", "evidence_catalog", "init", os.fspath(target), "--operator", OPERATOR],
                check=True,
                capture_output=True,
                env=environment(library),
            )
            os.sync()
            return run_cli(library, "import", "--catalog", os.fspath(target), os.fspath(bag), "-q")

        return run

    def import_call(library: Path | None = None) -> Callable[[], float]:
        return child_call("import", target, target, bag, library=library)

    def check_call() -> float:
        report = run_child(None, "check", os.fspath(bag))
        peaks["check"].append(report["peak_kib"] / KIB)
        return float(report["seconds"])

    def validate() -> float:
        return bench_run.timed(
            lambda: bench_run.run_tool([bagit_py, "--quiet", "--validate", "--processes", cores, os.fspath(bag)])
        )

    sides = [
        (timings("import (CLI)"), import_cli()),
        (timings("Catalog.import_records"), import_call()),
        (timings("bagit.py --validate"), validate),
        (timings("check_bag"), check_call),
    ]
    if baseline is not None:
        sides += [(timings("import (CLI), baseline"), import_cli(baseline))]
        sides += [(timings("Catalog.import_records, baseline"), import_call(baseline))]
    alternate(ctx.repeat, *sides)
    reference = sides[2][0]
    rows += [
        bench_run.compare(f"import of the bag, CLI ({label})", total, sides[0][0], reference, IMPORT_TARGET),
        bench_run.compare(f"import of the bag, in-process ({label})", total, sides[1][0], reference, IMPORT_TARGET),
        bench_run.compare("bag check alone (check_bag)", total, sides[3][0], reference, None),
    ]
    if baseline is not None:
        for index, what in ((4, "CLI"), (5, "in-process")):
            rows.append(
                bench_run.compare(f"import of the bag, {what}, baseline", total, sides[index][0], reference, None)
            )
    rows.append(bench_run.info_row(f"Peak RSS of Catalog.import_records ({label})", f"{max(peaks['import']):.1f} MiB"))
    remove(target)
    remove(bag)
    remove(catalog)
    remove(source)
    remove(scratch / "set-aside")
    rows += verify_bag_rows(ctx, scratch, bench_run)
    remove(scratch)
    return rows


def verify_bag_rows(ctx: Any, scratch: Path, bench_run: Any) -> list[Any]:
    """Peak RSS and time of ``docs/verify_bag.py`` on a bag with one large file."""
    size = int(SETTINGS.verify_bag_gib * GIB)
    source = scratch / "verify-source"
    make_source(source, 10, 1, size, bench_run.write_keystream_file)
    catalog, bag = scratch / "verify-catalog", scratch / "verify-bag"
    make_catalog(catalog, [source / "large", source / "small"])
    run_child(None, "export", os.fspath(catalog), os.fspath(bag))
    bench_run.read_through_tree(bag)
    ours, sums = bench_run.Timings("verify_bag.py"), bench_run.Timings("sha256sum -c")
    peaks: list[int] = []

    def script() -> float:
        seconds, peak = verify_bag_peak(bag)
        peaks.append(peak)
        return seconds

    def sha256sum() -> float:
        return bench_run.timed(
            lambda: subprocess.run(
                ["sha256sum", "--quiet", "-c", "manifest-sha256.txt"], cwd=bag, check=True, stdout=subprocess.DEVNULL
            )
        )

    bench_run.alternate(ctx.repeat, (ours, script), (sums, sha256sum))
    peak_mib = max(peaks) / KIB
    status = "PASS" if peak_mib < VERIFY_BAG_RSS_MIB else "FAIL"
    print(f"  verify_bag.py peak RSS: {peak_mib:.1f} MiB (target under {VERIFY_BAG_RSS_MIB:.0f} MiB)  {status}")
    rows = [
        bench_run.Row(
            benchmark=f"Peak RSS of docs/verify_bag.py, bag with a {bench_run.size_text(size)} file",
            ours=f"{peak_mib:.1f} MiB",
            reference="-",
            ratio="-",
            target=f"< {VERIFY_BAG_RSS_MIB:.0f} MiB",
            status=status,
        ),
        bench_run.compare(f"docs/verify_bag.py, bag with a {bench_run.size_text(size)} file", size, ours, sums, None),
    ]
    bench_run.remove(bag)
    bench_run.remove(catalog)
    bench_run.remove(source)
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "child":
        sys.exit(child(sys.argv[2:]))
    raise SystemExit("run it through benchmarks/run.py --only bagspeed")
