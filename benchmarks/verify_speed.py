"""``verify`` against the standard tools on the same data in the same run (issue 22, target 5).

Registered in ``run.py`` as ``verify``; also runs on its own::

    .venv/bin/python benchmarks/verify_speed.py --small 10000 --large 4 --log-events 1000000

The data is built once: a catalog of ``--small`` records of 4-64 KiB each (distinct random
bytes, added with ``Catalog.add(..., batch=1000)``), timed; then ``--large`` files of 256 MiB
are added to the same catalog (the *mixed* catalog), timed again.  Each catalog is verified

* through the CLI as users run it (``python -m evidence_catalog verify --no-log --quiet``: the
  whole process, start-up included), and
* in-process (``rss_child.py verify``: only the ``Catalog.verify`` call; its peak RSS too),

against the same blob files checked by

* ``sha256sum -c`` of a list of every blob (one process, one CPU),
* ``openssl dgst -sha256`` of every blob (one process), and
* ``xargs -0 -P <cpus> -n <files / (4 x cpus)> openssl dgst -sha256`` (every CPU).

"One CPU" runs both sides under ``taskset -c <first CPU>``: the targets are ``verify`` >= 1.0x
``sha256sum -c`` there (ratio = the tool's time / ours, above 1 is faster), and >= 0.8x ``xargs
-P openssl`` with every CPU.  The sides alternate, each round in the opposite order, and the
best of ``--repeat`` runs counts (wall time for the targets; the CPU time of each side's
processes is given too, as it changes least on a busy machine: for the in-process side it is
the whole child process, start-up included).  The page cache is not dropped (it would disturb the other
work on a shared machine): every blob is read once before the timed runs, so that both sides
read from the page cache; the output gives the data's size and the memory's.

Last, a custody log of ``--log-events`` events (catalog-level ``catalog.verified`` events in
transactions of 2,000, each ending with its signed checkpoint, as ``log`` makes them) is
verified in a child process: events/s and peak RSS (target: under 200 MiB for 1,000,000
events).  The ``verify`` children get a scratch ``XDG_STATE_HOME``, so that the checkpoint a
clean verification remembers is not left in the user's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

KIB = 1024
MIB = 1024 * KIB
HERE = Path(__file__).resolve().parent
CHILD = HERE / "rss_child.py"
OPERATOR = "Benchmark <bench@example.org>"
SEED = 20240622
#: Small records: sizes drawn uniformly from this range (the issue's 4-64 KiB).
SMALL_SIZES = (4 * KIB, 64 * KIB)
LARGE_SIZE = 256 * MIB
ONE_CPU_TARGET = 1.0
ALL_CPUS_TARGET = 0.8
RSS_TARGET_MIB = 200.0
LOG_BATCH = 2000
#: The commands the benchmark needs.
TOOLS = ("sha256sum", "openssl", "xargs", "taskset")

#: A summary line: benchmark, ours, reference, ratio, target, status (``run.Row``'s fields).
Line = tuple[str, str, str, str, str, str]


def _write_random(path: Path, size: int, rng: random.Random) -> None:
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            n = min(remaining, 8 * MIB)
            out.write(rng.randbytes(n))
            remaining -= n


def build_small(catalog_dir: Path, source: Path, count: int) -> None:
    """A catalog of *count* records of 4-64 KiB of distinct random bytes."""
    from evidence_catalog import Catalog

    rng = random.Random(SEED)
    paths = []
    for index in range(count):
        folder = source / f"{index // 1000:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"f{index:07d}.bin"
        _write_random(path, rng.randint(*SMALL_SIZES), rng)
        paths.append(path)
    with Catalog.init(catalog_dir, operator=OPERATOR) as catalog:
        catalog.add(paths, batch=1000)
    shutil.rmtree(source)


def add_large(catalog_dir: Path, source: Path, count: int) -> None:
    """Add *count* files of 256 MiB to the catalog (one at a time, each then deleted)."""
    from evidence_catalog import Catalog

    rng = random.Random(SEED + 1)
    with Catalog.open(catalog_dir, operator=OPERATOR) as catalog:
        for _ in range(count):
            _write_random(source, LARGE_SIZE, rng)
            catalog.add([source])
            source.unlink()


def build_log(catalog_dir: Path, count: int) -> int:
    """A catalog whose log holds *count* events (transactions of 2,000, each signed)."""
    from rss_child import fill_log

    from evidence_catalog import Catalog

    with Catalog.init(catalog_dir, operator=OPERATOR) as catalog:
        return fill_log(catalog, count, LOG_BATCH)


def blob_files(catalog_dir: Path) -> list[tuple[str, str]]:
    """(SHA-256, path) of every blob of the catalog."""
    return sorted((p.name, os.fspath(p)) for p in (catalog_dir / "blobs" / "sha256").rglob("*") if p.is_file())


def read_all(paths: Sequence[str]) -> None:
    """Read every file once (into the page cache)."""
    buffer = bytearray(MIB)
    for path in paths:
        with open(path, "rb", buffering=0) as stream:
            while stream.readinto(buffer):
                pass


class Runs:
    """Seconds of the runs of one side."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.seconds: list[float] = []
        #: CPU seconds (user + system) of the process(es) of each run: what a busy machine
        #: changes least.
        self.cpu: list[float] = []

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def best_cpu(self) -> float:
        return min(self.cpu)

    def text(self) -> str:
        runs = " ".join(f"{s:.2f}" for s in self.seconds)
        return f"{self.best:.2f} s wall, {self.best_cpu:.2f} s CPU (runs: {runs})"


def alternate(repeat: int, sides: Sequence[tuple[Runs, Callable[[], float]]]) -> None:
    """Run every side *repeat* times, interleaved, in the opposite order every other round."""
    for round_number in range(repeat):
        for runs, run in sides if round_number % 2 == 0 else tuple(reversed(sides)):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            runs.seconds.append(run())
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            runs.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def _timed(argv: Sequence[str], env: dict[str, str], stdin: str | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv[:6])} ... failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout


def compare_catalog(
    title: str, catalog_dir: Path, repeat: int, env: dict[str, str], work: Path, cpus: list[int]
) -> list[Line]:
    """Time verify (CLI and in-process) and the tools on one CPU and on all of them."""
    blobs = blob_files(catalog_dir)
    paths = [path for _, path in blobs]
    total = sum(os.path.getsize(p) for p in paths)
    sums = work / "blobs.sha256"
    sums.write_text("".join(f"{sha}  {path}\n" for sha, path in blobs), encoding="utf-8")
    listing = "".join(p + "\0" for p in paths)
    per_call = max(1, -(-len(paths) // (4 * len(cpus))))
    one = ["taskset", "-c", str(cpus[0])]
    cli = [sys.executable, "-m", "evidence_catalog", "verify", "--catalog", os.fspath(catalog_dir), "--no-log"]
    child = [sys.executable, os.fspath(CHILD), "verify", os.fspath(catalog_dir)]
    read_all(paths)
    print(
        f"  {title}: {len(paths)} blobs, {total / MIB:.0f} MiB; page cache warm for both sides"
        f" (memory {_meminfo('MemTotal') / MIB:.0f} MiB); CPUs {','.join(map(str, cpus))}",
        flush=True,
    )
    peaks: list[float] = []
    records: list[int] = []

    def ours_cli(prefix: list[str]) -> Callable[[], float]:
        def run() -> float:
            seconds, output = _timed([*prefix, *cli, "--json"], env)
            report = json.loads(output)
            if not report["ok"] or report["bytes_checked"] != total:
                raise AssertionError(f"verify did not pass: {report['findings'][:3]}")
            records.append(report["records_checked"])
            return seconds

        return run

    def ours_in_process(prefix: list[str]) -> Callable[[], float]:
        def run() -> float:
            _, output = _timed([*prefix, *child], env)
            report = json.loads(output)
            if report["ok"] is not True or report["bytes_checked"] != total:
                raise AssertionError(f"verify did not pass: {report}")
            peaks.append(int(report["peak_kib"]) / KIB)
            return float(report["seconds"])

        return run

    # What openssl prints: a digest per file.  Parallel runs' lines may interleave (a write of
    # more than PIPE_BUF bytes is not atomic): their output is checked by its length only.
    printed = sorted(f"{sha} *{path}" for sha, path in blobs)

    def tool(argv: list[str], stdin: str | None = None) -> Callable[[], float]:
        def run() -> float:
            seconds, output = _timed(argv, env, stdin)
            if argv[0] == "xargs":
                agrees = len(output) == sum(len(line) + 1 for line in printed)
            else:
                agrees = "sha256sum" in argv or sorted(output.splitlines()) == printed
            if not agrees:
                raise AssertionError(f"{' '.join(argv[:6])} ... disagrees with the catalog")
            return seconds

        return run

    openssl = ["openssl", "dgst", "-sha256", "-r"]
    sides = {
        "cli1": (Runs("verify (CLI), one CPU"), ours_cli(one)),
        "in1": (Runs("Catalog.verify (in-process), one CPU"), ours_in_process(one)),
        "sha256sum": (Runs("sha256sum -c, one CPU"), tool([*one, "sha256sum", "-c", "--quiet", os.fspath(sums)])),
        "openssl1": (Runs("openssl dgst -sha256, one process, one CPU"), tool([*one, *openssl, *paths])),
        "cli": (Runs("verify (CLI), every CPU"), ours_cli([])),
        "in": (Runs("Catalog.verify (in-process), every CPU"), ours_in_process([])),
        "xargs": (
            Runs(f"xargs -0 -P {len(cpus)} -n {per_call} openssl dgst -sha256"),
            tool(["xargs", "-0", "-P", str(len(cpus)), "-n", str(per_call), *openssl], listing),
        ),
    }
    alternate(repeat, list(sides.values()))
    runs = {key: side[0] for key, side in sides.items()}
    for side in runs.values():
        print(f"    {side.label:55s} {side.text()}")
    print(f"    records checked {max(records)}; peak RSS of Catalog.verify {max(peaks):.0f} MiB")

    def line(what: str, ours: str, reference: str, target: float | None) -> Line:
        ratio = runs[reference].best / runs[ours].best
        cpu_ratio = runs[reference].best_cpu / runs[ours].best_cpu
        status = "INFO" if target is None else ("PASS" if ratio >= target else "FAIL")
        target_text = "none (info)" if target is None else f">= {target:.1f}x"
        print(f"    {what}: {ratio:.2f}x ({status}); CPU time {cpu_ratio:.2f}x")
        return (
            f"verify, {title}: {what}",
            f"{runs[ours].label} {runs[ours].best:.2f} s ({runs[ours].best_cpu:.2f} s CPU)",
            f"{runs[reference].label} {runs[reference].best:.2f} s ({runs[reference].best_cpu:.2f} s CPU)",
            f"{ratio:.2f}x (CPU time {cpu_ratio:.2f}x)",
            target_text,
            status,
        )

    return [
        line("CLI vs sha256sum -c, one CPU", "cli1", "sha256sum", ONE_CPU_TARGET),
        line("in-process vs sha256sum -c, one CPU", "in1", "sha256sum", None),
        line("CLI vs openssl, one CPU", "cli1", "openssl1", None),
        line("CLI vs xargs -P openssl, every CPU", "cli", "xargs", ALL_CPUS_TARGET),
        line("in-process vs xargs -P openssl, every CPU", "in", "xargs", None),
    ]


def _meminfo(key: str) -> int:
    with open("/proc/meminfo", encoding="ascii") as info:
        for text in info:
            if text.startswith(key + ":"):
                return int(text.split()[1]) * KIB
    return 0


def log_memory(catalog_dir: Path, events: int, env: dict[str, str]) -> list[Line]:
    """Build a log of *events* events, verify it in a child: events/s and peak RSS."""
    print(f"  (appending {events} custody events ...)", flush=True)
    built = build_log(catalog_dir, events)
    _, output = _timed([sys.executable, os.fspath(CHILD), "verify", os.fspath(catalog_dir)], env)
    report = json.loads(output)
    if report["ok"] is not True:
        raise AssertionError(f"the log did not verify: {report['findings']}")
    seconds = float(report["seconds"])
    peak = int(report["peak_kib"]) / KIB
    # The target is for a million events: a smaller log only says how the figure grows.
    status = "INFO" if built < 1_000_000 else ("PASS" if peak < RSS_TARGET_MIB else "FAIL")
    print(f"    verify of {built} events: {built / seconds:.0f} events/s ({seconds:.1f} s), peak RSS {peak:.0f} MiB")
    return [
        (
            f"verify of a {built}-event custody log",
            f"{built / seconds:.0f} events/s, peak RSS {peak:.0f} MiB",
            "-",
            "-",
            f"< {RSS_TARGET_MIB:.0f} MiB at 1,000,000 events",
            status,
        )
    ]


def usable_cpus() -> list[int]:
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def bench(scratch: Path, *, small: int, large: int, log_events: int, repeat: int) -> list[Line]:
    """Every comparison; work files go under *scratch* and are removed."""
    work = Path(tempfile.mkdtemp(prefix="verify-", dir=scratch))
    env = {**os.environ, "XDG_STATE_HOME": os.fspath(work / "state")}
    cpus = usable_cpus()
    catalog_dir = work / "catalog"
    lines: list[Line] = []
    try:
        print(f"  (adding {small} records of 4-64 KiB ...)", flush=True)
        build_small(catalog_dir, work / "source", small)
        lines += compare_catalog(f"{small} small records", catalog_dir, repeat, env, work, cpus)
        if large:
            print(f"  (adding {large} files of 256 MiB ...)", flush=True)
            add_large(catalog_dir, work / "large.bin", large)
            title = f"{small} small records + {large} x 256 MiB"
            lines += compare_catalog(title, catalog_dir, repeat, env, work, cpus)
        shutil.rmtree(catalog_dir)
        if log_events:
            lines += log_memory(work / "log-catalog", log_events, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return lines


def bench_from_run(ctx: Any) -> list[Line]:
    """``run.py --only verify``: its ``--small-files``, ``--log-events`` and ``--repeat``; four
    large files."""
    return bench(ctx.scratch, small=ctx.small_files, large=4, log_events=ctx.log_events, repeat=ctx.repeat)


def main(argv: Sequence[str] | None = None) -> int:
    """Run on its own; exit status 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="small records (default 10000)")
    parser.add_argument("--large", type=int, default=4, help="files of 256 MiB in the mixed catalog (default 4)")
    parser.add_argument("--log-events", type=int, default=1_000_000, help="events of the log (default 1000000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--workdir", type=Path, default=HERE / "scratch", help="scratch folder")
    args = parser.parse_args(argv)
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        print(f"needs {', '.join(missing)}")
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    lines = bench(args.workdir, small=args.small, large=args.large, log_events=args.log_events, repeat=args.repeat)
    print("\nSummary")
    for benchmark, ours, reference, ratio, target, status in lines:
        print(f"  {status:4s}  {benchmark}: ours {ours}; {reference}; ratio {ratio}; target {target}")
    return 1 if any(line[5] == "FAIL" for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
