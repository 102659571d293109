"""Four processes writing one catalog at once -- adding files, capturing URLs and ingesting feeds
and digests, on SQLite, on PostgreSQL, and on PostgreSQL with blobs in S3 (moto's server) -- lose
nothing, store no blob twice, and leave one linear custody log with no gaps or forks.

Every worker is a real OS process (``spawn``) that opens the catalog itself and waits at a
barrier, so that all four start writing together.  Some inputs are shared by all workers (the same
bytes added from four paths, the same URL captured four times, the same digest ingested four
times, the same feed item in four feeds), some are each worker's own, and one content is both
added as a file and captured from a URL.  Each worker ends by analysing every record
(``analyze --all``) while the others still write or analyse too: the same bytes analysed on the
same record by several processes at once, keyframes of the same frames derived on different
records.  Afterwards everything is checked against what the
operations promise: one record per distinct content or report, one acquisition per worker on a
shared record, one blob per distinct SHA-256, exactly the custody events the operations log, a
checkpoint after every write transaction that is a prefix of the one log, and a clean ``fsck``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from evidence_catalog import Catalog, merkle, model
from evidence_catalog.capture import CaptureOptions
from evidence_catalog.checkpoint import verify as verify_checkpoint
from evidence_catalog.serialize import unstructure
from tests.media_server import MediaServer, Route, video_page
from tests.salted import committed_by_hand, leaf_by_hand

# Left out of `make test-fast` (the whole module is slow); `make test` runs it.
pytestmark = pytest.mark.slow

WORKERS = 4
#: No retries (a failed request fails the capture, and the test), but a generous socket timeout:
#: four processes and a test server share two cores.
OPTIONS = CaptureOptions(retries=0, socket_timeout=30)
CLIP = (Path(__file__).parent / "data" / "clip.mp4").read_bytes()

Method = model.AcquisitionMethod
Role = model.ArtifactRole

DIGEST = """\
Harbour Monitor (Twitter)
Night images show two new berths at the East Quay yard.
Night images show two new berths at the East Quay yard.
Records Desk (Telegram)
The gate was shut on 4 May, said the operator.
The gate was shut on 4 May, said the operator.
"""


def rss(title: str, *guids: str) -> str:
    items = "".join(
        f"""
  <item>
    <title>Post {guid}</title>
    <link>https://monitor.example.org/posts/{guid}</link>
    <guid isPermaLink="false">{guid}</guid>
    <pubDate>Mon, 05 May 2025 21:30:00 +0300</pubDate>
    <description>What was seen at the East Quay yard ({guid}).</description>
  </item>"""
        for guid in guids
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
<channel>
  <title>{title}</title>
  <link>https://monitor.example.org/</link>
  <description>Posts about the East Quay yard</description>{items}
</channel>
</rss>
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def operator_of(worker: int) -> str:
    return f"Worker {worker}"


# -- the workers ----------------------------------------------------------------------------------


def _worker(catalog_dir: str, worker: int, plan: list[tuple[str, str]], start: Any, out: str) -> None:
    """Open the catalog, wait until every worker has, then run *plan*; write what each step did
    (and when, on the machine's monotonic clock) to *out* as JSON."""
    outcomes: list[dict[str, Any]] = []
    with Catalog.open(catalog_dir, operator=operator_of(worker)) as catalog:
        start.wait(timeout=120)
        for kind, target in plan:
            began = time.monotonic()
            outcome: dict[str, Any] = {"kind": kind, "target": target}
            if kind == "add":
                # analysed by the workers' `analyze` (and the checker's), not here: the analyses
                # to expect do not depend on which worker's add came first
                [added] = catalog.add([target], analyze=False)
                outcome.update(
                    record_id=added.record_id,
                    sha256=added.sha256,
                    new_record=added.new_record,
                    new_bytes=added.new_bytes,
                    acquisition_id=added.acquisition_id,
                )
            elif kind == "analyze":
                analysed = catalog.analyze(all_records=True)
                outcome.update(analyses=[[r.record_id, r.sha256, r.document_sha256, r.new] for r in analysed])
            elif kind == "capture":
                captured = catalog.capture_url(target, options=OPTIONS, analyze=False)  # as the adds
                outcome.update(
                    ok=captured.ok,
                    error=captured.error,
                    record_id=captured.record_id,
                    sha256=captured.sha256,
                    new_record=captured.new_record,
                    new_bytes=captured.new_bytes,
                    version_of=captured.version_of,
                    acquisition_id=captured.acquisition_id,
                )
            else:
                ingested = catalog.ingest(target)
                outcome.update(
                    sha256=ingested.sha256,
                    items=ingested.items,
                    reports_added=ingested.reports_added,
                    reports_present=ingested.reports_present,
                    new_bytes=ingested.new_bytes,
                )
            outcome.update(began=began, ended=time.monotonic())
            outcomes.append(outcome)
    Path(out).write_text(json.dumps(outcomes), encoding="utf-8")


@dataclass
class Scenario:
    """The inputs of every worker, and what they should leave in the catalog."""

    plans: list[list[tuple[str, str]]] = field(default_factory=list)
    own_files: dict[int, list[Path]] = field(default_factory=dict)
    #: Content shared by all workers, and each worker's copy of it (its own path).
    shared: list[bytes] = field(default_factory=list)
    shared_files: dict[int, list[Path]] = field(default_factory=dict)
    #: Bytes each worker both adds from a file and captures from ``cross_url``.
    cross: bytes = b""
    cross_files: dict[int, Path] = field(default_factory=dict)
    cross_url: str = ""
    own_urls: dict[int, str] = field(default_factory=dict)
    own_media: dict[int, bytes] = field(default_factory=dict)
    page_url: str = ""
    page_html: bytes = b""
    digest: Path = Path()
    feeds: dict[int, Path] = field(default_factory=dict)
    feed_url: str = ""
    feed_url_bytes: bytes = b""

    #: What the operations log: one event per add and per capture, one per new report and one
    #: ``digest.ingested`` per ingest, after the catalog's own ``catalog.created``; and one
    #: ``media.analyzed`` per video (each worker's own capture, the shared page's, the cross one).
    adds_per_worker = 7
    captures_per_worker = 3
    ingests_per_worker = 3
    videos = WORKERS + 2
    #: Reports: the digest's two items, the common feed item, each worker's own item, and the two
    #: items of the feed served over HTTP.
    reports = 2 + 1 + WORKERS + 2
    #: 12 own files, 3 shared ones, the cross content, 4 own captures, the shared page, 9 reports.
    records = WORKERS * 3 + 3 + 1 + WORKERS + 1 + reports

    @property
    def events(self) -> Counter[str]:
        return Counter(
            {
                "catalog.created": 1,
                "artifact.added": WORKERS * self.adds_per_worker,
                "media.captured": WORKERS * self.captures_per_worker,
                "report.ingested": self.reports,
                "digest.ingested": WORKERS * self.ingests_per_worker,
                "media.analyzed": self.videos,
            }
        )

    @property
    def transactions(self) -> int:
        """Write transactions, each ending with a checkpoint: init, then one per operation and
        one per analysis written."""
        return 1 + WORKERS * (self.adds_per_worker + self.captures_per_worker + self.ingests_per_worker) + self.videos


def prepare(tmp_path: Path, server: MediaServer, base: str) -> Scenario:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    sc = Scenario()
    sc.shared = [f"the same evidence {i}\n".encode() * 2000 for i in range(3)]
    sc.cross = CLIP + b"\x00added and captured"
    sc.cross_url = server.route(f"{base}/media/cross.mp4", Route(body=sc.cross, media_type="video/mp4"))
    video = server.route(f"{base}/media/shared.mp4", Route(body=CLIP, media_type="video/mp4"))
    sc.page_html = video_page(video, title="Shared clip")
    sc.page_url = server.route(f"{base}/watch/shared", Route(body=sc.page_html, media_type="text/html"))
    sc.digest = inputs / "digest.txt"
    sc.digest.write_text(DIGEST, encoding="utf-8")
    sc.feed_url_bytes = rss("Served feed", "url-1", "url-2").encode()
    sc.feed_url = server.route(
        f"{base}/feeds/served.rss", Route(body=sc.feed_url_bytes, media_type="application/rss+xml")
    )
    for worker in range(WORKERS):
        folder = inputs / f"w{worker}"
        folder.mkdir()
        sc.own_files[worker] = []
        for i in range(3):
            path = folder / f"own-{i}.bin"
            # Random bytes after a fixed head: no image to the sniffer (bare random bytes now and
            # then begin as a PGM or BMP does, and were then analysed: one analysis too many).
            path.write_bytes(b"evidence-catalog test bytes\n\x00" + os.urandom(30_000))
            sc.own_files[worker].append(path)
        sc.shared_files[worker] = []
        for i, content in enumerate(sc.shared):
            path = folder / f"shared-{i}.bin"
            path.write_bytes(content)
            sc.shared_files[worker].append(path)
        sc.cross_files[worker] = folder / "cross.mp4"
        sc.cross_files[worker].write_bytes(sc.cross)
        sc.own_media[worker] = CLIP + f"\x00captured by worker {worker}".encode()
        sc.own_urls[worker] = server.route(
            f"{base}/media/own-{worker}.mp4", Route(body=sc.own_media[worker], media_type="video/mp4")
        )
        sc.feeds[worker] = folder / "feed.rss"
        sc.feeds[worker].write_text(rss(f"Feed of worker {worker}", "common-1", f"own-{worker}"), encoding="utf-8")
        plan = [
            *(("add", str(p)) for p in sc.own_files[worker] + sc.shared_files[worker] + [sc.cross_files[worker]]),
            ("capture", sc.own_urls[worker]),
            ("capture", sc.page_url),
            ("capture", sc.cross_url),
            ("ingest", str(sc.digest)),
            ("ingest", str(sc.feeds[worker])),
            ("ingest", sc.feed_url),
        ]
        random.Random(worker).shuffle(plan)  # each worker in another order: every kind overlaps every other
        sc.plans.append([*plan, ("analyze", "all")])
    return sc


def run_workers(catalog_dir: Path, scenario: Scenario, tmp_path: Path) -> list[list[dict[str, Any]]]:
    """Run the workers as four processes that start together; return what each one did."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    outs = [tmp_path / f"worker-{w}.json" for w in range(WORKERS)]
    processes = [
        context.Process(target=_worker, args=(str(catalog_dir), w, scenario.plans[w], start, str(outs[w])))
        for w in range(WORKERS)
    ]
    for process in processes:
        process.start()
    deadline = time.monotonic() + 300
    try:
        for process in processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
    assert [p.exitcode for p in processes] == [0] * WORKERS, "a worker failed (its traceback is above)"
    return [json.loads(out.read_text(encoding="utf-8")) for out in outs]


# -- independent checks of the log ----------------------------------------------------------------


def event_hash(event: model.CustodyEvent) -> str:
    return hashlib.sha256(rfc8785.dumps(committed_by_hand(unstructure(event)))).hexdigest()


def event_leaf(event: model.CustodyEvent) -> bytes:
    return leaf_by_hand(unstructure(event))


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 Merkle tree hash, written out directly."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def note_root(note: str) -> tuple[int, bytes]:
    lines = note.split("\n")
    return int(lines[1]), base64.b64decode(lines[2], validate=True)


# -- the checks -----------------------------------------------------------------------------------


def check_outcomes(sc: Scenario, outcomes: list[list[dict[str, Any]]], *, local_blobs: bool) -> None:
    """What each worker was told agrees with one catalog written by four processes."""
    # The workers really ran at the same time: every worker was still working when the last began.
    assert max(o[0]["began"] for o in outcomes) < min(o[-1]["ended"] for o in outcomes)
    by_target: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for worker_outcomes in outcomes:
        for outcome in worker_outcomes:
            by_target[outcome["target"]].append(outcome)
    for outcome in (o for results in by_target.values() for o in results if o["kind"] == "capture"):
        assert outcome["ok"], outcome["error"]
        assert outcome["version_of"] is None  # the same bytes again: never a "new version"

    # Shared bytes: one record, made by exactly one of the operations that brought them.
    def one_record(results: list[dict[str, Any]]) -> None:
        assert len({r["record_id"] for r in results}) == 1, results
        assert [r["new_record"] for r in results].count(True) == 1, results
        if local_blobs:  # placing a blob is one locked step on a file system: one writer places it
            assert [r["new_bytes"] for r in results].count(True) == 1, results
        else:  # an object store has no such lock: several may copy the same verified bytes in place
            assert any(r["new_bytes"] for r in results), results

    for worker in range(WORKERS):
        assert all(by_target[str(p)][0]["new_record"] for p in sc.own_files[worker])
        assert by_target[sc.own_urls[worker]][0]["new_record"]
    for i in range(len(sc.shared)):
        one_record([by_target[str(sc.shared_files[w][i])][0] for w in range(WORKERS)])
    one_record(by_target[sc.page_url])
    one_record([by_target[str(sc.cross_files[w])][0] for w in range(WORKERS)] + by_target[sc.cross_url])

    # Ingests: each report is added by exactly one of the ingests that read it.
    def added_and_present(results: list[dict[str, Any]]) -> tuple[int, int]:
        return sum(r["reports_added"] for r in results), sum(r["reports_present"] for r in results)

    assert all(r["items"] == 2 for rs in by_target.values() for r in rs if r["kind"] == "ingest")
    assert added_and_present(by_target[str(sc.digest)]) == (2, 2 * (WORKERS - 1))
    assert added_and_present(by_target[sc.feed_url]) == (2, 2 * (WORKERS - 1))
    assert added_and_present([by_target[str(sc.feeds[w])][0] for w in range(WORKERS)]) == (WORKERS + 1, WORKERS - 1)

    # Analyses made at once of the same bytes on the same record: one of them is written.
    written = Counter((r, sha) for o in by_target["all"] for r, sha, _, new in o["analyses"] if new)
    assert all(count == 1 for count in written.values()), written


def check_records(catalog: Catalog, sc: Scenario) -> set[str]:
    """Nothing lost, nothing twice: every distinct content and report on exactly one record,
    with one acquisition per operation that brought it.  Returns every SHA-256 on a record."""
    records = {r.id: r for r in catalog.records()}
    assert sorted(catalog.record_ids()) == sorted(records)
    assert len(records) == sc.records
    holders: dict[str, list[str]] = defaultdict(list)
    for record in records.values():
        shas = [entry.artifact.sha256 for entry in record.artifacts]
        assert len(shas) == len(set(shas)), f"record {record.id} holds the same bytes twice"
        for sha in shas:
            holders[sha].append(record.id)
        assert all(a.outcome is model.Outcome.SUCCEEDED for a in record.acquisitions)

    def only_holder(data: bytes) -> model.EvidenceRecord:
        [record_id] = holders[sha256(data)]
        return records[record_id]

    def roles(record: model.EvidenceRecord) -> Counter[Role]:
        """The roles of what the operations brought (not what analyses derived, checked below)."""
        return Counter(entry.role for entry in record.artifacts if entry.role is not Role.DERIVED)

    def brought(record: model.EvidenceRecord) -> list[model.Acquisition]:
        return [a for a in record.acquisitions if a.method is not Method.DERIVED]

    workers = sorted(operator_of(w) for w in range(WORKERS))
    for worker in range(WORKERS):
        for path in sc.own_files[worker]:
            record = only_holder(path.read_bytes())
            [acquisition] = brought(record)
            assert (acquisition.method, acquisition.operator.name) == (Method.ADDED_FROM_DISK, operator_of(worker))
            assert acquisition.original_path == str(path)
            assert [e.artifact.sha256 for e in record.artifacts if e.role is not Role.DERIVED] == [
                sha256(path.read_bytes())
            ]
        record = only_holder(sc.own_media[worker])
        [acquisition] = brought(record)
        assert (acquisition.method, acquisition.operator.name) == (Method.CAPTURED_FROM_URL, operator_of(worker))
        assert acquisition.requested_url == sc.own_urls[worker]
        assert roles(record) == Counter({Role.ORIGINAL: 1, Role.PLATFORM_METADATA: 1, Role.WEB_ARCHIVE: 1})

    for i, content in enumerate(sc.shared):
        record = only_holder(content)
        assert [e.artifact.sha256 for e in record.artifacts] == [sha256(content)]
        assert all(a.method is Method.ADDED_FROM_DISK for a in record.acquisitions)
        assert sorted(a.operator.name for a in record.acquisitions) == workers
        assert sorted(a.original_path or "" for a in record.acquisitions) == sorted(
            str(sc.shared_files[w][i]) for w in range(WORKERS)
        )

    record = only_holder(sc.cross)  # added by every worker, and captured by every worker
    assert Counter((a.method, a.operator.name) for a in brought(record)) == Counter(
        {(method, name): 1 for method in (Method.ADDED_FROM_DISK, Method.CAPTURED_FROM_URL) for name in workers}
    )
    assert all(a.requested_url == sc.cross_url for a in record.acquisitions if a.method is Method.CAPTURED_FROM_URL)
    assert [e.role for e in record.artifacts if e.artifact.sha256 == sha256(sc.cross)] == [Role.ORIGINAL]
    assert set(roles(record)) == {Role.ORIGINAL, Role.PLATFORM_METADATA, Role.WEB_ARCHIVE}

    record = only_holder(CLIP)  # the same page captured by every worker
    assert all(a.method is Method.CAPTURED_FROM_URL for a in brought(record))
    assert all((a.requested_url, a.artifact_sha256) == (sc.page_url, sha256(CLIP)) for a in brought(record))
    assert sorted(a.operator.name for a in brought(record)) == workers
    assert holders[sha256(sc.page_html)] == [record.id]
    assert (roles(record)[Role.ORIGINAL], roles(record)[Role.PAGE_SNAPSHOT]) == (1, 1)
    assert set(roles(record)) == {Role.ORIGINAL, Role.PAGE_SNAPSHOT, Role.PLATFORM_METADATA, Role.WEB_ARCHIVE}
    assert roles(record)[Role.WEB_ARCHIVE] == len(workers)  # each capture's own exchanges, archived
    assert all(entry.version_of is None for entry in record.artifacts)

    # Each video analysed once, on its record: what was derived is derived from it.
    videos = {sha256(v) for v in (*sc.own_media.values(), CLIP, sc.cross)}
    assert len(videos) == sc.videos
    for record in records.values():
        analyses = catalog.analyses(record.id)
        sources = {e.artifact.sha256 for e in record.artifacts if e.role is not Role.DERIVED} & videos
        assert [a.source_sha256 for _, a in analyses if a is not None] == sorted(sources), record.id
        assert all(a is not None and a.hashes and a.keyframes for _, a in analyses)
        made = {sha for _, a in analyses if a is not None for sha in a.derived_sha256s()}
        derived = [entry for entry in record.artifacts if entry.role is Role.DERIVED]
        assert {e.artifact.sha256 for e in derived} == made | {document for document, _ in analyses}
        assert all(entry.derived_from == tuple(sources) for entry in derived)

    # Reports: each identity once, on a record of its own, brought by the ingest that added it.
    documents = {operator_of(w): sha256(sc.feeds[w].read_bytes()) for w in range(WORKERS)}
    identities: Counter[str] = Counter()
    for record in records.values():
        for report in record.reports:
            assert report.identity is not None
            identities[report.identity] += 1
            [acquisition] = record.acquisitions
            assert acquisition.method is Method.INGESTED_FROM_FEED
            [entry] = record.artifacts
            assert entry.role is Role.SOURCE_DOCUMENT
            if report.identity.startswith("sha256:"):
                assert entry.artifact.sha256 == sha256(sc.digest.read_bytes())
            elif report.identity.startswith("rss:url-"):
                assert entry.artifact.sha256 == sha256(sc.feed_url_bytes)
                assert acquisition.requested_url == sc.feed_url
            else:  # from a worker's own feed file: the one the ingesting worker read
                assert entry.artifact.sha256 == documents[acquisition.operator.name]
                if report.identity != "rss:common-1":
                    assert report.identity == f"rss:own-{acquisition.operator.name.split()[-1]}"
    assert all(count == 1 for count in identities.values()), identities
    assert {i for i in identities if not i.startswith("sha256:")} == {
        "rss:common-1",
        "rss:url-1",
        "rss:url-2",
        *(f"rss:own-{w}" for w in range(WORKERS)),
    }
    assert sum(i.startswith("sha256:") for i in identities) == 2

    # Every artifact of every acquisition is on a record, and nothing else is.
    on_records = set(holders)
    acquired = {
        sha
        for record in records.values()
        for a in record.acquisitions
        for sha in (a.artifact_sha256, *a.other_artifacts)
        if sha is not None
    }
    assert acquired == on_records
    known = {
        *(sha256(p.read_bytes()) for w in range(WORKERS) for p in sc.own_files[w]),
        *(sha256(c) for c in sc.shared),
        sha256(sc.cross),
        *(sha256(m) for m in sc.own_media.values()),
        sha256(CLIP),
        sha256(sc.page_html),
        sha256(sc.digest.read_bytes()),
        sha256(sc.feed_url_bytes),
        *documents.values(),
    }
    assert len(known) == 28 and known <= on_records
    metadata = {e.artifact.sha256 for r in records.values() for e in r.artifacts if e.role is Role.PLATFORM_METADATA}
    derived = {e.artifact.sha256 for r in records.values() for e in r.artifacts if e.role is Role.DERIVED}
    archives = {e.artifact.sha256 for r in records.values() for e in r.artifacts if e.role is Role.WEB_ARCHIVE}
    # The rest is what yt-dlp said, one info.json per capture at most, and each capture's web archive.
    assert on_records - known - derived == metadata | archives
    assert WORKERS + 2 <= len(metadata) <= WORKERS * sc.captures_per_worker
    assert len(archives) == WORKERS * sc.captures_per_worker  # one per capture, each its own bytes
    with catalog.db.read() as session:
        catalogued = {sha for sha, _, _ in catalog.db.artifact_digests(session)}
    assert catalogued == on_records
    return on_records


def check_log(catalog: Catalog, sc: Scenario, artifacts: set[str]) -> int:
    """One linear log: seqs 1..n, each linked to the one before, exactly the events the
    operations log, a signed checkpoint after every write transaction (each a prefix of the one
    log), the latest covering all of it, and an inclusion proof that checks out."""
    history = catalog.history()
    n = len(history)
    assert [e.seq for e in history] == list(range(1, n + 1))
    previous = model.GENESIS_HASH
    for event in history:
        assert event.prev_hash == previous, f"event {event.seq} does not follow event {event.seq - 1}"
        assert event.hash == event_hash(event)
        previous = event.hash
    assert Counter(e.action for e in history) == sc.events
    summaries = [e.details for e in history if e.action == "digest.ingested"]
    assert sum(s["reports_added"] for s in summaries) == sc.reports
    assert sum(s["reports_added"] + s["reports_present"] for s in summaries) == 2 * len(summaries)
    assert n == sum(sc.events.values())
    per_worker = Counter(e.actor.name for e in history if e.action in ("artifact.added", "media.captured"))
    assert per_worker == Counter({operator_of(w): sc.adds_per_worker + sc.captures_per_worker for w in range(WORKERS)})
    per_worker = Counter(e.actor.name for e in history if e.action == "digest.ingested")
    assert per_worker == Counter({operator_of(w): sc.ingests_per_worker for w in range(WORKERS)})
    # Each record was created by exactly one event, and every event that names some bytes
    # describes them with the same document (the first writer's description wins).
    created = [e.subject for e in history if e.details.get("record_created")]
    assert len(created) == len(set(created)) == sc.records
    described: dict[str, set[str]] = defaultdict(set)
    for event in history:
        if event.action == "artifact.added":
            documents = [event.details["artifact"]]
        else:
            documents = [entry["artifact"] for entry in event.details.get("artifacts", ())]
        for document in documents:
            described[document["digests"]["sha256"]].add(json.dumps(document, sort_keys=True))
    assert set(described) == artifacts
    assert all(len(texts) == 1 for texts in described.values()), "bytes described differently by two events"

    leaves = [event_leaf(e) for e in history]
    name, public = catalog.log_key.public()
    with catalog.db.read() as session:
        checkpoints = [(row.tree_size, row.root_hash, row.note, row.signed) for row in catalog.db.checkpoints(session)]
    assert len(checkpoints) == sc.transactions
    sizes = [size for size, *_ in checkpoints]
    assert sizes == sorted(set(sizes)) and sizes[-1] == n, "checkpoints must grow with every write, never fork"
    for size, root_hash, note, signed in checkpoints:
        assert signed
        checkpoint = verify_checkpoint(note, name, public)
        assert checkpoint.size == size and checkpoint.root == mth(leaves[:size]) and root_hash == checkpoint.root.hex()
    # Each write transaction is one operation by one worker: an ingest's events are not interleaved.
    for start, end in zip([0, *sizes], sizes, strict=False):
        actions = [e.action for e in history[start:end]]
        assert len({e.actor.name for e in history[start:end]}) == 1
        one_ingest = actions[-1] == "digest.ingested" and set(actions[:-1]) <= {"report.ingested"}
        assert len(actions) == 1 or one_ingest, actions
        if actions[-1] == "digest.ingested":
            assert history[end - 1].details["reports_added"] == len(actions) - 1

    latest = catalog.checkpoint()  # the workers' last write left it: no new one is made
    assert (latest.size, latest.signed, latest.note) == (n, True, checkpoints[-1][2])
    size, root = note_root(latest.note)
    assert (size, root) == (n, mth(leaves))
    middle = n // 2
    proof = catalog.inclusion_proof(middle)
    assert (proof.seq, proof.leaf_index, proof.tree_size) == (middle, middle - 1, n)
    assert proof.leaf_hash == leaves[middle - 1].hex() and proof.root == root.hex()
    assert proof.checkpoint == latest.note
    path = [bytes.fromhex(h) for h in proof.proof]
    assert merkle.verify_inclusion(middle - 1, n, leaves[middle - 1], path, root)
    assert not merkle.verify_inclusion(middle - 1, n, leaves[middle], path, root)
    return n


def check_clean_and_verified(catalog: Catalog, sc: Scenario, artifacts: set[str], events: int) -> None:
    report = catalog.fsck()
    assert (report.orphaned_blobs, report.temporary, report.quarantined) == ((), (), ())
    assert report.clean
    verified = catalog.verify()
    assert verified.ok, verified.findings
    assert (verified.records_checked, verified.artifacts_checked, verified.events_checked) == (
        sc.records,
        len(artifacts),
        events,
    )
    assert verified.logged and len(catalog.history()) == events + 1


def check_all(
    catalog_dir: Path,
    sc: Scenario,
    outcomes: list[list[dict[str, Any]]],
    stored: Callable[[], list[str]],
    *,
    local_blobs: bool,
) -> None:
    check_outcomes(sc, outcomes, local_blobs=local_blobs)
    with Catalog.open(catalog_dir, operator="Checker") as catalog:
        # What was captured after every worker had analysed is analysed now: each video's
        # analysis written once, by a worker or here.
        finished = [(r.record_id, r.sha256) for r in catalog.analyze(all_records=True) if r.new]
        by_workers = [
            (r, sha)
            for o in outcomes
            for step in o
            if step["kind"] == "analyze"
            for r, sha, _, new in step["analyses"]
            if new
        ]
        assert len(by_workers) + len(finished) == len(set(by_workers) | set(finished)) == sc.videos
        artifacts = check_records(catalog, sc)
        names = stored()
        assert len(names) == len(set(names)) == len(artifacts), "a blob is stored twice, or one is missing"
        assert set(names) == artifacts
        events = check_log(catalog, sc, artifacts)
        check_clean_and_verified(catalog, sc, artifacts, events)


def local_blob_names(catalog_dir: Path) -> Callable[[], list[str]]:
    def names() -> list[str]:
        root = catalog_dir / "blobs" / "sha256"
        found = [p for p in root.rglob("*") if p.is_file()]
        for path in found:  # sha256/ab/cd/abcd…: at its own address
            assert path.relative_to(root).parts == (path.name[:2], path.name[2:4], path.name)
        return [p.name for p in found]

    return names


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend",
    [pytest.param("sqlite", marks=pytest.mark.sqlite_only), "postgresql"],
)
def test_four_processes_adding_capturing_and_ingesting_lose_nothing_and_keep_one_log(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, server: MediaServer, base: str
) -> None:
    database = request.getfixturevalue("pg_database") if backend == "postgresql" else None
    catalog_dir = tmp_path / "catalog"
    Catalog.init(catalog_dir, operator="Coordinator", database=database).close()
    assert (catalog_dir / "catalog.db").is_file() == (backend == "sqlite")
    sc = prepare(tmp_path, server, base)

    outcomes = run_workers(catalog_dir, sc, tmp_path)

    check_all(catalog_dir, sc, outcomes, local_blob_names(catalog_dir), local_blobs=True)


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, with test credentials in the environment (inherited by the
    worker processes)."""
    from moto.server import ThreadedMotoServer

    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # a free port
    moto.start()
    host, port = moto.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        moto.stop()


def test_four_processes_on_postgresql_with_blobs_in_s3_lose_nothing_and_keep_one_log(
    pg_database: str, s3_endpoint: str, tmp_path: Path, server: MediaServer, base: str
) -> None:
    import boto3  # type: ignore[import-untyped]

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket, prefix = f"evidence-{uuid.uuid4().hex[:8]}", "team/catalog"
    s3.create_bucket(Bucket=bucket)
    catalog_dir = tmp_path / "catalog"
    Catalog.init(
        catalog_dir,
        operator="Coordinator",
        database=pg_database,
        blobs=f"s3://{bucket}/{prefix}",
        blobs_endpoint_url=s3_endpoint,
    ).close()
    sc = prepare(tmp_path, server, base)

    def keys(under: str) -> list[str]:
        found: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/{under}"):
            found += [item["Key"] for item in page.get("Contents", [])]
        return found

    def names() -> list[str]:
        found = keys("sha256/")
        for key in found:
            sha = key.rsplit("/", 1)[-1]
            assert key == f"{prefix}/sha256/{sha[:2]}/{sha[2:4]}/{sha}"
        assert keys("tmp/") == [] and keys("quarantine/") == []
        assert sorted(keys("")) == sorted(found)  # nothing else in the store
        return [key.rsplit("/", 1)[-1] for key in found]

    outcomes = run_workers(catalog_dir, sc, tmp_path)

    assert not (catalog_dir / "blobs").exists()  # every byte went to the object store
    check_all(catalog_dir, sc, outcomes, names, local_blobs=False)
