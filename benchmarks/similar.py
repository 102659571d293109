"""The ``similar`` benchmark: near-duplicate search over 10,000 to 1,000,000 stored perceptual
hashes, SQLite vs PostgreSQL, numpy (ours) vs faiss's exact binary index.

Run alone: ``python benchmarks/similar.py [--sizes 10000,100000,1000000] [--calls N]
[--no-postgresql]`` (faiss-cpu, when installed, is timed beside ours).

**The catalogs.**  For each size, a catalog on SQLite and one on PostgreSQL (a throw-away server,
on disk, as the other benchmarks start it) are filled with the same generated media, their
hashes stored through the store's own ``add_hashes`` in the context's write transactions, 2,000
media a transaction: nine hashes in ten are frames of one-minute videos hashed once a second (60
each; consecutive frames a few bits apart, as a still shot gives), one in ten is an image; one
hash in twenty is of quality under 50 (stored, never matched).  One image in fifty is a near copy
of another image (8 to 24 bits flipped) and one video in fifty holds, in one frame, a near copy
of an image: the images looked for have matches.  Each medium is a record with the medium and
its analysis document as artifacts (artifact, record and record-artifact rows written directly;
the records have no custody events, which ``similar`` does not read).  PostgreSQL's tables are then vacuumed and
analysed.

**The figures.**  For each catalog, opened afresh:

* *load*: the first ``similar`` call's reading of every row into the index in memory (seconds),
  the index's arrays (MiB), and the process's resident memory before and after, and at its
  peak while loading and querying (``VmHWM``, reset before loading through
  ``/proc/self/clear_refs``);
* *query an image*: ``Catalog.similar(record_id)`` of an image's record, the whole call as a
  user makes it (the index brought up to date: one query for rows written since; the record's
  hashes read; the scan; the ranking), ``--calls`` times, p50 and p99 in ms, the two databases
  interleaved call by call;
* *query a video*: the same for a video's record (60 hashes: 60 scans);
* *numpy vs faiss*: the scan alone, one hash and 60 hashes, against the same hashes in faiss's
  ``IndexBinaryFlat`` (``range_search``, exact; one thread, as ours), the two interleaved, and
  whether they found the same pairs.

Target (issue 23): p99 of a query under 50 ms over 1,000,000 stored hashes, on SQLite and on
PostgreSQL, with the same results on both (checked here: every call's answer is compared).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if os.fspath(HERE.parent) not in sys.path:  # the repository's tests/ (its PostgreSQL server)
    sys.path.insert(0, os.fspath(HERE.parent))

import numpy as np  # noqa: E402

from evidence_catalog import Catalog, model  # noqa: E402
from evidence_catalog.analysis import PerceptualHash  # noqa: E402

OPERATOR = "Benchmark <bench@example.org>"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_CALLS = 200
WARM_CALLS = 3
TARGET_P99_MS = 50.0
FRAMES_PER_VIDEO = 60
MEDIA_PER_TRANSACTION = 2_000
SEED = 20261205
MIB = 1024 * 1024


def _random_hash(rng: np.random.Generator) -> np.ndarray[Any, Any]:
    return rng.integers(0, 256, size=32, dtype=np.uint8)


def _flip(rng: np.random.Generator, value: np.ndarray[Any, Any], bits: int) -> np.ndarray[Any, Any]:
    flipped = value.copy()
    for bit in rng.choice(256, size=bits, replace=False):
        flipped[bit // 8] ^= np.uint8(1 << (bit % 8))
    return flipped


def generate(size: int, seed: int = SEED) -> tuple[list[list[PerceptualHash]], set[int]]:
    """The media of a catalog of about *size* hashes, each a list of hashes (an image: one, no
    offset; a video: one a second), reproducible from *seed*; and which of them are images that
    are near copies of another."""
    rng = np.random.default_rng(seed)
    videos = size * 9 // 10 // FRAMES_PER_VIDEO
    images = size - videos * FRAMES_PER_VIDEO
    image_hashes: list[np.ndarray[Any, Any]] = []
    media: list[list[PerceptualHash]] = []
    copies: set[int] = set()

    def hashed(value: np.ndarray[Any, Any], offset_s: float | None) -> PerceptualHash:
        quality = int(rng.integers(10, 50)) if rng.random() < 0.05 else int(rng.integers(50, 101))
        return PerceptualHash(value=value.tobytes().hex(), quality=quality, offset_s=offset_s)

    for n in range(images):
        if image_hashes and n % 50 == 49:
            value = _flip(rng, image_hashes[int(rng.integers(len(image_hashes)))], int(rng.integers(8, 25)))
            copies.add(n)
        else:
            value = _random_hash(rng)
        image_hashes.append(value)
        media.append([hashed(value, None)])
    for n in range(videos):
        shot = _random_hash(rng)
        frames = []
        for second in range(FRAMES_PER_VIDEO):
            if second % 15 == 0:
                shot = _random_hash(rng)  # a cut: a new shot every 15 seconds
            frame = _flip(rng, shot, int(rng.integers(0, 6)))
            if n % 50 == 7 and second == 30 and image_hashes:
                frame = _flip(rng, image_hashes[int(rng.integers(len(image_hashes)))], 10)
            frames.append(hashed(frame, float(second)))
        media.append(frames)
    order = random.Random(seed).sample(range(len(media)), len(media))  # images and videos stored in any order
    return [media[i] for i in order], {n for n, i in enumerate(order) if i in copies}


def _fake_sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def fill(catalog: Catalog, media: Sequence[list[PerceptualHash]], seed: int = SEED) -> list[tuple[str, bool]]:
    """Store *media* in *catalog* (see the module's note); (record id, is an image) of each."""

    import datetime as dt

    from evidence_catalog.store.database import record_row

    rng = random.Random(seed)
    ctx = catalog._ctx
    at = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    made: list[tuple[str, bool]] = []
    for start in range(0, len(media), MEDIA_PER_TRANSACTION):
        chunk = media[start : start + MEDIA_PER_TRANSACTION]
        records = [
            model.EvidenceRecord(id=_record_id(start + n, rng), created_at=at, created_by=ctx.operator, title=None)
            for n in range(len(chunk))
        ]
        shas = [(_fake_sha(rng), _fake_sha(rng)) for _ in chunk]
        with ctx.write() as session:
            catalog.db.insert_rows(
                session,
                {
                    "record": [record_row(r) for r in records],
                    "artifact": [
                        {"sha256": sha, "size": 1000, "media_type": kind, "stored_at": at}
                        for pair in shas
                        for sha, kind in zip(pair, ("image/jpeg", "application/json"), strict=True)
                    ],
                    "record_artifact": [
                        {
                            "record_id": record.id,
                            "sha256": sha,
                            "position": position,
                            "role": role,
                            "derived_from": [pair[0]] if role == "derived" else None,
                        }
                        for record, pair in zip(records, shas, strict=True)
                        for position, (sha, role) in enumerate(zip(pair, ("original", "derived"), strict=True))
                    ],
                },
            )
            for record, (sha, analysis), hashes in zip(records, shas, chunk, strict=True):
                catalog.db.add_hashes(session, record.id, sha, analysis, hashes)
        made.extend((r.id, len(h) == 1) for r, h in zip(records, chunk, strict=True))
    return made


def _record_id(n: int, rng: random.Random) -> str:
    """The *n*-th record id: a UUIDv7 of millisecond *n* after a fixed time, its random bits from
    *rng* (the same ids in every catalog filled from the same seed, so that answers compare)."""
    value = (1_764_892_800_000 + n) << 80 | 7 << 76 | rng.getrandbits(12) << 64 | 2 << 62 | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


def _vacuum(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    finally:
        engine.dispose()


def _memory(field: str) -> float:
    """A ``/proc/self/status`` figure (``VmRSS``, ``VmHWM``) in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        pass


def percentile(values: Sequence[float], share: float) -> float:
    """The *share* (0-1) percentile of *values*, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _latency(seconds: Sequence[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(seconds) * 1000, "p99_ms": percentile(seconds, 0.99) * 1000}


def load(catalog: Catalog) -> dict[str, float]:
    """Load *catalog*'s index as its first ``similar`` call does: seconds, MiB."""
    from evidence_catalog.operations.similar import _kept, catch_up

    _reset_peak()
    before = _memory("VmRSS")
    kept = _kept(catalog._ctx)
    started = time.perf_counter()
    with kept.lock, catalog.db.read() as session:
        rows = catch_up(catalog._ctx, session, kept.index)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": rows,
        "indexed": len(kept.index),
        "index_mib": kept.index.nbytes / MIB,
        "rss_before_mib": before,
        "rss_after_mib": _memory("VmRSS"),
        "peak_mib": _memory("VmHWM"),
    }


def time_queries(
    catalogs: dict[str, Catalog], targets: dict[str, list[str]], calls: int
) -> tuple[dict[str, dict[str, dict[str, float]]], int]:
    """p50/p99 of ``similar`` for each kind of target on each catalog, and the matches found in
    all; every answer compared between the catalogs (a difference stops the benchmark)."""
    seconds: dict[tuple[str, str], list[float]] = {}
    found = 0
    for round_number in range(WARM_CALLS + calls):
        for kind, records in targets.items():
            target = records[round_number % len(records)]
            answers = []
            order = list(catalogs.items())
            for label, catalog in order if round_number % 2 else reversed(order):
                started = time.perf_counter()
                answer = catalog.similar(target)
                if round_number >= WARM_CALLS:
                    seconds.setdefault((kind, label), []).append(time.perf_counter() - started)
                answers.append(answer)
            if any(answer != answers[0] for answer in answers):
                raise AssertionError(f"the databases answered differently for {target}")
            found += len(answers[0])
    return {kind: {label: _latency(seconds[kind, label]) for label in catalogs} for kind in targets}, found


def numpy_vs_faiss(catalog: Catalog, probes: Sequence[Sequence[bytes]], calls: int) -> dict[str, Any]:
    """The scan alone, ours and faiss's, for each group of *probes* (p50/p99 ms each)."""
    from evidence_catalog.operations.similar import _kept
    from evidence_catalog.similarity import hash_words

    try:
        import faiss
    except ImportError:
        return {}
    faiss.omp_set_num_threads(1)
    index = _kept(catalog._ctx).index
    words = np.stack([column.view() for column in index._words], axis=1)
    flat = faiss.IndexBinaryFlat(256)
    flat.add(np.ascontiguousarray(words).view(np.uint8).reshape(len(words), 32))
    figures: dict[str, Any] = {}
    for group in probes:
        queries = hash_words(list(group))
        as_bytes = np.ascontiguousarray(queries).view(np.uint8).reshape(len(group), 32)
        ours: list[float] = []
        theirs: list[float] = []
        same = True
        for round_number in range(WARM_CALLS + calls):
            sides = [("ours", ours), ("faiss", theirs)]
            results: dict[str, set[tuple[int, int, int]]] = {}
            for name, times in sides if round_number % 2 else reversed(sides):
                started = time.perf_counter()
                if name == "ours":
                    q, r, d = index.search(queries, 31)
                else:
                    lims, d, r = flat.range_search(as_bytes, 32)  # faiss: distance < radius
                    q = np.repeat(np.arange(len(group)), np.diff(lims.astype(np.int64)))
                elapsed = time.perf_counter() - started
                if round_number >= WARM_CALLS:
                    times.append(elapsed)
                    if round_number == WARM_CALLS:
                        results[name] = set(zip(q.tolist(), r.tolist(), d.tolist(), strict=True))
            if results and results["ours"] != results["faiss"]:
                same = False
        figures[f"{len(group)} hash(es)"] = {"numpy": _latency(ours), "faiss": _latency(theirs), "same": same}
    return figures


def bench(
    scratch: Path, sizes: Sequence[int], calls: int, start_server: Callable[[], Any] | None
) -> list[dict[str, str]]:
    """The benchmark at each size; the summary rows (``benchmark``, ``ours``, ``reference``,
    ``ratio``, ``target``, ``status``)."""
    server = None
    if start_server is not None:
        print("(starting a throw-away PostgreSQL server ...)", flush=True)
        try:
            server = start_server()
        except (ImportError, RuntimeError, OSError, KeyError, subprocess.CalledProcessError) as exc:
            print(f"  PostgreSQL skipped: the server could not be started ({exc})")
    rows: list[dict[str, str]] = []
    try:
        for size in sizes:
            rows += bench_size(scratch / f"similar-{size}", size, calls, server)
    finally:
        if server is not None:
            server.stop()
    return rows


def bench_size(folder: Path, size: int, calls: int, server: Any) -> list[dict[str, str]]:
    """The benchmark over *size* stored hashes."""
    print(f"== {size:,} hashes", flush=True)
    media, copies = generate(size)
    url = None if server is None else server.new_database()
    catalogs: dict[str, Catalog] = {}
    made: list[tuple[str, bool]] = []
    loads: dict[str, dict[str, float]] = {}
    try:
        for label, database in (("SQLite", None), ("PostgreSQL", url)):
            if label == "PostgreSQL" and database is None:
                continue
            path = folder / label.lower()
            with Catalog.init(path, operator=OPERATOR, database=database) as catalog:
                started = time.perf_counter()
                made = fill(catalog, media)
                took = time.perf_counter() - started
            if database is not None:
                _vacuum(database)
            print(f"  stored on {label}: {took:.1f} s ({size / took:,.0f} hashes/s)", flush=True)
            catalogs[label] = Catalog.open(path, operator=OPERATOR)
            loads[label] = load(catalogs[label])
            figure = loads[label]
            print(
                f"  loaded from {label}: {figure['seconds']:.2f} s, {figure['indexed']:,.0f} usable of"
                f" {figure['rows']:,.0f} rows, arrays {figure['index_mib']:.1f} MiB, RSS"
                f" {figure['rss_before_mib']:.0f} -> {figure['rss_after_mib']:.0f} MiB (peak {figure['peak_mib']:.0f})",
                flush=True,
            )
        rng = random.Random(SEED)
        # Only media with a hash good enough to match on can be looked for (the others are refused).
        usable = [any(h.usable for h in hashes) for hashes in media]
        images = [record for (record, image), ok in zip(made, usable, strict=True) if image and ok]
        videos = [record for (record, image), ok in zip(made, usable, strict=True) if not image and ok]
        copied = [made[n][0] for n in sorted(copies) if usable[n]]
        # Half the images looked for are near copies of another (they have a match), half any.
        targets = {
            "an image's record": rng.sample(copied, min(25, len(copied))) + rng.sample(images, min(25, len(images)))
        }
        if videos:
            targets["a video's record (60 hashes)"] = rng.sample(videos, min(20, len(videos)))
        _reset_peak()
        figures, found = time_queries(catalogs, targets, calls)
        peak = max(_memory("VmHWM"), *(figure["peak_mib"] for figure in loads.values()))
        print(f"  {calls} calls of each kind, answers identical on every database ({found} matches in all)")
        for kind, by_label in figures.items():
            cells = "   ".join(f"{label} {f['p50_ms']:.1f} / {f['p99_ms']:.1f} ms" for label, f in by_label.items())
            print(f"  similar({kind}): p50 / p99  {cells}")
        print(f"  peak RSS while loading and querying: {peak:.0f} MiB (querying alone: {_memory('VmHWM'):.0f})")
        first = next(iter(catalogs.values()))
        some = [bytes.fromhex(h.value) for h in media[0]][:1]
        video = next((m for m in media if len(m) > 1), media[0])
        scans = numpy_vs_faiss(first, [some, [bytes.fromhex(h.value) for h in video]], calls)
        for group, figure in scans.items():
            ratio = figure["numpy"]["p50_ms"] / figure["faiss"]["p50_ms"]
            print(
                f"  scan of {group}: numpy {figure['numpy']['p50_ms']:.2f} / {figure['numpy']['p99_ms']:.2f} ms,"
                f" faiss {figure['faiss']['p50_ms']:.2f} / {figure['faiss']['p99_ms']:.2f} ms"
                f" (numpy/faiss p50 time {ratio:.2f}x; same pairs: {figure['same']})"
            )
        return _rows(size, figures, loads, peak, scans)
    finally:
        for catalog in catalogs.values():
            catalog.close()
        if url is not None:
            server.drop_database(url)


def _rows(
    size: int,
    figures: dict[str, dict[str, dict[str, float]]],
    loads: dict[str, dict[str, float]],
    peak: float,
    scans: dict[str, Any],
) -> list[dict[str, str]]:
    rows = []
    for kind, by_label in figures.items():
        first, *rest = list(by_label)
        worst = max(f["p99_ms"] for f in by_label.values())
        rows.append(
            {
                "benchmark": f"similar over {size:,} hashes: {kind}",
                "ours": f"{first} p50 {by_label[first]['p50_ms']:.1f} ms, p99 {by_label[first]['p99_ms']:.1f} ms",
                "reference": "; ".join(
                    f"{label} p50 {by_label[label]['p50_ms']:.1f} ms, p99 {by_label[label]['p99_ms']:.1f} ms"
                    for label in rest
                )
                or "-",
                "ratio": "; ".join(
                    f"{label}/{first} p99 {by_label[label]['p99_ms'] / by_label[first]['p99_ms']:.2f}x"
                    for label in rest
                )
                or "-",
                "target": f"p99 < {TARGET_P99_MS:.0f} ms" if "image" in kind else "(none: 60 scans)",
                "status": ("PASS" if worst < TARGET_P99_MS else "FAIL") if "image" in kind else "INFO",
            }
        )
    for label, figure in loads.items():
        rows.append(
            {
                "benchmark": f"similar over {size:,} hashes: index load from {label}",
                "ours": f"{figure['seconds']:.2f} s, arrays {figure['index_mib']:.1f} MiB, peak RSS {peak:.0f} MiB",
                "reference": "-",
                "ratio": "-",
                "target": "-",
                "status": "INFO",
            }
        )
    for group, figure in scans.items():
        rows.append(
            {
                "benchmark": f"scan of {size:,} hashes for {group}",
                "ours": f"numpy p50 {figure['numpy']['p50_ms']:.2f} ms, p99 {figure['numpy']['p99_ms']:.2f} ms",
                "reference": f"faiss p50 {figure['faiss']['p50_ms']:.2f} ms, p99 {figure['faiss']['p99_ms']:.2f} ms",
                "ratio": f"numpy/faiss p50 time {figure['numpy']['p50_ms'] / figure['faiss']['p50_ms']:.2f}x",
                "target": "same pairs",
                "status": "PASS" if figure["same"] else "FAIL",
            }
        )
    return rows


def _start_test_server() -> Any:
    from tests.pg_server import PostgresServer

    return PostgresServer(in_memory=False).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark alone (see the module's note)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="stored hashes in each catalog, comma-separated (default 10000,100000,1000000)",
    )
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS, help="timed calls of each kind of query")
    parser.add_argument("--no-postgresql", action="store_true", help="SQLite only")
    parser.add_argument("--workdir", type=Path, default=None, help="where the catalogs are made")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="similar-speed-", dir=args.workdir) as scratch:
        start = None if args.no_postgresql else _start_test_server
        rows = bench(Path(scratch), sizes, args.calls, start)
    return 0 if all(row["status"] in ("PASS", "INFO") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
