"""Benchmarks of evidence_catalog against the standard tools, each as a ratio measured in the same run.

Run with ``make bench`` or ``.venv/bin/python benchmarks/run.py``; a quick run::

    .venv/bin/python benchmarks/run.py --size-gib 0.25 --small-files 500 --capture-size-mib 100 --repeat 1

What is measured (issue point 12; ``capture`` issue 3), each side on the same file in the same run:

``hash``
    ``evidence_catalog.hashing.hash_file`` (SHA-256) of a 1 GiB file vs ``openssl dgst -sha256``.
    Target: at least 0.9x OpenSSL's throughput.
``add``
    ``Catalog.add`` of a 1 GiB file into a fresh catalog (hash + store + fsync + database) vs
    ``openssl dgst -sha256`` + ``cp`` + ``sync``.  Target: at least 0.8x.
``multi``
    SHA-256 + MD5 + SHA-1 in one pass (``hash_file``) vs three ``openssl dgst`` runs one after
    another.  No target in the issue; reported for information.
``rss``
    Peak RSS of a child process that adds a 2 GiB file, with the bare interpreter, the imported
    library and an empty catalog as baselines.  Target: under 100 MiB in total.
``small``
    ``evidence-catalog add --recursive`` of ``--small-files`` files (default 10,000) of 4-64 KiB
    of distinct content, through the CLI (a new process, default options) and in-process
    (``Catalog.add``), vs ``cp -r`` + ``sha256sum`` + ``sync`` (target: at least 0.5x) and vs
    ``git add`` + ``git commit`` (target: faster) of the same folder; medians of alternating
    runs.  See ``small_files.py`` (which, run on its own with ``--baseline``, also times
    another checkout of the library: before/after).
``capture``
    ``evidence-catalog capture`` and ``Catalog.capture`` of one 500 MiB file
    (``--capture-size-mib``) and of a batch of 50 small ones, served by the loopback test server
    (``tests/media_server.py``), vs ``curl`` of the same URLs; target at least 0.6x ``curl -o``
    for the one URL.  See ``capture_speed.py`` (it also runs alone, and compares with an older
    checkout).  Needs ``curl``: the run stops with a message when it is missing.
``ingest``
    ``Catalog.ingest`` of a generated feed-reader digest of 100,000 items (``--ingest-items``;
    issue 4), in a child process (``rss_child.py ingest``): items/s and peak RSS, and the time at
    10 %, 30 % and 100 % of that size (10k, 30k, 100k items) to show that it grows linearly:
    seconds per 1,000 items at each size and the ratio of the largest to the smallest per-item
    cost (PASS below 1.5, else INFO).  There is no external tool to compare with: the issue asks
    only for items/s, RSS and linearity.

``log``
    Append ``--log-events`` custody events (default 1,000,000) in transactions of 2,000, each
    ending with a signed checkpoint (events/s); inclusion and consistency proof times at 1,000,
    10,000, ... events (median of 51, every tree node read from the database: they grow with
    log n); a full ``verify`` (events/s) and the peak RSS (``rss_child.py log``; issue 7).  No
    reference tool.
``bagit``
    Export a catalog of ``--bag-gib`` GiB (default 5; issue 6: 40 large files and 2,000 small
    ones) as a BagIt bag (``rss_child.py export-bag``: MB/s and peak RSS) vs making a bag of the
    same files with bagit-python (``cp -r`` of the files, then ``bagit.py`` in place, which hashes
    them after copying); then re-validate the exported bag as an import does (``rss_child.py
    check-bag``: paths, Payload-Oxum, every digest; MB/s and peak RSS) vs ``bagit.py --validate``
    on the same bag (and ``sha256sum -c`` of its manifest for context).  Both validators are
    given the machine's cores (``--processes``).  No target in the issue; reported as ratios.
``scale``
    Add ``--scale-records`` small files (default 1,000,000; 220-520 B of distinct content each)
    to a fresh catalog on each of ``--scale-backends`` (default ``sqlite,postgresql``), in a
    child process (``rss_child.py scale``): chunks of 10,000 files made in memory (``/dev/shm``,
    when it is a tmpfs; else in the work dir) one chunk at a time, removed once added, each
    added with one ``Catalog.add(paths, batch=1000)`` (a transaction and a signed checkpoint
    per 1,000 files); only those calls are timed.  Records/s overall and
    per tenth of the records, and the spread of those rates as the linearity figure (PASS when
    the fastest tenth is less than 1.5x the slowest, else INFO, as for ``ingest``); peak RSS of
    the add loop.  Then, at that size, the latency (p50/p95/p99/max of 2,000 calls on random
    records, after 200 untimed) of ``has_record`` and ``records_with_artifact`` (target: p99
    under 1 ms) three times: right after adding; on other records once the database has settled
    (PostgreSQL: no autovacuum worker running, then a ``CHECKPOINT``; SQLite: the WAL folded into
    the database; then both: ``sync`` and the page cache's dirty data down to 16 MiB); and on
    those records again (their pages now cached).  Each pass prints how busy the machine's CPUs
    were meanwhile, how much they waited for the disk, and how much the host took (steal).  With the second pass,
    ``record`` (the whole record), a page of 50 ids after a random id and that page of records as
    ``list`` reads it; last ``search`` (a page of 50 hits, after ingesting a digest of up to
    10,000 items).  PostgreSQL is a throw-away local server (``tests/pg_server.py``);
    the test suite runs it with fsync off, so the benchmark restarts it with PostgreSQL's
    durable defaults (``fsync``, ``synchronous_commit``, ``full_page_writes`` on) unless
    ``--scale-pg-fsync off``; the settings it ran with are read back from the server: every
    PostgreSQL row says "PostgreSQL with fsync on" (or off), the add row lists them all.  (With
    ``$EVIDENCE_CATALOG_TEST_POSTGRESQL`` an existing server is used as it is.)  SQLite runs as
    every catalog does: WAL, ``synchronous = FULL``.
``verify``
    ``verify`` through the CLI and in-process vs ``sha256sum -c``, ``openssl`` and ``xargs -P
    openssl`` on 10,000 small records (``--small-files``) and with four 256 MiB files added, on
    one CPU and on all; and the peak RSS of verifying a ``--log-events`` log: see
    ``benchmarks/verify_speed.py``.
``pverify``
    ``Catalog.verify`` (in a child process, ``rss_child.py verify``; every blob re-hashed on one
    thread per CPU) of a catalog of ``--verify-gib`` GiB (default 20) of 256 MiB blobs vs
    ``sha256sum`` of the same blob files in one process, and vs ``xargs -0 -P $(nproc) -n 1
    sha256sum`` of them.  Target: faster than the single ``sha256sum`` (ratio at least 1.0);
    ``xargs -P`` is the "close to" yardstick (INFO).  For context, ``openssl dgst -sha256`` the
    same two ways: the SHA-256 code ``hashlib`` uses (GNU ``sha256sum`` has its own unless
    coreutils was built with OpenSSL; Debian 12's is not, and does not use the CPU's SHA
    extensions).  CPU time / wall time of each side shows how many cores it kept busy.  Each run
    starts with a cold page cache (``sync``, then ``3`` written to ``/proc/sys/vm/drop_caches``:
    root only) so that it reads from the disk, with a plain read of the same files (one thread,
    no hashing) for the disk's speed; when the caches cannot be dropped, the runs simply
    alternate and the output says how the data compares with the memory.  When the data fits in
    half the available memory, ours and the four tools are also timed with the files in the page
    cache (CPU-bound: shows the use of the cores).
``startup``
    Start-up of the installed command (``--version``, ``--help``; ``list``, ``show``, ``verify`` of a
    small catalog) and of ``import evidence_catalog``, vs ``python -c pass``: see ``benchmarks/startup.py``.
``ingest-speed``
    ``ingest`` of every format at 1,000, 20,000 and ``--ingest-items`` items, through the command
    and in-process, per-item CPU cost (linearity) and against the bare parser (feedparser,
    ``json``): see ``benchmarks/ingest_speed.py``.
``bagspeed``
    BagIt export and import of a mixed catalog (10,000 small records and large files) through the
    command and in-process vs ``cp -r`` + ``bagit.py`` + ``sync`` and ``bagit.py --validate``, and
    ``docs/verify_bag.py``'s peak RSS with a large file: see ``benchmarks/bag_speed.py``.
``search``
    The first page of hits over ``--search-reports`` generated reports (default 100,000), 19 kinds
    of query, SQLite and PostgreSQL interleaved, p50/p99: see ``benchmarks/search_speed.py``.

Data files are read once before timing so that both sides read from the page cache (except for
``pverify``'s cold runs); ours and
the reference alternate (each round in the opposite order to the one before), and the best of
``--repeat`` runs of each is compared (the median for ``capture``).  Peak RSS is the child's ``VmHWM`` (see
``rss_child.py`` for why not ``ru_maxrss``).  Before every
timed run that writes, ``sync`` flushes what earlier steps left dirty.  Work files go to a fresh
directory under ``--workdir`` (default ``benchmarks/scratch/``, git-ignored) and are removed at
the end.  The exit status is 1 when a target is missed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bag_speed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from small_files import bench_small_files  # benchmarks/small_files.py (this folder is on the path)

import evidence_catalog
from evidence_catalog import Catalog
from evidence_catalog.hashing import BLOCK_SIZE, hash_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verify_speed

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_WORKDIR = HERE / "scratch"
CHILD = HERE / "rss_child.py"

OPERATOR = "Benchmark <bench@example.org>"
BENCHMARKS = ("hash", "multi", "add", "capture", "rss", "small", "ingest", "bagit", "log", "scale", "pverify", "verify")
BENCHMARKS += ("ingest-speed", "search")  # benchmarks/ingest_speed.py, search_speed.py (issue 22)
BENCHMARKS += ("bagspeed",)  # benchmarks/bag_speed.py (issue 22)
MULTI_ALGORITHMS = ("sha256", "md5", "sha1")

#: Targets from the issue: minimum ratio ours/reference, and the peak-RSS ceiling.
HASH_TARGET = 0.9
ADD_TARGET = 0.8
RSS_TARGET_MIB = 100.0

SEED = 20240612
#: Chunk size used to generate data files.
GENERATE_CHUNK = 8 * MIB
#: Small files are spread over directories of this many files.
FILES_PER_DIR = 100
#: Size of the file the capture benchmark serves, in MiB (issue 3).
DEFAULT_CAPTURE_MIB = 500
#: Items in the largest digest of the ingest benchmark (issue 4), and the fractions of it timed.
DEFAULT_INGEST_ITEMS = 100_000
INGEST_FRACTIONS = (0.1, 0.3, 1.0)
#: Linearity: the ratio of the largest to the smallest per-item cost below which ingest PASSes.
INGEST_LINEAR_LIMIT = 1.5
#: ``scale``: records added (issue: 1M), the backends, the tenths timed, and the lookup target.
DEFAULT_SCALE_RECORDS = 1_000_000
SCALE_BACKENDS = ("sqlite", "postgresql")
SCALE_SLICES = 10
LOOKUP_TARGET_MS = 1.0
#: Disk used per record added (blob file, its folders, database rows and indexes), with room to
#: spare: measured 14 KiB on ext4 with SQLite (7 KiB of it the database), 12 KiB with PostgreSQL.
SCALE_BYTES_PER_RECORD = 20 * KIB
#: Items in the digest ``scale`` ingests to time ``search``: a hundredth of the records, at most this.
SCALE_DIGEST_ITEMS = 10_000
#: ``pverify``: total size of the blobs (issue: 20 GiB), in files of this size.
DEFAULT_VERIFY_GIB = 20.0
VERIFY_FILE_SIZE = 256 * MIB
#: Target: verify's throughput over a single ``sha256sum``'s.
VERIFY_TARGET = 1.0


# -- results -------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the summary table."""

    benchmark: str
    ours: str
    reference: str
    ratio: str
    target: str
    status: str  # PASS, FAIL, INFO or SKIP


def info_row(benchmark: str, ours: str, reference: str = "-", ratio: str = "-") -> Row:
    """A summary line that reports a figure with no target to pass or fail."""
    return Row(benchmark=benchmark, ours=ours, reference=reference, ratio=ratio, target="none (info)", status="INFO")


@dataclass
class Timings:
    """Wall-clock seconds of repeated runs of one side of a comparison."""

    label: str
    seconds: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        """The fastest run (the least disturbed by everything else on the machine)."""
        return min(self.seconds)

    @property
    def median(self) -> float:
        """The middle run (the mean of the two middle ones for an even count)."""
        return statistics.median(self.seconds)

    def pick(self, statistic: str = "best") -> float:
        """Seconds of the ``best`` or the ``median`` run."""
        return self.median if statistic == "median" else self.best

    def throughput(self, size: int, statistic: str = "best") -> float:
        """Throughput in MiB/s for *size* bytes, of the best (or median) run."""
        return size / MIB / self.pick(statistic)

    def describe(self, size: int, statistic: str = "best") -> str:
        """One line: best (or median) throughput and time, then every run."""
        runs = " ".join(f"{s:.2f}" for s in self.seconds)
        seconds = self.pick(statistic)
        return (
            f"{self.throughput(size, statistic):8.0f} MiB/s  {statistic} {seconds:6.2f} s  (runs: {runs})  {self.label}"
        )


def verdict(ratio: float, target: float | None) -> str:
    """PASS or FAIL against a minimum ratio; INFO when there is no target."""
    if target is None:
        return "INFO"
    return "PASS" if ratio >= target else "FAIL"


def compare(
    name: str, size: int, ours: Timings, reference: Timings, target: float | None, statistic: str = "best"
) -> Row:
    """Print a comparison of two timed sides on *size* bytes and return its summary row.

    Both sides are compared on their ``best`` run, or on their ``median`` run."""
    ratio = reference.pick(statistic) / ours.pick(statistic)
    status = verdict(ratio, target)
    target_text = f">= {target:.1f}x" if target is not None else "none (info)"
    print(f"  ours:      {ours.describe(size, statistic)}")
    print(f"  reference: {reference.describe(size, statistic)}")
    print(f"  ratio ours/reference ({statistic} runs): {ratio:.2f}x   target {target_text}   {status}")
    suffix = ", median" if statistic == "median" else ""
    return Row(
        benchmark=name,
        ours=f"{ours.throughput(size, statistic):.0f} MiB/s ({ours.pick(statistic):.2f} s{suffix})",
        reference=(
            f"{reference.label}: {reference.throughput(size, statistic):.0f} MiB/s"
            f" ({reference.pick(statistic):.2f} s{suffix})"
        ),
        ratio=f"{ratio:.2f}x",
        target=target_text,
        status=status,
    )


# -- helpers ---------------------------------------------------------------------------------------


def timed(action: Callable[[], object]) -> float:
    """Seconds *action* takes (wall clock)."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def alternate(repeat: int, *sides: tuple[Timings, Callable[[], float]]) -> None:
    """Run every side *repeat* times, interleaved, reversing the order every other round.

    Each callable returns the seconds of one timed run, which is appended to its side's timings.
    Interleaving spreads slow phases of a shared machine over both sides.
    """
    for round_number in range(repeat):
        for timings, run in sides if round_number % 2 == 0 else tuple(reversed(sides)):
            timings.seconds.append(run())


def run_tool(argv: Sequence[str | os.PathLike[str]], env: dict[str, str] | None = None) -> str:
    """Run an external command; return its standard output, raise if it fails."""
    return subprocess.run([os.fspath(a) for a in argv], check=True, capture_output=True, text=True, env=env).stdout


def tool_output(argv: Sequence[str]) -> str | None:
    """First line of a command's output, or ``None`` when it cannot be run."""
    try:
        lines = run_tool(argv).strip().splitlines()
    except (OSError, subprocess.CalledProcessError):
        return None
    return lines[0] if lines else None


def openssl_digest(algorithm: str, path: Path) -> str:
    """Hex digest of *path* computed by ``openssl dgst``."""
    return run_tool(["openssl", "dgst", f"-{algorithm}", "-r", path]).split()[0]


def missing_tools(*names: str) -> list[str]:
    """The commands among *names* that are not on PATH."""
    return [name for name in names if shutil.which(name) is None]


def size_text(size: int) -> str:
    """A byte count as GiB or MiB."""
    return f"{size / GIB:g} GiB" if size >= GIB else f"{size / MIB:g} MiB"


def write_random_file(path: Path, size: int, seed: int) -> None:
    """Write *size* pseudo-random (incompressible, reproducible) bytes to *path* and fsync them."""
    rng = random.Random(seed)
    with open(path, "wb") as out:  # buffered: write() stores every byte or raises
        remaining = size
        while remaining:
            n = min(GENERATE_CHUNK, remaining)
            out.write(rng.randbytes(n))
            remaining -= n
        out.flush()
        os.fsync(out.fileno())


def read_through(path: Path) -> None:
    """Read a file once so that the timed runs find it in the page cache."""
    buffer = bytearray(BLOCK_SIZE)
    with open(path, "rb", buffering=0) as stream:
        while stream.readinto(buffer):
            pass


def remove(path: Path) -> None:
    """Delete a file or directory tree if it exists (blobs are read-only, which rmtree handles)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# -- the machine -----------------------------------------------------------------------------------


def _proc_field(path: str, key: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


def _unescape_mount(field: bytes) -> bytes:
    """Undo the octal escapes (``\\040`` for a space) of a ``/proc/mounts`` field."""
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)


def file_system(path: Path) -> str:
    """Type and mount options of the file system holding *path* (Linux), else ``unknown``."""
    target = os.fsencode(os.path.realpath(path))
    best: tuple[int, str] = (-1, "unknown")
    try:
        with open("/proc/mounts", "rb") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) < 4:
                    continue
                mount_point = _unescape_mount(parts[1])
                inside = target == mount_point or target.startswith(mount_point.rstrip(b"/") + b"/")
                if inside and len(mount_point) > best[0]:
                    best = (
                        len(mount_point),
                        f"{parts[2].decode(errors='replace')} ({parts[3].decode(errors='replace')})",
                    )
    except OSError:
        pass
    return best[1]


def _yt_dlp_version() -> str:
    try:
        from yt_dlp.version import __version__
    except ImportError:
        return "not installed"
    return str(__version__)


def describe_machine(workdir: Path) -> dict[str, str]:
    """What the figures depend on: CPU, memory, versions and the work directory's file system."""
    flags = (_proc_field("/proc/cpuinfo", "flags") or _proc_field("/proc/cpuinfo", "Features") or "").split()
    if "sha_ni" in flags:
        sha = "yes (sha_ni)"
    elif "sha2" in flags:
        sha = "yes (sha2)"
    else:
        sha = "no" if flags else "unknown"
    mem_kib = (_proc_field("/proc/meminfo", "MemTotal") or "0 kB").split()[0]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    try:
        os_name = platform.freedesktop_os_release().get("PRETTY_NAME", platform.system())
    except OSError:
        os_name = platform.system()
    git = tool_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    if git is not None and tool_output(["git", "-C", str(REPO), "status", "--porcelain", "--", "evidence_catalog"]):
        git += " (evidence_catalog/ modified in the work tree)"
    sha256_impl = "OpenSSL (_hashlib)" if type(hashlib.new("sha256")).__module__ == "_hashlib" else "built-in"
    return {
        "CPUs usable (nproc)": str(usable),
        "CPU model": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "SHA extensions": sha,
        "Memory": f"{int(mem_kib) / MIB:.1f} GiB",
        "OS / kernel": f"{os_name} / {platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "hashlib SHA-256": f"{sha256_impl}, {ssl.OPENSSL_VERSION}",
        "openssl command": tool_output(["openssl", "version"]) or "not found",
        "coreutils": tool_output(["cp", "--version"]) or "unknown",
        "curl": tool_output(["curl", "--version"]) or "not found",
        "yt-dlp": _yt_dlp_version(),
        "Work dir file system": file_system(workdir),
        "evidence_catalog": f"{evidence_catalog.__version__}" + (f", git {git}" if git else ""),
    }


# -- the benchmarks ------------------------------------------------------------------------------


@dataclass
class Context:
    """What every benchmark needs: sizes, the scratch directory and the shared big file."""

    scratch: Path
    size: int
    rss_size: int
    small_files: int
    repeat: int
    capture_size: int = DEFAULT_CAPTURE_MIB * MIB
    ingest_items: int = DEFAULT_INGEST_ITEMS
    bag_size: int = 5 * GIB
    log_events: int = 1_000_000
    scale_records: int = DEFAULT_SCALE_RECORDS
    scale_backends: tuple[str, ...] = SCALE_BACKENDS
    scale_pg_fsync: bool = True
    verify_size: int = int(DEFAULT_VERIFY_GIB * GIB)
    search_reports: int = 100_000
    _big: Path | None = None

    def big_file(self) -> Path:
        """The data file shared by ``hash``, ``multi`` and ``add`` (created on first use)."""
        if self._big is None:
            path = self.scratch / "data.bin"
            print(f"(creating a {size_text(self.size)} data file ...)", flush=True)
            write_random_file(path, self.size, SEED)
            self._big = path
        read_through(self._big)
        return self._big

    def drop_big_file(self) -> None:
        """Delete the shared data file to make room."""
        if self._big is not None:
            remove(self._big)
            self._big = None


def bench_hash(ctx: Context) -> list[Row]:
    """SHA-256 of the data file: ``hash_file`` vs ``openssl dgst -sha256``."""
    path = ctx.big_file()
    expected = openssl_digest("sha256", path)  # also a warm-up of the reference
    ours = Timings("evidence_catalog.hashing.hash_file")
    reference = Timings("openssl dgst -sha256")

    def our_run() -> None:
        digests, size = hash_file(os.fspath(path))
        if digests.sha256 != expected or size != ctx.size:
            raise AssertionError("hash_file disagrees with openssl")

    alternate(
        ctx.repeat, (ours, lambda: timed(our_run)), (reference, lambda: timed(lambda: openssl_digest("sha256", path)))
    )
    return [compare(f"SHA-256 of a {size_text(ctx.size)} file", ctx.size, ours, reference, HASH_TARGET)]


def _threaded_multi_hash(path: Path, algorithms: Sequence[str]) -> dict[str, str]:
    """Prototype (not library code): one read, the first digest on this thread, the others on workers.

    hashlib releases the GIL while it hashes a large block, so on a machine with two or more
    cores the digests are computed at the same time.  Used only to show what the change
    suggested for ``MultiHasher`` would gain.
    """
    hashers = [hashlib.new(a) for a in algorithms]
    buffer = bytearray(BLOCK_SIZE)
    view = memoryview(buffer)
    with ThreadPoolExecutor(max_workers=max(1, len(hashers) - 1)) as pool, open(path, "rb", buffering=0) as stream:
        while n := stream.readinto(view):
            block = view[:n]
            futures = [pool.submit(h.update, block) for h in hashers[1:]]
            hashers[0].update(block)
            for future in futures:
                future.result()
    return {a: h.hexdigest() for a, h in zip(algorithms, hashers, strict=True)}


def bench_multi(ctx: Context) -> list[Row]:
    """SHA-256 + MD5 + SHA-1 in one pass vs three ``openssl dgst`` runs one after another."""
    path = ctx.big_file()
    expected = {a: openssl_digest(a, path) for a in MULTI_ALGORITHMS}
    ours = Timings("hash_file(sha256, md5, sha1), one pass")
    reference = Timings("openssl dgst -sha256; -md5; -sha1")
    prototype = Timings("prototype: one pass, digests on 2 threads")

    def our_run() -> None:
        digests, _ = hash_file(os.fspath(path), MULTI_ALGORITHMS)
        if digests.as_dict() != expected:
            raise AssertionError("hash_file disagrees with openssl")

    def reference_run() -> None:
        for algorithm in MULTI_ALGORITHMS:
            openssl_digest(algorithm, path)

    def prototype_run() -> None:
        if _threaded_multi_hash(path, MULTI_ALGORITHMS) != expected:
            raise AssertionError("prototype disagrees with openssl")

    alternate(
        ctx.repeat,
        (ours, lambda: timed(our_run)),
        (reference, lambda: timed(reference_run)),
        (prototype, lambda: timed(prototype_run)),
    )
    row = compare(f"SHA-256+MD5+SHA-1 of a {size_text(ctx.size)} file", ctx.size, ours, reference, None)
    print(f"  context:   {prototype.describe(ctx.size)}")
    print(f"             prototype / reference: {reference.best / prototype.best:.2f}x")
    return [row]


def bench_add(ctx: Context) -> list[Row]:
    """``Catalog.add`` of the data file vs ``openssl dgst -sha256`` + ``cp`` + ``sync``."""
    path = ctx.big_file()
    expected = openssl_digest("sha256", path)
    catalog_dir = ctx.scratch / "add-catalog"
    copy = ctx.scratch / "add-copy.bin"
    ours = Timings("Catalog.add (hash + store + fsync + database)")
    reference = Timings("openssl dgst -sha256 + cp + sync")

    def our_run() -> float:
        with Catalog.init(catalog_dir, operator=OPERATOR) as catalog:
            os.sync()
            started = time.perf_counter()
            [result] = catalog.add([path])
            seconds = time.perf_counter() - started
        if result.sha256 != expected or result.size != ctx.size or not result.new_bytes:
            raise AssertionError(f"unexpected add result {result}")
        remove(catalog_dir)
        os.sync()
        return seconds

    def reference_run() -> float:
        os.sync()
        started = time.perf_counter()
        run_tool(["openssl", "dgst", "-sha256", "-r", path])
        run_tool(["cp", path, copy])
        run_tool(["sync"])
        seconds = time.perf_counter() - started
        remove(copy)
        os.sync()
        return seconds

    # The first large write of a run is slower whichever side makes it (by 1-1.7 s per GiB on
    # ext4 here): one untimed round, reference first, absorbs that.
    warm_reference, warm_ours = reference_run(), our_run()
    print(f"  warm-up round, not counted: reference {warm_reference:.2f} s, ours {warm_ours:.2f} s")
    alternate(ctx.repeat, (ours, our_run), (reference, reference_run))
    return [compare(f"add of a {size_text(ctx.size)} file", ctx.size, ours, reference, ADD_TARGET)]


def run_child(
    mode: str, *args: str, env: dict[str, str] | None = None, live: bool = False
) -> tuple[dict[str, object], float]:
    """Run ``rss_child.py MODE ARGS`` in a new process; return its JSON report and wall time.

    With *live*, the child's standard error (its progress) goes straight to this terminal."""
    started = time.perf_counter()
    if live:
        output = subprocess.run(
            [sys.executable, os.fspath(CHILD), mode, *args], check=True, stdout=subprocess.PIPE, text=True, env=env
        ).stdout
    else:
        output = run_tool([sys.executable, CHILD, mode, *args], env=env)
    seconds = time.perf_counter() - started
    report: dict[str, object] = json.loads(output)
    return report, seconds


def bench_rss(ctx: Context) -> list[Row]:
    """Peak RSS of a child process adding a large file, with baselines."""
    ctx.drop_big_file()
    path = ctx.scratch / "rss-data.bin"
    print(f"(creating a {size_text(ctx.rss_size)} data file ...)", flush=True)
    write_random_file(path, ctx.rss_size, SEED + 1)
    read_through(path)
    steps: list[tuple[str, str, tuple[str, ...]]] = [
        ("bare interpreter", "bare", ()),
        ("import evidence_catalog", "import", ()),
        ("+ Catalog.init (empty catalog)", "init", (os.fspath(ctx.scratch / "rss-cat-1"),)),
        (
            f"+ Catalog.add of the {size_text(ctx.rss_size)} file",
            "add",
            (os.fspath(ctx.scratch / "rss-cat-2"), os.fspath(path)),
        ),
    ]
    peaks: list[float] = []
    report: dict[str, object] = {}
    for label, mode, args in steps:
        os.sync()
        report, seconds = run_child(mode, *args)
        peak = int(str(report["peak_kib"])) / KIB
        peaks.append(peak)
        print(f"  {label:42s} peak RSS {peak:6.1f} MiB  ({report['source']})  wall {seconds:6.2f} s")
    if report.get("size") != ctx.rss_size or not report.get("new_bytes"):
        raise AssertionError(f"the child did not add the whole file: {report}")
    add_seconds = float(str(report["seconds"]))
    print(f"  the add itself: {add_seconds:.2f} s = {ctx.rss_size / MIB / add_seconds:.0f} MiB/s")
    total = peaks[-1]
    status = "PASS" if total < RSS_TARGET_MIB else "FAIL"
    print(
        f"  peak RSS while adding: {total:.1f} MiB in total, {total - peaks[-2]:.1f} MiB above the empty catalog, "
        f"{peaks[1] - peaks[0]:.1f} MiB of it the import   target < {RSS_TARGET_MIB:.0f} MiB   {status}"
    )
    for leftover in (path, ctx.scratch / "rss-cat-1", ctx.scratch / "rss-cat-2"):
        remove(leftover)
    return [
        Row(
            benchmark=f"Peak RSS adding a {size_text(ctx.rss_size)} file",
            ours=f"{total:.1f} MiB",
            reference=(
                f"baselines: bare Python {peaks[0]:.1f} MiB, after import {peaks[1]:.1f} MiB, "
                f"empty catalog {peaks[2]:.1f} MiB"
            ),
            ratio="-",
            target=f"< {RSS_TARGET_MIB:.0f} MiB",
            status=status,
        )
    ]


def bench_capture(ctx: Context) -> list[Row]:
    """``capture`` of one large file and of a batch of small ones vs ``curl`` (``capture_speed.py``)."""
    import capture_speed

    rows = capture_speed.measure(ctx.scratch, ctx.capture_size, capture_speed.DEFAULT_BATCH, ctx.repeat, tree=REPO)
    return [Row(**row) for row in rows]


def make_small_files(root: Path, count: int, seed: int) -> list[Path]:
    """Create *count* files of 200 B - 8 KiB with distinct content (half text, half binary)."""
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        directory = root / f"d{i // FILES_PER_DIR:04d}"
        if i % FILES_PER_DIR == 0:
            directory.mkdir(parents=True)
        size = rng.randint(200, 8 * KIB)
        header = f"benchmark item {i}\n".encode("ascii")
        if i % 2 == 0:
            body = base64.b64encode(rng.randbytes(size))[: size - len(header)]
            path = directory / f"item{i:06d}.txt"
        else:
            body = rng.randbytes(size - len(header))
            path = directory / f"item{i:06d}.bin"
        path.write_bytes(header + body)
        paths.append(path)
    return paths


_INGEST_PLATFORMS = ("Twitter", "Telegram", "Mastodon", "Bluesky", "VK")
_INGEST_FEEDS = ("Harbour Monitor", "Records Desk", "Frontline Notes", "Наблюдатель", "Revue de presse", "Ledger Watch")
_INGEST_HANDLES = ("coast_watch", "PortLog", "CityPaper", "osint_desk", "geo_müller", "радар_юг", "field_reporter")
#: A word of the generated digests that the ingest benchmark searches for (about 1 item in 8).
SEARCH_WORD = "причалы"
_INGEST_TAGS = ("EastQuay", "OSINT", "Satellite", "Hafen", "школа", "Port", "Ledger")
_INGEST_WORDS = (
    "satellite images show two new berths at the yard",
    "the gate was shut on 4 May — “maintenance”, said the operator",
    "спутниковые снимки показывают новые причалы",
    "les registres du port ne concordent pas avec les photos",
    "trucks queue at the checkpoint from early morning",
    "the ledger lists 14 ships, the pictures show 17",
    "Straße gesperrt, Lkw warten seit dem Morgen",
)
_INGEST_CARDS = (
    ("YouTube", "‘Read the ledger twice’: the East Quay records | City Paper Film"),
    ("BBC News", "What the satellite pictures of the port show"),
    ("Радио Свобода", "Что показывают снимки порта"),
    ("Le Monde", "Au port, les registres et les images divergent"),
)
ITEMS_PER_FEED = 100


def write_digest(path: Path, items: int, seed: int) -> None:
    """Write a feed-reader digest of *items* distinct items to *path* (reproducible from *seed*).

    Feeds of 100 items; items of 1-3 lines, every fifth or so a ``RT @handle:`` repost, with
    #hashtags, @mentions and non-ASCII text, each printed twice (title, then description) as the
    format has it; every 7th item is followed by a link card (site name, title, description, the
    description cut short with "…" every other time).
    """
    rng = random.Random(seed)
    lines: list[str] = []
    for i in range(items):
        if i % ITEMS_PER_FEED == 0:
            feed = _INGEST_FEEDS[(i // ITEMS_PER_FEED) % len(_INGEST_FEEDS)]
            platform = _INGEST_PLATFORMS[(i // ITEMS_PER_FEED) % len(_INGEST_PLATFORMS)]
            lines.append(f"{feed} {i // ITEMS_PER_FEED:05d} ({platform})")
        first = f"Post {i}: {rng.choice(_INGEST_WORDS)} #{rng.choice(_INGEST_TAGS)}."
        if rng.random() < 0.2:
            first = f"RT @{rng.choice(_INGEST_HANDLES)}: {first}"
        text = [first]
        for n in range(1, rng.randint(1, 3)):
            handle, words, tag = rng.choice(_INGEST_HANDLES), rng.choice(_INGEST_WORDS), rng.choice(_INGEST_TAGS)
            text.append(f"{n}. As @{handle} wrote, {words} #{tag}.")
        lines += text + text
        if i % 7 == 6:
            site, title = _INGEST_CARDS[(i // 7) % len(_INGEST_CARDS)]
            description = f"Reporters compared ledgers with satellite pictures of the yard, part {i}"
            lines += [site, title, description + ("…" if (i // 7) % 2 else ".")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def bench_ingest(ctx: Context) -> list[Row]:
    """``Catalog.ingest`` of a feed-reader digest: items/s, peak RSS and linearity (issue 4)."""
    sizes = sorted({max(1, round(ctx.ingest_items * f)) for f in INGEST_FRACTIONS})
    digests = {}
    for n in sizes:
        path = ctx.scratch / f"digest-{n}.txt"
        print(f"(creating a digest of {n} items ...)", flush=True)
        write_digest(path, n, SEED + 3)
        read_through(path)
        digests[n] = path
    timings = {n: Timings(f"{n} items") for n in sizes}
    peaks: dict[int, list[float]] = {n: [] for n in sizes}

    searches: list[tuple[float, int, float]] = []

    def ingest_run(n: int) -> float:
        catalog_dir = ctx.scratch / "ingest-catalog"
        os.sync()
        search = ("ingest-search", SEARCH_WORD) if n == sizes[-1] else ("ingest",)
        report, _ = run_child(search[0], os.fspath(catalog_dir), os.fspath(digests[n]), *search[1:])
        if report.get("items") != n or report.get("reports_added") != n or report.get("warnings") != 0:
            raise AssertionError(f"the child did not ingest {n} items as new reports without warnings: {report}")
        peaks[n].append(int(str(report["peak_kib"])) / KIB)
        if "search_seconds" in report:
            searches.append(
                (
                    float(str(report["search_seconds"])),
                    int(str(report["search_hits"])),
                    float(str(report["search100_seconds"])),
                )
            )
        remove(catalog_dir)
        return float(str(report["seconds"]))

    alternate(ctx.repeat, *((timings[n], lambda n=n: ingest_run(n)) for n in sizes))
    per_thousand = {n: timings[n].best / n * 1000 for n in sizes}
    for n in sizes:
        runs = " ".join(f"{s:.2f}" for s in timings[n].seconds)
        print(
            f"  {n:8d} items: {n / timings[n].best:8.0f} items/s  best {timings[n].best:7.2f} s"
            f"  {per_thousand[n]:.3f} s per 1,000 items  peak RSS {max(peaks[n]):6.1f} MiB  (runs: {runs})"
        )
    largest = sizes[-1]
    rate = largest / timings[largest].best
    peak = max(peaks[largest])
    spread = max(per_thousand.values()) / min(per_thousand.values())
    growth = per_thousand[largest] / per_thousand[sizes[0]]
    linear = "PASS" if spread < INGEST_LINEAR_LIMIT else "INFO"
    print(
        f"  per-item cost, largest / smallest: {spread:.2f}x (at {largest} / at {sizes[0]} items: {growth:.2f}x)"
        f"   PASS below {INGEST_LINEAR_LIMIT}x   {linear}"
    )
    print("  no external reference tool: the issue asks only for items/s, peak RSS and linearity")
    costs = ", ".join(f"{n}: {per_thousand[n]:.3f}" for n in sizes)
    search_seconds, hits, first_hundred = min(searches)
    grep = Timings("grep")
    grep_command = ["grep", "-c", "-i", "-w", SEARCH_WORD, os.fspath(digests[largest])]
    for _ in range(5):
        started = time.perf_counter()
        lines = int(run_tool(grep_command).strip())
        grep.seconds.append(time.perf_counter() - started)
    print(
        f"  search {SEARCH_WORD!r} in {largest} reports: {search_seconds * 1000:.1f} ms, {hits} hits"
        f" (first 100: {first_hundred * 1000:.1f} ms);"
        f"  grep -c -i -w on the digest: {grep.best * 1000:.1f} ms, {lines} lines"
    )
    return [
        Row(
            benchmark=f"ingest of a {largest}-item digest",
            ours=f"{rate:.0f} items/s ({timings[largest].best:.1f} s)",
            reference="none (no external tool)",
            ratio="-",
            target="none (info)",
            status="INFO",
        ),
        info_row(f"Peak RSS ingesting a {largest}-item digest", f"{peak:.1f} MiB"),
        Row(
            benchmark="ingest: time linear in items",
            ours=f"s per 1,000 items: {costs}",
            reference="-",
            ratio=f"{spread:.2f}x largest/smallest per-item cost",
            target=f"< {INGEST_LINEAR_LIMIT}x for PASS",
            status=linear,
        ),
        Row(
            benchmark=f"search for a word in {largest} reports (all hits)",
            ours=f"{search_seconds * 1000:.1f} ms ({hits} reports)",
            reference=f"grep -c -i -w on the digest: {grep.best * 1000:.1f} ms ({lines} lines)",
            ratio=f"{grep.best / search_seconds:.2f}x grep's speed",
            target="none (info)",
            status="INFO",
        ),
        Row(
            benchmark=f"search for a word in {largest} reports (first 100, as the CLI shows)",
            ours=f"{first_hundred * 1000:.1f} ms",
            reference=f"grep -c -i -w on the digest: {grep.best * 1000:.1f} ms",
            ratio=f"{grep.best / first_hundred:.2f}x grep's speed",
            target="none (info)",
            status="INFO",
        ),
    ]


def bench_ingest_speed(ctx: Context) -> list[Row]:
    """Ingest of every format: linear in the items, vs the bare parser, command and in-process (issue 22)."""
    import ingest_speed  # benchmarks/ingest_speed.py

    return [Row(**row) for row in ingest_speed.bench(ctx.scratch, items=ctx.ingest_items, repeat=ctx.repeat)]


BAG_LARGE_FILES = 40
BAG_SMALL_FILES = 2000


def bench_bagit(ctx: Context) -> list[Row]:
    """BagIt export and re-validation of a large catalog vs bagit-python (issue 6)."""
    bagit_py = shutil.which("bagit.py") or os.fspath(Path(sys.executable).with_name("bagit.py"))
    source = ctx.scratch / "bag-source"
    source.mkdir()
    small = make_small_files(source / "small", BAG_SMALL_FILES, SEED + 4)
    small_total = sum(p.stat().st_size for p in small)
    large_size = max(1, (ctx.bag_size - small_total) // BAG_LARGE_FILES)
    print(f"(creating {BAG_LARGE_FILES} files of {size_text(large_size)} and {len(small)} small files ...)", flush=True)
    (source / "large").mkdir()
    for index in range(BAG_LARGE_FILES):
        write_random_file(source / "large" / f"video-{index:02d}.mp4", large_size, SEED + 100 + index)
    total = small_total + large_size * BAG_LARGE_FILES
    catalog_dir = ctx.scratch / "bag-catalog"
    print("(adding them to a catalog ...)", flush=True)
    with Catalog.init(catalog_dir, operator="Benchmark <bench@example.org>") as catalog:
        catalog.add([source / "large", source / "small"], recursive=True)
    cores = str(os.cpu_count() or 1)

    ours_export, theirs_export = Timings("export"), Timings("cp + bagit.py")
    ours_check, theirs_check, sums = Timings("check_bag"), Timings("bagit.py --validate"), Timings("sha256sum -c")
    peaks: dict[str, list[float]] = {"export": [], "check": []}
    bag = ctx.scratch / "bag-ours"

    def export_run() -> float:
        remove(bag)
        os.sync()
        report, _ = run_child("export-bag", os.fspath(catalog_dir), os.fspath(bag))
        peaks["export"].append(int(str(report["peak_kib"])) / KIB)
        return float(str(report["seconds"]))

    def bagit_make_run() -> float:
        target = ctx.scratch / "bag-theirs"
        remove(target)
        os.sync()
        started = time.perf_counter()
        run_tool(["cp", "-r", os.fspath(source), os.fspath(target)])
        run_tool([bagit_py, "--quiet", "--processes", cores, "--sha256", os.fspath(target)])
        os.sync()
        seconds = time.perf_counter() - started
        remove(target)
        return seconds

    alternate(ctx.repeat, (ours_export, export_run), (theirs_export, bagit_make_run))
    if not bag.exists():
        export_run()
    read_through_tree(bag)

    def check_run() -> float:
        report, _ = run_child("check-bag", os.fspath(bag))
        peaks["check"].append(int(str(report["peak_kib"])) / KIB)
        return float(str(report["seconds"]))

    def bagit_validate_run() -> float:
        return timed(lambda: run_tool([bagit_py, "--quiet", "--validate", "--processes", cores, os.fspath(bag)]))

    def sha256sum_run() -> float:
        return timed(
            lambda: subprocess.run(
                ["sha256sum", "--quiet", "-c", "manifest-sha256.txt"], cwd=bag, check=True, stdout=subprocess.DEVNULL
            )
        )

    alternate(ctx.repeat, (ours_check, check_run), (theirs_check, bagit_validate_run), (sums, sha256sum_run))
    rows = [
        compare(f"BagIt export of a {size_text(total)} catalog", total, ours_export, theirs_export, None),
        info_row(f"Peak RSS exporting a {size_text(total)} bag", f"{max(peaks['export']):.1f} MiB"),
        compare(
            f"re-validate the {size_text(total)} bag (every path and digest)", total, ours_check, theirs_check, None
        ),
        info_row(
            f"Peak RSS validating the {size_text(total)} bag",
            f"{max(peaks['check']):.1f} MiB",
            f"sha256sum -c of the manifest: {sums.throughput(total):.0f} MiB/s",
        ),
    ]
    remove(bag)
    remove(catalog_dir)
    remove(source)
    return rows


def read_through_tree(root: Path) -> None:
    """Read every file under *root* once (into the page cache)."""
    for path in root.rglob("*"):
        if path.is_file():
            read_through(path)


def bench_log(ctx: Context) -> list[Row]:
    """The custody log as a Merkle tree: appending, proofs and full verification (issue 7)."""
    catalog_dir = ctx.scratch / "log-catalog"
    os.sync()
    report, _ = run_child("log", os.fspath(catalog_dir), str(ctx.log_events))
    remove(catalog_dir)
    events = int(str(report["events"]))
    seconds = float(str(report["seconds"]))
    verify_seconds = float(str(report["verify_seconds"]))
    proofs = report["proofs"]
    assert isinstance(proofs, dict)
    if report.get("verify_ok") is not True:
        raise AssertionError(f"the benchmark's log did not verify: {report.get('verify_findings')}")
    print(f"  append {events} events: {events / seconds:.0f} events/s ({seconds:.1f} s, transactions of 2,000)")
    for size, figures in proofs.items():
        print(
            f"  at {int(size):>9} events: inclusion proof {figures['inclusion_ms']:.2f} ms, "
            f"consistency proof {figures['consistency_ms']:.2f} ms, path of {figures['path_length']} hashes"
        )
    print(
        f"  verify: {events / verify_seconds:.0f} events/s ({verify_seconds:.1f} s), peak RSS {report['peak_kib']} KiB"
    )
    largest = max(proofs, key=int)
    smallest = min(proofs, key=int)
    return [
        info_row(f"append {events} custody events", f"{events / seconds:.0f} events/s ({seconds:.1f} s)"),
        info_row(
            f"inclusion / consistency proof at {int(largest)} events",
            f"{proofs[largest]['inclusion_ms']:.2f} / {proofs[largest]['consistency_ms']:.2f} ms",
            f"at {int(smallest)} events: {proofs[smallest]['inclusion_ms']:.2f} / "
            f"{proofs[smallest]['consistency_ms']:.2f} ms",
        ),
        info_row(
            f"verify {events} events (chain, Merkle tree, checkpoints)", f"{events / verify_seconds:.0f} events/s"
        ),
        info_row(
            f"peak RSS of appending and verifying {events} events", f"{int(str(report['peak_kib'])) / KIB:.1f} MiB"
        ),
    ]


# -- scale: a million records ----------------------------------------------------------------------


def start_postgres(fsync: bool) -> tuple[Any, str, str]:
    """A throw-away PostgreSQL server (``tests/pg_server.py``), a short name ("PostgreSQL with
    fsync on") and a description of its settings, both as the server reports them.

    The test suite's server runs with fsync off; with *fsync* it is restarted with PostgreSQL's
    durable defaults (``fsync``, ``synchronous_commit`` and ``full_page_writes`` on), its other
    options kept.  An existing server (``$EVIDENCE_CATALOG_TEST_POSTGRESQL``) is used as it is.
    """
    if os.fspath(REPO) not in sys.path:
        sys.path.insert(0, os.fspath(REPO))
    from tests.pg_server import PostgresServer

    server = PostgresServer(in_memory=False).start()  # on the disk: a durable server's figures
    try:
        if fsync and server.data_dir is not None:
            _restart_durable(server)
        return (server, *_postgres_settings(server))
    except BaseException:
        server.stop()
        raise


def _restart_durable(server: Any) -> None:
    """Restart a server ``PostgresServer`` started, without its ``-F`` (fsync off),
    ``synchronous_commit=off`` and ``full_page_writes=off``: same port, socket folder and log."""
    data_dir = Path(server.data_dir)
    root = data_dir.parent
    port = urllib.parse.urlsplit(str(server.url_base)).port
    run_as = ["runuser", "-u", str(server.process_user), "--"] if server.process_user else []
    pg_ctl = Path(server.bindir) / "pg_ctl"
    run_tool([*run_as, pg_ctl, "-D", data_dir, "-m", "fast", "-w", "stop"])
    options = f"-p {port} -h 127.0.0.1 -k {root} -c max_connections=300 -c shared_buffers=128MB"
    run_tool([*run_as, pg_ctl, "-D", data_dir, "-l", root / "server.log", "-o", options, "-w", "-t", "60", "start"])


def _postgres_settings(server: Any) -> tuple[str, str]:
    """A short name and the server's version and durability settings, as it reports them."""
    import psycopg

    admin = str(server.url_base).replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    values: dict[str, str] = {}
    with psycopg.connect(admin, autocommit=True) as connection:
        for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers"):
            row = connection.execute(f"SHOW {name}").fetchone()
            values[name] = "?" if row is None else str(row[0])
    return (
        f"PostgreSQL with fsync {values['fsync']}",
        f"PostgreSQL {values['server_version'].split()[0]}, local server: fsync {values['fsync']},"
        f" synchronous_commit {values['synchronous_commit']}, full_page_writes {values['full_page_writes']},"
        f" shared_buffers {values['shared_buffers']}",
    )


def mib_text(size: int) -> str:
    """A byte count in MiB, or GiB from 10 GiB up, rounded."""
    return f"{size / GIB:.1f} GiB" if size >= 10 * GIB else f"{size / MIB:.1f} MiB"


def latency_text(figures: dict[str, float]) -> str:
    """p50 / p95 / p99 / max of a latency report, in milliseconds."""
    return (
        f"p50 {figures['p50_ms']:.3f} ms, p95 {figures['p95_ms']:.3f} ms, p99 {figures['p99_ms']:.3f} ms,"
        f" max {figures['max_ms']:.2f} ms"
    )


def bench_scale(ctx: Context) -> list[Row]:
    """Adding a million small files on SQLite and PostgreSQL: records/s, linearity, lookup latency."""
    items = min(SCALE_DIGEST_ITEMS, max(100, ctx.scale_records // 100))
    digest = ctx.scratch / "scale-digest.txt"
    write_digest(digest, items, SEED + 5)
    rows: list[Row] = []
    for backend in ctx.scale_backends:
        if backend == "sqlite":
            settings = f"SQLite {sqlite3.sqlite_version}, in the catalog folder: WAL, synchronous = FULL"
            rows += _scale_backend(ctx, "SQLite", settings, "-", digest)
            continue
        print("(starting a throw-away PostgreSQL server ...)", flush=True)
        try:
            server, label, settings = start_postgres(ctx.scale_pg_fsync)
        except (ImportError, RuntimeError, OSError, KeyError, subprocess.CalledProcessError) as exc:
            print(f"  PostgreSQL skipped: the server could not be started ({exc})")
            rows.append(Row("scale on PostgreSQL", "-", "-", "-", "-", "SKIP"))
            continue
        try:
            url = server.new_database()
            try:
                rows += _scale_backend(ctx, label, settings, url, digest)
            finally:
                server.drop_database(url)
        finally:
            server.stop()
    remove(digest)
    return rows


def _scale_backend(ctx: Context, label: str, settings: str, database: str, digest: Path) -> list[Row]:
    """``bench_scale`` on one database (``-``: SQLite in the catalog folder)."""
    count = ctx.scale_records
    catalog_dir = ctx.scratch / "scale-catalog"
    # The files to add are made in memory when the machine has a tmpfs: making and deleting a
    # million files on the catalog's disk is untimed but took as long as adding them.
    shm = Path("/dev/shm")
    in_memory = shm.is_dir() and os.access(shm, os.W_OK) and file_system(shm).startswith("tmpfs ")
    files_parent = Path(tempfile.mkdtemp(prefix="scale-", dir=shm)) if in_memory else ctx.scratch
    where = "in memory (tmpfs)" if in_memory else "on the work dir's disk"
    print(f"  {settings}\n  adding {count} small files (made {where}, 10,000 at a time) ...", flush=True)
    os.sync()
    try:
        report, wall = run_child(
            "scale",
            os.fspath(catalog_dir),
            os.fspath(files_parent / "scale-files"),
            str(count),
            database,
            os.fspath(digest),
            live=True,
        )
    finally:
        if in_memory:
            remove(files_parent)
    on_disk = int(run_tool(["du", "-sk", catalog_dir]).split()[0]) * KIB
    started = time.perf_counter()
    remove(catalog_dir)
    removed = time.perf_counter() - started
    assert isinstance(report["chunk_seconds"], list) and isinstance(report["chunk_records"], list)
    chunk_seconds = [float(s) for s in report["chunk_seconds"]]
    chunk_records = [int(n) for n in report["chunk_records"]]
    if sum(chunk_records) != count:
        raise AssertionError(f"the child added {sum(chunk_records)} files, not {count}")
    slice_seconds = [0.0] * SCALE_SLICES
    slice_records = [0] * SCALE_SLICES
    for index, (seconds, records) in enumerate(zip(chunk_seconds, chunk_records, strict=True)):
        tenth = index * SCALE_SLICES // len(chunk_seconds)
        slice_seconds[tenth] += seconds
        slice_records[tenth] += records
    rates = [n / s for n, s in zip(slice_records, slice_seconds, strict=True) if n]
    total_seconds = sum(chunk_seconds)
    rate = count / total_seconds
    done = 0
    for n, seconds in zip(slice_records, slice_seconds, strict=True):
        if n:
            print(f"  records {done + 1:>8}-{done + n:<8} {n / seconds:8.0f} records/s  {seconds:8.1f} s")
        done += n
    spread = max(rates) / min(rates)
    last_first = rates[-1] / rates[0]
    linear = "PASS" if spread < INGEST_LINEAR_LIMIT else "INFO"
    add_peak = int(str(report["add_peak_kib"])) / KIB
    peak = int(str(report["peak_kib"])) / KIB
    print(
        f"  in all: {rate:.0f} records/s ({total_seconds:.1f} s in Catalog.add, transactions of {report['batch']}"
        f" files; the child took {wall:.0f} s with making the files and the lookups)"
    )
    print(
        f"  rate of the fastest tenth / the slowest: {spread:.2f}x; last tenth / first: {last_first:.2f}x"
        f"   PASS below {INGEST_LINEAR_LIMIT}x   {linear}"
    )
    print(f"  peak RSS: {add_peak:.1f} MiB after adding, {peak:.1f} MiB at the end")
    database_bytes = int(str(report["database_bytes"]))
    records = int(str(report["records"]))
    print(
        f"  on disk: catalog folder {mib_text(on_disk)} (blobs, keys{', database' if database == '-' else ''}),"
        f" database {mib_text(database_bytes)}, at {records} records; removing the folder took {removed:.0f} s"
    )
    rows = [
        info_row(
            f"add {count} small files, {label}",
            f"{rate:.0f} records/s ({total_seconds:.0f} s)",
            f"none (no external tool); {settings}; Catalog.add of 10,000 files at a time, transactions of"
            f" {report['batch']}",
        ),
        Row(
            benchmark=f"add {count} small files, {label}: linear in records",
            ours="records/s per tenth: " + " ".join(f"{r:.0f}" for r in rates),
            reference="-",
            ratio=f"{spread:.2f}x fastest/slowest tenth (last/first {last_first:.2f}x)",
            target=f"< {INGEST_LINEAR_LIMIT}x for PASS",
            status=linear,
        ),
        info_row(
            f"Peak RSS adding {count} small files, {label}",
            f"{add_peak:.1f} MiB",
            f"at the end, after the lookups: {peak:.1f} MiB",
        ),
    ]
    settle = report["settle"]
    assert isinstance(settle, dict)
    passes = (
        ("lookups_after_adding", "right after adding"),
        ("lookups", "settled"),
        ("lookups_again", "settled, the same records again"),
    )
    wording = {
        "has_record": ("has_record(id)", True),
        "records_with_artifact": ("records_with_artifact(sha256)", True),
        "record": ("record(id), the whole record", False),
        "record_ids": ("record_ids(after=id, limit=50), a page of ids", False),
        "read_page": ("a page of 50 records as list reads it (record_ids + read_page)", False),
    }
    for key, when in passes:
        lookups = report[key]
        assert isinstance(lookups, dict)
        if key == "lookups":
            workers = int(settle["autovacuum_workers"])
            print(
                f"  settling took {float(settle['seconds']):.0f} s"
                + (f" (up to {workers} autovacuum workers ran)" if workers else "")
                + (
                    f"; then {float(settle['dirty_kib']) / KIB:.0f} MiB left to write back"
                    if "dirty_kib" in settle
                    else ""
                )
            )
        machine = lookups.get("machine") or {}
        print(
            f"  lookups, {when}:"
            + (
                f" (all CPUs meanwhile: {machine['busy']:.0%} busy, {machine['iowait']:.0%} waiting for the disk,"
                f" {machine['steal']:.0%} taken by the host)"
                if machine
                else ""
            )
        )
        for name in (name for name in wording if name in lookups):  # the ones the child timed
            what, targeted = wording[name]
            figures = lookups[name]
            print(f"    {what:62s} {latency_text(figures)}  ({figures['calls']} calls)")
            benchmark = f"{what} at {count} records, {label}, {when}"
            if targeted:
                status = "PASS" if figures["p99_ms"] < LOOKUP_TARGET_MS else "FAIL"
                rows.append(Row(benchmark, latency_text(figures), "-", "-", f"p99 < {LOOKUP_TARGET_MS:g} ms", status))
            else:
                rows.append(info_row(benchmark, latency_text(figures)))
    if "search" in report:
        figures = report["search"]
        assert isinstance(figures, dict)
        reports, hits = int(str(report["reports"])), int(str(report["search_hits"]))
        ingest_seconds = float(str(report["ingest_seconds"]))
        print(
            f"  {'search(word, limit=50)':64s} {latency_text(figures)}  ({figures['calls']} calls;"
            f" {hits} of {reports} reports hold the word; their ingest took {ingest_seconds:.1f} s)"
        )
        rows.append(
            info_row(
                f"search(word, limit=50) at {count} records + {reports} reports, {label}",
                latency_text(figures),
                f"{hits} reports hold the word",
            )
        )
    rows.append(
        info_row(
            f"catalog size at {records} records, {label}",
            f"database {mib_text(database_bytes)}, catalog folder {mib_text(on_disk)}",
        )
    )
    return rows


# -- pverify: verify of large blobs on every core ------------------------------------------------------

DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def write_keystream_file(path: Path, size: int, seed: int) -> None:
    """Write *size* pseudo-random bytes to *path*: the AES-256-CTR keystream of a key made from
    *seed* (incompressible and reproducible like :func:`write_random_file`, some 20x faster)."""
    key = hashlib.sha256(f"benchmark data {seed}".encode("ascii")).digest()
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    zeros = bytes(GENERATE_CHUNK)
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            n = min(GENERATE_CHUNK, remaining)
            out.write(encryptor.update(zeros[:n]))
            remaining -= n


def drop_caches() -> bool:
    """Write dirty data back, then empty the page cache (root only); False when it cannot."""
    os.sync()
    try:
        with open(DROP_CACHES, "w", encoding="ascii") as control:
            control.write("3\n")
    except OSError:
        return False
    return True


def meminfo_bytes(key: str) -> int:
    """A ``/proc/meminfo`` figure in bytes (0 when unknown)."""
    value = _proc_field("/proc/meminfo", key)
    return int(value.split()[0]) * KIB if value else 0


def bench_pverify(ctx: Context) -> list[Row]:
    """``Catalog.verify`` of large blobs on every core vs ``sha256sum`` and ``xargs -P`` of it."""
    count = max(1, -(-ctx.verify_size // VERIFY_FILE_SIZE))
    file_size = ctx.verify_size // count
    total = file_size * count
    catalog_dir = ctx.scratch / "pverify-catalog"
    source = ctx.scratch / "pverify-source.bin"
    print(f"(adding {count} files of {size_text(file_size)} to a catalog ...)", flush=True)
    expected: dict[str, str] = {}
    with Catalog.init(catalog_dir, operator=OPERATOR) as catalog:
        for index in range(count):
            write_keystream_file(source, file_size, SEED + 300 + index)
            [result] = catalog.add([source])
            remove(source)
            if not result.new_bytes:
                raise AssertionError("two generated files had the same content")
            expected[os.fspath(catalog.artifact_path(result.sha256))] = result.sha256
    paths = list(expected)
    digests = sorted(expected.values())
    cores = int(run_tool(["nproc"]).strip())
    file_list = "".join(p + "\0" for p in paths)
    xargs = ["xargs", "-0", "-P", str(cores), "-n", "1"]
    openssl = ["openssl", "dgst", "-sha256", "-r"]
    #: The reference tools on the same files: label, command line, standard input.
    tools: dict[str, tuple[str, list[str], str | None]] = {
        "sha256sum": ("sha256sum, one process", ["sha256sum", *paths], None),
        "xargs": (f"xargs -0 -P {cores} -n 1 sha256sum", [*xargs, "sha256sum"], file_list),
        "openssl": ("openssl dgst -sha256, one process", [*openssl, *paths], None),
        "xargs-openssl": (f"xargs -0 -P {cores} -n 1 openssl dgst -sha256", [*xargs, *openssl], file_list),
    }
    busy: dict[str, list[float]] = {key: [] for key in ("ours", *tools)}
    peaks: list[float] = []
    walls: list[float] = []
    workers: set[str] = set()

    def ours_run() -> float:
        report, wall = run_child("verify", os.fspath(catalog_dir))
        if (
            report.get("ok") is not True
            or report.get("bytes_checked") != total
            or report.get("artifacts_checked") != count
        ):
            raise AssertionError(f"verify did not check every blob cleanly: {report}")
        seconds = float(str(report["seconds"]))
        busy["ours"].append(float(str(report["cpu_seconds"])) / seconds)
        peaks.append(int(str(report["peak_kib"])) / KIB)
        walls.append(wall)
        workers.add(str(report["cpu_count"]))
        return seconds

    def tool_run(key: str) -> float:
        _, argv, stdin = tools[key]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        output = subprocess.run(argv, input=stdin, check=True, capture_output=True, text=True).stdout
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        busy[key].append(cpu / seconds)
        if sorted(line.split()[0] for line in output.splitlines()) != digests:
            raise AssertionError(f"{' '.join(argv[:4])} ... disagrees with the catalog's digests")
        return seconds

    def read_all() -> None:
        for path in paths:
            read_through(Path(path))

    cached_before = meminfo_bytes("Cached")
    cold = drop_caches()
    memory = meminfo_bytes("MemTotal")
    if cold:
        condition = "cold cache"
        print(
            f"  the page cache is dropped before every run (sync; echo 3 > {DROP_CACHES}): the first drop took"
            f" the cache from {mib_text(cached_before)} to {mib_text(meminfo_bytes('Cached'))}"
        )
    else:
        condition = "page cache not dropped"
        print(
            f"  the page cache cannot be dropped here (root and a writable {DROP_CACHES} needed): the runs"
            f" alternate; {size_text(total)} of blobs, {mib_text(memory)} of memory, so "
            + ("some of the data may be in the cache" if total < memory else "the data cannot all be cached")
        )

    def side(timings: Timings, run: Callable[[], float], drop: bool) -> tuple[Timings, Callable[[], float]]:
        def wrapped() -> float:
            if drop:
                drop_caches()
            return run()

        return timings, wrapped

    def timed_sides(drop: bool) -> tuple[Timings, dict[str, Timings]]:
        """Time ours and every tool, interleaved; with *drop*, each run from a cold cache."""
        ours = Timings(f"Catalog.verify ({count} blobs, one thread per CPU)")
        references = {key: Timings(label) for key, (label, _, _) in tools.items()}
        sides = [side(ours, ours_run, drop)]
        sides += [side(references[key], functools.partial(tool_run, key), drop) for key in tools]
        if drop or not cold:
            references["read"] = Timings("read only, one thread, no hashing")
            sides.append(side(references["read"], lambda: timed(read_all), drop))
        for figures in busy.values():
            figures.clear()
        alternate(ctx.repeat, *sides)
        return ours, references

    def comparisons(title: str, ours: Timings, references: dict[str, Timings], target: float | None) -> list[Row]:
        rows = [compare(title, total, ours, references["sha256sum"], target)]
        for key, wording in (("xargs", "xargs -P"), ("openssl", "openssl"), ("xargs-openssl", "xargs -P openssl")):
            rows.append(compare(f"{title}, vs {wording}", total, ours, references[key], None))
        print(
            "  CPUs busy (CPU time / wall), the highest of the runs: "
            + ", ".join(f"{key} {max(busy[key]):.2f}" for key in busy)
            + f" (of {cores})"
        )
        return rows

    ours, references = timed_sides(cold)
    title = f"verify of {size_text(total)} ({count} blobs), {condition}"
    rows = comparisons(title, ours, references, VERIFY_TARGET)
    reading = references["read"]
    print(f"  context:   {reading.describe(total)}")
    print(
        f"  verify's workers: os.cpu_count() = {', '.join(sorted(workers))}; the verify child process, whole"
        f" (interpreter + import + open + verify): best {min(walls):.2f} s; peak RSS {max(peaks):.1f} MiB"
    )
    rows += [
        info_row(
            f"read the same {size_text(total)} ({condition}, one thread, no hashing)",
            f"{reading.throughput(total):.0f} MiB/s ({reading.best:.2f} s)",
            "-",
            f"verify at {reading.best / ours.best:.2f}x of it",
        ),
        info_row(
            f"verify of {size_text(total)}: CPUs busy (CPU time / wall), peak RSS",
            f"{max(busy['ours']):.2f} of {cores} CPUs, peak RSS {max(peaks):.1f} MiB",
            f"sha256sum {max(busy['sha256sum']):.2f}; xargs -P {cores} sha256sum {max(busy['xargs']):.2f}",
        ),
    ]
    if cold and total <= meminfo_bytes("MemAvailable") // 2:
        print("  the same with the files in the page cache (CPU-bound):")
        read_all()
        ours, references = timed_sides(False)
        rows += comparisons(f"verify of {size_text(total)} ({count} blobs), page cache", ours, references, None)
    elif cold:
        print(f"  not timed with the files in the page cache: {size_text(total)} is over half the available memory")
    remove(catalog_dir)
    return rows


def bench_search(ctx: Context) -> list[Row]:
    """The first page of search hits over 100,000 reports on SQLite and PostgreSQL (see search_speed.py)."""
    import search_speed

    rows = search_speed.bench(ctx.scratch, ctx.search_reports, 100, lambda: start_postgres(False)[0])
    return [Row(**row) for row in rows]


BENCH_FUNCTIONS: dict[str, tuple[Callable[[Context], list[Row]], tuple[str, ...]]] = {
    "hash": (bench_hash, ("openssl",)),
    "multi": (bench_multi, ("openssl",)),
    "add": (bench_add, ("openssl", "cp", "sync")),
    "capture": (bench_capture, ("curl", "sha256sum", "sync")),
    "rss": (bench_rss, ()),
    "small": (functools.partial(bench_small_files, row=Row), ("cp", "sha256sum", "sync", "git")),
    "ingest": (bench_ingest, ("grep",)),
    "ingest-speed": (bench_ingest_speed, ()),
    "bagit": (bench_bagit, ("cp", "sha256sum", "sync")),
    "log": (bench_log, ()),
    "scale": (bench_scale, ("du", "sync")),
    "pverify": (bench_pverify, ("sha256sum", "openssl", "xargs", "nproc", "sync")),
    "verify": (lambda ctx: [Row(*line) for line in verify_speed.bench_from_run(ctx)], verify_speed.TOOLS),
    "search": (bench_search, ()),
    "bagspeed": (bag_speed.bench, ("cp", "sha256sum", "sync")),  # benchmarks/bag_speed.py
}


def bench_startup(ctx: Context) -> list[Row]:
    """Start-up of the command (--version, --help, list, show, verify) vs python -c pass: benchmarks/startup.py."""
    import startup  # benchmarks/startup.py, beside this file

    return startup.bench(ctx.scratch, ctx.repeat, Row)


BENCHMARKS += ("startup",)
BENCH_FUNCTIONS["startup"] = (bench_startup, ())
BENCHMARKS += ("media",)  # benchmarks/media_speed.py (issue 23)
BENCH_FUNCTIONS["media"] = (lambda ctx: __import__("media_speed").bench(ctx.scratch, 20, ctx.repeat, Row), ("ffprobe",))
BENCHMARKS += ("perceptual",)  # benchmarks/perceptual.py (issue 23): PDQ of photos and of a 720p minute
BENCH_FUNCTIONS["perceptual"] = (
    lambda ctx: __import__("perceptual").bench(ctx.scratch, 10, 60.0, (1280, 720), ctx.repeat, Row),
    ("ffmpeg",),
)
BENCHMARKS += ("similar",)  # benchmarks/similar.py (issue 23): 10k, 100k and 1M stored hashes


def bench_similar(ctx: Context) -> list[Row]:
    """``similar`` over 10,000 to 1,000,000 stored perceptual hashes on SQLite and PostgreSQL,
    numpy beside faiss (see similar.py)."""
    import similar  # benchmarks/similar.py, beside this file

    rows = similar.bench(ctx.scratch, similar.DEFAULT_SIZES, similar.DEFAULT_CALLS, lambda: start_postgres(False)[0])
    return [Row(**row) for row in rows]


BENCH_FUNCTIONS["similar"] = (bench_similar, ())
BENCHMARKS += ("viewer",)  # benchmarks/viewer.py (issue 25): the web viewer at 10k and 100k records, a 1 GiB video


def bench_viewer(ctx: Context) -> list[Row]:
    """The viewer's pages and a 1 GiB video's bytes (see viewer.py; catalogs kept in build/)."""
    import viewer  # benchmarks/viewer.py, beside this file

    return [Row(**row) for row in viewer.rows(viewer.bench(viewer.DEFAULT_SIZES, viewer.DEFAULT_ROUNDS, ctx.repeat))]


BENCH_FUNCTIONS["viewer"] = (bench_viewer, ("du",))


# -- entry point -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Benchmark evidence_catalog against openssl/cp/sync (issue point 12).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"benchmarks: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--size-gib", type=float, default=1.0, help="data file for hash/multi/add (default 1)")
    parser.add_argument(
        "--rss-size-gib", type=float, default=None, help="data file for the RSS benchmark (default 2 x --size-gib)"
    )
    parser.add_argument("--small-files", type=int, default=10_000, metavar="N", help="small files (default 10000)")
    parser.add_argument(
        "--capture-size-mib",
        type=float,
        default=float(DEFAULT_CAPTURE_MIB),
        metavar="MIB",
        help=f"file served for the capture benchmark, in MiB (default {DEFAULT_CAPTURE_MIB})",
    )
    parser.add_argument(
        "--ingest-items",
        type=int,
        default=DEFAULT_INGEST_ITEMS,
        metavar="N",
        help=f"items in the largest digest for ingest; also timed at 10%% and 30%% (default {DEFAULT_INGEST_ITEMS})",
    )
    parser.add_argument(
        "--log-events", type=int, default=1_000_000, metavar="N", help="custody events for log (default 1000000)"
    )
    parser.add_argument(
        "--bag-gib", type=float, default=5.0, help="catalog exported and re-validated by bagit (default 5)"
    )
    parser.add_argument(
        "--scale-records",
        type=int,
        default=DEFAULT_SCALE_RECORDS,
        metavar="N",
        help=f"small files added for scale, on each backend (default {DEFAULT_SCALE_RECORDS})",
    )
    parser.add_argument(
        "--scale-backends",
        default=",".join(SCALE_BACKENDS),
        metavar="LIST",
        help=f"databases for scale, comma-separated (default {','.join(SCALE_BACKENDS)})",
    )
    parser.add_argument(
        "--scale-pg-fsync",
        choices=("on", "off"),
        default="on",
        help="run scale's PostgreSQL server with fsync (and synchronous_commit, full_page_writes) on, as"
        " a real server runs, or off, as the test suite runs it (default on)",
    )
    parser.add_argument(
        "--verify-gib",
        type=float,
        default=DEFAULT_VERIFY_GIB,
        help=f"blobs verified by pverify, in files of 256 MiB (default {DEFAULT_VERIFY_GIB:g})",
    )
    parser.add_argument("--search-reports", type=int, default=100_000, help="reports for search (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side; the best counts (default 3)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only these benchmarks (repeatable or comma-separated)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where to put scratch files (default benchmarks/scratch/)"
    )
    parser.add_argument("--report", type=Path, default=None, help="also write the summary as Markdown to this file")
    bag_speed.add_options(parser)
    args = parser.parse_args(argv)
    bag_speed.configure(args)
    selected = [name.strip() for value in args.only for name in value.split(",") if name.strip()]
    unknown = sorted(set(selected) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    args.only = [name for name in BENCHMARKS if not selected or name in selected]
    args.scale_backends = tuple(dict.fromkeys(b.strip() for b in args.scale_backends.split(",") if b.strip()))
    if not args.scale_backends or set(args.scale_backends) - set(SCALE_BACKENDS):
        parser.error(f"--scale-backends: choose from {','.join(SCALE_BACKENDS)}")
    if (
        args.size_gib <= 0
        or args.bag_gib <= 0
        or args.capture_size_mib <= 0
        or args.verify_gib <= 0
        or (args.rss_size_gib is not None and args.rss_size_gib <= 0)
    ):
        parser.error("sizes must be positive")
    if args.small_files < 1 or args.repeat < 1 or args.ingest_items < 1 or args.scale_records < 1:
        parser.error("--small-files, --ingest-items, --scale-records and --repeat must be at least 1")
    return args


def markdown(machine: dict[str, str], rows: list[Row], settings: str) -> str:
    """The machine and the summary table as Markdown."""
    lines = ["| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in machine.items()]
    lines += [
        "",
        settings,
        "",
        "| Benchmark | Ours | Reference (same run) | Ratio ours/ref | Target | Result |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r.benchmark} | {r.ours} | {r.reference} | {r.ratio} | {r.target} | {r.status} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks; return 1 if a target was missed."""
    args = parse_args(argv)
    size = int(args.size_gib * GIB)
    rss_size = int((args.rss_size_gib if args.rss_size_gib is not None else 2 * args.size_gib) * GIB)
    capture_size = int(args.capture_size_mib * MIB)
    if "capture" in args.only:
        absent = missing_tools("curl", "sha256sum", "sync")
        if absent:
            others = ",".join(name for name in args.only if name != "capture")
            print(
                f"the capture benchmark needs {', '.join(absent)} on the PATH (curl is its yardstick): install it"
                " (Debian/Ubuntu: apt-get install curl)"
                + (f", or leave capture out: --only {others}" if others else "")
            )
            return 2
    workdir: Path = args.workdir if args.workdir is not None else DEFAULT_WORKDIR
    created_workdir = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)

    needed = 2 * max(
        size if {"hash", "multi", "add"} & set(args.only) else 0,
        rss_size if "rss" in args.only else 0,
        capture_size if "capture" in args.only else 0,
        int(args.bag_gib * GIB) * 3 // 2 if "bagit" in args.only else 0,
    )
    verify_size = int(args.verify_gib * GIB)
    needed = max(
        needed,
        args.scale_records * SCALE_BYTES_PER_RECORD if "scale" in args.only else 0,
        verify_size + VERIFY_FILE_SIZE if "pverify" in args.only else 0,
        bag_speed.disk_needed() if "bagspeed" in args.only else 0,
    )
    needed += GIB // 2
    free = shutil.disk_usage(workdir).free
    if free < needed:
        print(f"not enough free space in the work directory: {size_text(free)} free, need {size_text(needed)}")
        return 2
    if "scale" in args.only:
        # one blob file per record, plus their folders (65,536 at most) and one chunk of sources
        inodes = args.scale_records + 65_536 + 20_000
        free_inodes = os.statvfs(workdir).f_favail
        if free_inodes < inodes:
            print(f"not enough free inodes in the work directory for scale: {free_inodes} free, need {inodes}")
            return 2

    machine = describe_machine(workdir)
    print("Machine")
    for key, value in machine.items():
        print(f"  {key:22s} {value}")
    settings = (
        f"Settings: data file {size_text(size)}, RSS file {size_text(rss_size)}, {args.small_files} small files, "
        f"capture file {size_text(capture_size)}, ingest digest {args.ingest_items} items, "
        f"bag {args.bag_gib:g} GiB, log {args.log_events} events, "
        f"scale {args.scale_records} records on {'+'.join(args.scale_backends)}"
        f"{f' (PostgreSQL fsync {args.scale_pg_fsync})' if 'postgresql' in args.scale_backends else ''}, "
        f"verify {size_text(verify_size)}, "
        f"{args.repeat} runs of each side (best; median for capture); "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    print(settings)
    if machine["Work dir file system"].split()[0] in ("tmpfs", "ramfs"):
        print("warning: the work directory is in memory, so fsync and sync cost nothing; use --workdir on a disk")

    rows: list[Row] = []
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    try:
        ctx = Context(
            scratch=scratch,
            size=size,
            rss_size=rss_size,
            small_files=args.small_files,
            repeat=args.repeat,
            capture_size=capture_size,
            ingest_items=args.ingest_items,
            bag_size=int(args.bag_gib * GIB),
            log_events=args.log_events,
            scale_records=args.scale_records,
            scale_backends=args.scale_backends,
            scale_pg_fsync=args.scale_pg_fsync == "on",
            verify_size=verify_size,
            search_reports=args.search_reports,
        )
        for name in args.only:
            function, tools = BENCH_FUNCTIONS[name]
            doc = getattr(function, "func", function).__doc__ or name  # a partial's own doc; a lambda has none
            title = doc.splitlines()[0].replace("``", "")
            print(f"\n== {name}: {title}", flush=True)
            absent = missing_tools(*tools)
            if absent:
                print(f"  skipped: {', '.join(absent)} not found")
                rows.append(Row(name, "-", "-", "-", "-", "SKIP"))
                continue
            rows.extend(function(ctx))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if created_workdir:
            with contextlib.suppress(OSError):
                workdir.rmdir()  # only when this run created it and left it empty
    settings += f", at end {os.getloadavg()[0]:.2f}"

    print("\nSummary")
    width = max(len(r.benchmark) for r in rows)
    for r in rows:
        print(f"  {r.status:4s}  {r.benchmark:{width}s}  ours {r.ours}; {r.reference}; ratio {r.ratio}")
    if args.report is not None:
        args.report.write_text(markdown(machine, rows, settings), encoding="utf-8")
        print(f"\nMarkdown summary written to {args.report}")
    return 1 if any(r.status == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
