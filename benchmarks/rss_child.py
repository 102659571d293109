"""Child process of the peak-RSS and capture benchmarks (started by ``benchmarks/run.py``, not meant to be run by hand).

Usage::

    python benchmarks/rss_child.py bare
    python benchmarks/rss_child.py import
    python benchmarks/rss_child.py init CATALOG_DIR
    python benchmarks/rss_child.py add CATALOG_DIR FILE
    python benchmarks/rss_child.py capture CATALOG_DIR URL
    python benchmarks/rss_child.py capture-warm CATALOG_DIR URL WARM_URL
    python benchmarks/rss_child.py ingest CATALOG_DIR FILE
    python benchmarks/rss_child.py ingest-search CATALOG_DIR FILE WORD
    python benchmarks/rss_child.py export-bag CATALOG_DIR BAG_DIR
    python benchmarks/rss_child.py check-bag BAG_DIR
    python benchmarks/rss_child.py log CATALOG_DIR EVENTS
    python benchmarks/rss_child.py scale CATALOG_DIR FILES_DIR RECORDS DATABASE DIGEST
    python benchmarks/rss_child.py verify CATALOG_DIR

``bare`` imports nothing (the interpreter's own baseline); ``import`` imports the library; ``init``
also creates an empty catalog; ``add`` creates a catalog and adds *FILE* with one ``Catalog.add``
call; ``capture`` creates a catalog and captures *URL* with one ``Catalog.capture`` call (default
``CaptureOptions``; yt-dlp is imported inside that call, as it is for every user).  Each mode
prints one JSON object with what it did and the process's peak resident set size in KiB; for
``add`` and ``capture``, ``seconds`` is the wall time of that one call.  ``capture-warm`` first
captures *WARM_URL* (untimed), as a batch does before its second URL, then times *URL*.
``ingest`` creates a catalog and ingests the digest *FILE* with one ``Catalog.ingest`` call
(``seconds`` is that call); ``ingest-search`` then also times ``Catalog.search(WORD,
limit=None)`` and with the default limit of 100, best of 5 each (``search_seconds``,
``search_hits``, ``search100_seconds``, ``search100_hits``).  ``export-bag`` opens an existing
catalog and exports it whole as a BagIt bag with one ``Catalog.export`` call; ``check-bag`` checks
a bag completely (``evidence_catalog.interchange.bag.check_bag``: paths, Payload-Oxum, every
digest), as an import does before it accepts anything.  ``log`` creates a catalog and appends
*EVENTS* custody events (catalog-level ``catalog.verified`` events) in transactions of 2,000,
each ending with its signed checkpoint as every change does (``seconds``); then times inclusion
and consistency proofs at tree sizes 1,000 to *EVENTS* (median of 51 each, ``proofs``) and a
full ``verify`` (``verify_seconds``: every event re-hashed, the chain walked, the Merkle tree
recomputed and compared, every checkpoint checked).

``scale`` creates a catalog -- in SQLite when *DATABASE* is ``-``, else in the empty database at
that URL -- and adds *RECORDS* small files of distinct content (220-520 B), made in chunks of at
most 10,000 in *FILES_DIR* (one chunk on disk at a time, removed after it is added), each chunk
with one ``Catalog.add(paths, batch=1000)`` call (a transaction and signed checkpoint per 1,000
files).  Only those calls are timed: ``chunk_seconds`` and ``chunk_records`` per call,
``add_peak_kib`` the peak RSS after the last.  Then, at that size, latencies of lookups of
random records (``lookups``: ``has_record``, ``records_with_artifact``, ``record``, a page of
50 ids after a random one, and that page read as ``list`` reads it; 2,000 timed calls each after
200 untimed): p50, p95, p99, max and mean in milliseconds.  Unless *DIGEST* is ``-``, it then
ingests that digest and times ``Catalog.search(WORD, limit=50)`` (200 calls after 20) for the
word ``SEARCH_WORD`` (``search``).  ``database_bytes`` is the database's size at the end.
``verify`` opens a catalog and runs ``Catalog.verify(record_event=False)`` with its default
workers (``seconds``, ``cpu_seconds`` of this process during the call, ``bytes_checked``).

The peak comes from ``VmHWM`` in ``/proc/self/status``: the high-water mark of this process's
own address space since ``exec``.  ``getrusage``/``wait4`` ``ru_maxrss`` is not used on Linux
because it also counts the memory image of the process that spawned the child (the kernel
carries the pre-``exec`` high-water mark over), which here is the benchmark runner itself.
Elsewhere ``ru_maxrss`` is the fallback, and the output says so.

Only :mod:`sys` is imported at the top so that ``bare`` is close to ``python -c pass``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nothing of the library is imported before a benchmark asks for it
    from evidence_catalog import Catalog

OPERATOR = "Benchmark <bench@example.org>"
ARGUMENTS = {
    "bare": 0,
    "import": 0,
    "init": 1,
    "add": 2,
    "capture": 2,
    "capture-warm": 3,
    "ingest": 2,
    "ingest-search": 3,
    "export-bag": 2,
    "check-bag": 1,
    "log": 2,
    "scale": 5,
    "verify": 1,
}

#: ``scale``: the files of a chunk are added with one call, a transaction per batch.
SCALE_CHUNK = 10_000
SCALE_BATCH = 1000
SCALE_SEED = 20240613
LOOKUP_SAMPLES = 2000
LOOKUP_WARMUP = 200
#: Settled means at most this much of the page cache waits to be written back.
SETTLE_DIRTY_KIB = 16 * 1024
#: ... waited for at most this many seconds (other programs may keep writing).
SETTLE_WRITEBACK_LIMIT = 60
PAGE = 50
SEARCH_SAMPLES = 200
SEARCH_WARMUP = 20
SETTLE_LIMIT = 1200  # seconds
#: A word of the generated digests (the same as ``benchmarks/run.py`` searches for).
SEARCH_WORD = "причалы"


def peak_rss_kib() -> tuple[int, str]:
    """This process's peak RSS in KiB and where the figure comes from."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]), "VmHWM"
    except OSError:
        pass
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (maxrss // 1024 if sys.platform == "darwin" else maxrss), "ru_maxrss"


def fill_log(catalog: Catalog, count: int, batch: int = 2000) -> int:
    """Append events to a new *catalog*'s log until it holds *count* (transactions of *batch*,
    each ending with the signed checkpoint every change gets); the number it holds."""
    from evidence_catalog.custody import Action

    done = 1  # catalog.created
    while done < count:
        size = min(batch, count - done)
        with catalog._ctx.write() as session:  # the operations' write transaction
            catalog.db.append_events(
                session,
                [
                    {
                        "at": catalog.clock(),
                        "actor": catalog.operator,
                        "action": Action.CATALOG_VERIFIED,
                        "subject": "catalog",
                        "details": {"ok": True, "findings": 0, "artifacts_checked": done + i, "events_checked": 0},
                    }
                    for i in range(size)
                ],
            )
        done += size
    return done


def _log_benchmark(catalog_dir: str, count: int) -> dict[str, object]:
    import random
    import statistics
    import time

    from evidence_catalog import Catalog, merkle

    result: dict[str, object] = {}
    with Catalog.init(catalog_dir, operator=OPERATOR) as catalog:
        started = time.perf_counter()
        done = fill_log(catalog, count)
        result["seconds"] = time.perf_counter() - started
        result["events"] = done
        rng = random.Random(7)
        proofs = {}
        size = 1000
        sizes = []
        while size < done:
            sizes.append(size)
            size *= 10
        sizes.append(done)
        with catalog.db.read() as session:
            for size in sizes:
                inclusion, consistency, lengths = [], [], []
                for _ in range(51):
                    subtrees = catalog.db.subtrees(session)  # a fresh cache: every node read from the database
                    index = rng.randrange(size)
                    t0 = time.perf_counter()
                    path = merkle.inclusion_proof(subtrees, index, size)
                    inclusion.append(time.perf_counter() - t0)
                    lengths.append(len(path))
                    subtrees = catalog.db.subtrees(session)
                    old = rng.randrange(1, size + 1)
                    t0 = time.perf_counter()
                    merkle.consistency_proof(subtrees, old, size)
                    consistency.append(time.perf_counter() - t0)
                proofs[str(size)] = {
                    "inclusion_ms": statistics.median(inclusion) * 1000,
                    "consistency_ms": statistics.median(consistency) * 1000,
                    "path_length": max(lengths),
                }
        result["proofs"] = proofs
        started = time.perf_counter()
        verified = catalog.verify(record_event=False)
        result["verify_seconds"] = time.perf_counter() - started
        result["verify_ok"] = verified.ok
        result["verify_findings"] = [str(f) for f in verified.findings[:3]]
    return result


def _latency(samples_ns: list[int]) -> dict[str, float]:
    """p50, p95, p99 (nearest rank), max and mean of call times, in milliseconds."""
    ordered = sorted(samples_ns)

    def rank(percent: int) -> float:
        position = (len(ordered) * percent + 99) // 100 - 1  # the nearest rank, counted from 1
        return ordered[max(0, min(len(ordered) - 1, position))] / 1e6

    return {
        "p50_ms": rank(50),
        "p95_ms": rank(95),
        "p99_ms": rank(99),
        "max_ms": ordered[-1] / 1e6,
        "mean_ms": sum(ordered) / len(ordered) / 1e6,
        "calls": len(ordered),
    }


def _cpu_times() -> list[int] | None:
    """The machine's CPU time counters (``/proc/stat``'s ``cpu`` line; None where there is none)."""
    try:
        with open("/proc/stat") as stat:
            return [int(field) for field in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


def _cpu_shares(before: list[int] | None, after: list[int] | None) -> dict[str, float]:
    """Shares of all CPUs' time between two :func:`_cpu_times`: busy (user, nice, system, irq
    and softirq), idle, waiting for the disk, and stolen by the host (a virtual machine's
    neighbours).  A counter that went back (iowait may, on a tickless kernel) counts as 0."""
    if before is None or after is None:
        return {}
    user, nice, system, idle, iowait, irq, softirq, steal = (max(0, b - a) for a, b in zip(before, after, strict=True))
    total = max(1, user + nice + system + idle + iowait + irq + softirq + steal)
    return {
        "busy": (user + nice + system + irq + softirq) / total,
        "idle": idle / total,
        "iowait": iowait / total,
        "steal": steal / total,
    }


def _dirty_kib() -> int:
    """Dirty and under-writeback page cache, KiB (``/proc/meminfo``; 0 where there is none)."""
    try:
        with open("/proc/meminfo") as meminfo:
            return sum(int(line.split()[1]) for line in meminfo if line.startswith(("Dirty:", "Writeback:")))
    except (OSError, ValueError, IndexError):
        return 0


def _scale_benchmark(catalog_dir: str, files_dir: str, count: int, database: str, digest: str) -> dict[str, object]:
    import os
    import random
    import shutil
    import time
    from collections.abc import Callable, Sequence
    from pathlib import Path
    from typing import Any

    from evidence_catalog import Catalog

    def time_calls(call: Callable[[Any], object], arguments: Sequence[Any], warmup: int) -> dict[str, float]:
        """Call *call* on each argument (the first *warmup* untimed); latencies of the others."""
        samples = []
        for position, argument in enumerate(arguments):
            started = time.perf_counter_ns()
            call(argument)
            elapsed = time.perf_counter_ns() - started
            if position >= warmup:
                samples.append(elapsed)
        return _latency(samples)

    rng = random.Random(SCALE_SEED)  # the files' content
    picker = random.Random(SCALE_SEED + 1)  # which records the lookups ask for
    chunk = min(SCALE_CHUNK, max(1, count // 10))
    folder = Path(files_dir)
    keep = min(1.0, 4 * (LOOKUP_SAMPLES + LOOKUP_WARMUP) / count)
    kept: list[tuple[str, str]] = []  # (record id, sha256) of a random few: never all in memory
    chunk_seconds: list[float] = []
    chunk_records: list[int] = []
    result: dict[str, object] = {"chunk": chunk, "batch": SCALE_BATCH}
    with Catalog.init(catalog_dir, operator=OPERATOR, database=None if database == "-" else database) as catalog:
        made = 0
        while made < count:
            n = min(chunk, count - made)
            folder.mkdir()
            paths = []
            for i in range(made, made + n):
                path = folder / f"item{i:07d}.bin"
                path.write_bytes(f"scale item {i}\n".encode("ascii") + rng.randbytes(rng.randint(200, 500)))
                paths.append(path)
            os.sync()  # the files just made are not the add's to flush
            started = time.perf_counter()
            added = catalog.add(paths, batch=SCALE_BATCH)
            chunk_seconds.append(time.perf_counter() - started)
            chunk_records.append(n)
            if len(added) != n or not all(r.new_record and r.new_bytes for r in added):
                raise SystemExit(f"chunk at {made}: not every file became a new record with new bytes")
            kept.extend((r.record_id, r.sha256) for r in added if picker.random() < keep)
            del added, paths
            shutil.rmtree(folder)
            if (made + n) * 10 // count != made * 10 // count:  # a tenth done
                rate = n / chunk_seconds[-1]
                print(f"    {made + n} records, the last {n} at {rate:.0f} records/s", file=sys.stderr, flush=True)
            made += n
        result["chunk_seconds"] = chunk_seconds
        result["chunk_records"] = chunk_records
        result["add_peak_kib"] = peak_rss_kib()[0]

        wanted = LOOKUP_WARMUP + LOOKUP_SAMPLES
        # Two disjoint sets of records to ask for: the first right after adding, the second once
        # the database has settled, then the second again (its pages now in the caches).
        if len(kept) >= 2 * wanted:
            both = picker.sample(kept, 2 * wanted)
            first, second = both[:wanted], both[wanted:]
        else:
            first, second = picker.choices(kept, k=wanted), picker.choices(kept, k=wanted)

        def has_record(record_id: str) -> None:
            if not catalog.has_record(record_id):
                raise SystemExit(f"has_record({record_id}) is False")

        def with_artifact(pick: tuple[str, str]) -> None:
            record_id, sha256 = pick
            if catalog.records_with_artifact(sha256) != [record_id]:
                raise SystemExit(f"records_with_artifact({sha256}) is not [{record_id}]")

        def record(record_id: str) -> None:
            if catalog.record(record_id).id != record_id:
                raise SystemExit(f"record({record_id}) read another record")

        def id_page(record_id: str) -> None:
            page = catalog.record_ids(after=record_id, limit=PAGE)
            if len(page) > PAGE or (page and page[0] <= record_id):
                raise SystemExit(f"record_ids(after={record_id}) gave a wrong page")

        def record_page(record_id: str) -> None:
            if len(catalog.read_page(catalog.record_ids(after=record_id, limit=PAGE))) > PAGE:
                raise SystemExit(f"a page after {record_id} has too many records")

        def point_lookups(picks: list[tuple[str, str]]) -> dict[str, dict[str, float]]:
            ids = [record_id for record_id, _ in picks]
            before = _cpu_times()
            timed = {
                "has_record": time_calls(has_record, ids, LOOKUP_WARMUP),
                "records_with_artifact": time_calls(with_artifact, picks, LOOKUP_WARMUP),
            }
            timed["machine"] = _cpu_shares(before, _cpu_times())
            return timed

        def settle() -> dict[str, object]:
            """Let the database finish the work the inserts left it, before lookups are timed again.

            PostgreSQL: wait (at most ``SETTLE_LIMIT`` seconds) until no autovacuum worker runs
            (after a bulk load it vacuums and analyses the new rows, on the CPUs the lookups need),
            then ``CHECKPOINT``.  SQLite has no background work: ``wal_checkpoint(TRUNCATE)`` folds
            the write-ahead log into the database file, as the last connection's close would.
            """
            import sqlalchemy as sa

            started = time.perf_counter()
            seen = 0
            with catalog.db.engine.connect() as connection:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                if database == "-":
                    connection.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
                else:
                    while time.perf_counter() - started < SETTLE_LIMIT:
                        workers = connection.execute(
                            sa.text("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
                        ).scalar_one()
                        if not workers:
                            break
                        seen = max(seen, int(workers))
                        time.sleep(2)
                    connection.execute(sa.text("CHECKPOINT"))
            # and the machine: the kernel writes back what the adds and the checkpoint left
            # dirty (a million blob files among them) on the same CPUs and disk.
            flushing = time.perf_counter()
            os.sync()
            while _dirty_kib() > SETTLE_DIRTY_KIB and time.perf_counter() - flushing < SETTLE_WRITEBACK_LIMIT:
                time.sleep(1)
                os.sync()  # others' dirty pages below the kernel's threshold would wait ~30 s
            return {"seconds": time.perf_counter() - started, "autovacuum_workers": seen, "dirty_kib": _dirty_kib()}

        print("    timing lookups right after adding ...", file=sys.stderr, flush=True)
        result["lookups_after_adding"] = point_lookups(first)
        print("    letting the database settle ...", file=sys.stderr, flush=True)
        result["settle"] = settle()
        print("    timing lookups, settled ...", file=sys.stderr, flush=True)
        lookups = point_lookups(second)
        ids = [record_id for record_id, _ in second]
        lookups["record"] = time_calls(record, ids, LOOKUP_WARMUP)
        lookups["record_ids"] = time_calls(id_page, ids, LOOKUP_WARMUP)
        lookups["read_page"] = time_calls(record_page, ids, LOOKUP_WARMUP)
        result["lookups"] = lookups
        result["lookups_again"] = point_lookups(second)
        if digest != "-":
            print("    ingesting the digest and timing search ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            ingested = catalog.ingest(digest)
            result["ingest_seconds"] = time.perf_counter() - started
            result["reports"] = ingested.reports_added
            result["search_hits"] = len(catalog.search(SEARCH_WORD, limit=None))

            def search(_: object) -> None:
                if not catalog.search(SEARCH_WORD, limit=PAGE):
                    raise SystemExit(f"no report holds {SEARCH_WORD!r}")

            result["search"] = time_calls(search, [None] * (SEARCH_WARMUP + SEARCH_SAMPLES), SEARCH_WARMUP)
        import sqlalchemy as sa

        with catalog.db.engine.connect() as connection:
            result["records"] = int(connection.execute(sa.text("SELECT count(*) FROM record")).scalar_one())
            if database != "-":
                size = connection.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
                result["database_bytes"] = int(size)
        if database == "-":
            result["database_bytes"] = sum(
                p.stat().st_size for p in Path(catalog_dir).iterdir() if p.name.startswith("catalog.db")
            )
    return result


def _verify_catalog(catalog_dir: str) -> dict[str, object]:
    import os
    import time

    from evidence_catalog import Catalog

    with Catalog.open(catalog_dir, operator=OPERATOR) as catalog:
        before = os.times()
        started = time.perf_counter()
        report = catalog.verify(record_event=False)
        seconds = time.perf_counter() - started
        after = os.times()
    return {
        "seconds": seconds,
        "cpu_seconds": (after.user - before.user) + (after.system - before.system),
        "ok": report.ok,
        "findings": [str(f) for f in report.findings[:3]],
        "artifacts_checked": report.artifacts_checked,
        "bytes_checked": report.bytes_checked,
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str]) -> int:
    """Run one mode, print its report; return the process exit status."""
    if not argv or argv[0] not in ARGUMENTS or len(argv) != 1 + ARGUMENTS[argv[0]]:
        print(__doc__, file=sys.stderr)
        return 2
    mode = argv[0]
    if mode == "bare":
        peak, source = peak_rss_kib()
        print(f'{{"mode": "bare", "peak_kib": {peak}, "source": "{source}"}}')
        return 0

    import json
    import time

    from evidence_catalog import Catalog  # the import is part of what is measured

    report: dict[str, object] = {"mode": mode}
    if mode == "export-bag":
        with Catalog.open(argv[1], operator=OPERATOR) as catalog:
            started = time.perf_counter()
            exported = catalog.export(argv[2], format="bagit")
            report.update(
                seconds=time.perf_counter() - started,
                records=exported.records,
                artifacts=exported.artifacts,
                payload_oxum=exported.payload_oxum,
            )
    elif mode == "log":
        report.update(_log_benchmark(argv[1], int(argv[2])))
    elif mode == "scale":
        report.update(_scale_benchmark(argv[1], argv[2], int(argv[3]), argv[4], argv[5]))
    elif mode == "verify":
        report.update(_verify_catalog(argv[1]))
    elif mode == "check-bag":
        from pathlib import Path

        from evidence_catalog.interchange.bag import check_bag

        started = time.perf_counter()
        checked = check_bag(Path(argv[1]))
        report.update(seconds=time.perf_counter() - started, octets=checked.octets, files=len(checked.files))
    if mode in ("init", "add", "capture", "capture-warm", "ingest", "ingest-search"):
        with Catalog.init(argv[1], operator=OPERATOR) as catalog:
            if mode == "add":
                started = time.perf_counter()
                [result] = catalog.add([argv[2]])
                report.update(
                    seconds=time.perf_counter() - started,
                    sha256=result.sha256,
                    size=result.size,
                    new_bytes=result.new_bytes,
                )
            elif mode in ("ingest", "ingest-search"):
                started = time.perf_counter()
                ingested = catalog.ingest(argv[2])
                report.update(
                    seconds=time.perf_counter() - started,
                    format=ingested.format,
                    items=ingested.items,
                    reports_added=ingested.reports_added,
                    records_added=ingested.records_added,
                    warnings=len(ingested.warnings),
                )
                if len(argv) > 3:  # then search the ingested reports for a word, best of 5
                    for key, limit in (("search", None), ("search100", 100)):
                        best, hits = float("inf"), 0
                        for _ in range(5):
                            started = time.perf_counter()
                            hits = len(catalog.search(argv[3], limit=limit))
                            best = min(best, time.perf_counter() - started)
                        report.update({f"{key}_seconds": best, f"{key}_hits": hits})
            elif mode in ("capture", "capture-warm"):
                from evidence_catalog.capture import CaptureOptions

                if len(argv) > 3:  # "warm": yt-dlp already started by an earlier capture here
                    [first] = catalog.capture(argv[3], options=CaptureOptions())
                    if not first.ok:
                        raise SystemExit(f"warm-up capture failed: {first.error}")
                started = time.perf_counter()
                [captured] = catalog.capture(argv[2], options=CaptureOptions())
                report.update(
                    seconds=time.perf_counter() - started,
                    ok=captured.ok,
                    error=captured.error,
                    sha256=captured.sha256,
                    size=captured.size,
                    artifacts=captured.artifacts,
                    new_bytes=captured.new_bytes,
                )
    report["peak_kib"], report["source"] = peak_rss_kib()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
