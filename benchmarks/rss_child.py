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

The peak comes from ``VmHWM`` in ``/proc/self/status``: the high-water mark of this process's
own address space since ``exec``.  ``getrusage``/``wait4`` ``ru_maxrss`` is not used on Linux
because it also counts the memory image of the process that spawned the child (the kernel
carries the pre-``exec`` high-water mark over), which here is the benchmark runner itself.
Elsewhere ``ru_maxrss`` is the fallback, and the output says so.

Only :mod:`sys` is imported at the top so that ``bare`` is close to ``python -c pass``.
"""

from __future__ import annotations

import sys

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
}


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


def _log_benchmark(catalog_dir: str, count: int) -> dict[str, object]:
    import random
    import statistics
    import time

    from evidence_catalog import Catalog, merkle
    from evidence_catalog.custody import Action

    result: dict[str, object] = {}
    with Catalog.init(catalog_dir, operator=OPERATOR) as catalog:
        started = time.perf_counter()
        done = 1  # catalog.created
        while done < count:
            batch = min(2000, count - done)
            with catalog.db.write() as session:
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
                        for i in range(batch)
                    ],
                )
            done += batch
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
