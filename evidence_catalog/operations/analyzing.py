"""``analyze``: what a record's images and videos show, derived from their stored bytes.

For each image or video on a record, the analysis derives perceptual hashes (PDQ, of the image
as displayed or of a video's frames sampled at a regular interval), keyframes and a contact
sheet of a video, and the C2PA Content Credentials a file carries.  The adapters in
:mod:`evidence_catalog.extract` do the work, each in a child process under time and memory
limits, on a copy of the *stored* bytes; a failure is said in the analysis's ``errors``, never
raised, and the evidence itself is never touched.

What they derive is written as one document, :class:`~evidence_catalog.analysis.MediaAnalysis`
(canonical JSON, no time in it), stored as an artifact derived from the analysed one, beside
the keyframes, the contact sheet and the manifest store; an acquisition of method ``derived``
names the tools, their versions and the parameters; a ``media.analyzed`` custody event logs it
all, and the hashes go into the similarity index, in one transaction.  A process killed before
that transaction leaves stored bytes no record names (``fsck`` lists them) and a record as it
was: ``analyze`` again finishes the work.

The same bytes analysed again by the same tools give the same document: nothing new is written
(``new`` is false in the result), which is what makes ``analyze --all`` safe to run again, and
after a tool upgrade the new tools' analysis is added beside the old one.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import hashlib
import os
import stat
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from evidence_catalog import model
from evidence_catalog.analysis import ContentCredentials, Keyframe, MediaAnalysis
from evidence_catalog.custody import Action
from evidence_catalog.errors import EvidenceError, InputError, IntegrityError, StorageError
from evidence_catalog.operations import common
from evidence_catalog.operations.context import Context
from evidence_catalog.paths import display_path
from evidence_catalog.serialize import canonical_json, from_document, to_document

if TYPE_CHECKING:
    from evidence_catalog.results import AnalysisResult
    from evidence_catalog.store.blobstore import StoredBlob

# What an analysis returns and logs (its result type, the replay of its event) is imported by the
# functions that analyse: reading a record's analyses (``show``) needs neither.

#: How the ``derivation`` of an artifact an analysis made starts.
DERIVATION = "media analysis"
#: Roles of the artifacts an analysis looks at: the evidence and what came with it from the
#: source (a platform's thumbnail is a picture a person may search for too).
ANALYSED_ROLES = frozenset(
    {
        model.ArtifactRole.ORIGINAL,
        model.ArtifactRole.THUMBNAIL,
        model.ArtifactRole.PAGE_SNAPSHOT,
        model.ArtifactRole.DERIVED,
    }
)

#: The catalog's C2PA trust list: PEM certificates of the signers' roots a person has chosen to
#: trust, in this file of the catalog folder.  Without it, an intact credential is ``valid``,
#: never ``trusted``.
TRUST_ANCHORS_FILE = "c2pa-trust-anchors.pem"
#: The largest trust list read (a list of every C2PA signer's root is far smaller).
MAX_TRUST_ANCHORS_BYTES = 16 * 1024 * 1024
#: A progress callback: (what was analysed, how many so far, how many in all).
AnalyzeProgress = Callable[[str, int, int], None]


def analyze(
    ctx: Context,
    record_ids: Sequence[str] = (),
    *,
    all_records: bool = False,
    force: bool = False,
    progress: AnalyzeProgress | None = None,
) -> list[AnalysisResult]:
    """Analyse the images and videos of the records named (or of every record with
    ``all_records=True``): perceptual hashes, keyframes, Content Credentials.

    Each analysed artifact gets one result.  An artifact already analysed by the same tools
    with the same parameters is skipped (``new`` false) unless *force* is true, in which case
    it is analysed again: an identical document is still not written twice.  Raises
    :class:`~evidence_catalog.errors.InputError` for an unknown record id, or when neither ids
    nor ``all_records`` are given."""
    from evidence_catalog.results import AnalysisResult

    common.check_writable(ctx, "; nothing can be analysed in it")
    if bool(record_ids) == all_records:
        raise InputError("name the records to analyse, or ask for all of them (not both)", where="record_ids")
    with ctx.db.read() as session:
        if all_records:
            ids = list(ctx.db.record_ids(session))
        else:
            ids = list(dict.fromkeys(record_ids))
            for record_id in ids:
                common.check_record_exists(ctx, session, record_id, where="record_ids")
    todo = [(record_id, sha) for record_id in ids for sha in _analysable(ctx, record_id)]
    results = []
    with contextlib.closing(analysed_in_turn(ctx, todo, force=force)) as analysed:
        for done, ((record_id, sha), outcome) in enumerate(zip(todo, analysed, strict=True), start=1):
            if isinstance(outcome, IntegrityError):  # its stored bytes are damaged: said, and the others analysed
                outcome = AnalysisResult(
                    record_id=record_id, sha256=sha, document_sha256=None, new=False, errors=(str(outcome),)
                )
            elif isinstance(outcome, EvidenceError):
                raise outcome
            results.append(outcome)
            if progress is not None:
                progress(sha, done, len(todo))
    return results


def _analysable(ctx: Context, record_id: str) -> list[str]:
    """The SHA-256s of a record's images and videos that an analysis looks at."""
    return [sha for sha, _ in _analysable_entries(ctx, record_id)]


def _analysable_entries(ctx: Context, record_id: str) -> list[tuple[str, str]]:
    """``(SHA-256, media type)`` of a record's images and videos that an analysis looks at."""
    with ctx.db.read() as session:
        record = ctx.db.record(session, record_id)
    made = derived_by_analyses(record)
    return [
        (e.artifact.sha256, e.artifact.media_type)
        for e in record.artifacts
        if e.artifact.sha256 not in made and wanted(e)
    ]


def analyze_records_added(
    ctx: Context, record_ids: Iterable[str | None], on_analyzed: Callable[[AnalysisResult], None] | None = None
) -> list[AnalysisResult]:
    """:func:`analyze_added` for every image and video of the records a capture or an ingest
    stored bytes on (what the same tools analysed already is skipped)."""
    items = [
        (record_id, sha, media_type)
        for record_id in dict.fromkeys(r for r in record_ids if r is not None)
        for sha, media_type in _analysable_entries(ctx, record_id)
    ]
    return analyze_added(ctx, items, on_analyzed)


def wanted(entry: model.RecordArtifact) -> bool:
    """Whether an artifact on a record is of a kind and role an analysis looks at."""
    return entry.role in ANALYSED_ROLES and analysable(entry.artifact.media_type)


def document_shas(record: model.EvidenceRecord) -> list[str]:
    """The SHA-256s of a record's analysis documents, oldest first: the main artifacts of its
    successful acquisitions of method ``derived`` (those ``verify`` reads and holds the index
    against, :meth:`~evidence_catalog.store.records.Records.derived_documents`)."""
    return [
        a.artifact_sha256
        for a in record.acquisitions
        if a.method is model.AcquisitionMethod.DERIVED
        and a.outcome is model.Outcome.SUCCEEDED
        and a.artifact_sha256 is not None
    ]


def analysis_documents(record: model.EvidenceRecord) -> list[tuple[str, str]]:
    """``(analysed artifact, analysis document)`` SHA-256 pairs of a record, oldest first: each
    of :func:`document_shas` that the record says was derived from one artifact."""
    found = []
    for document in document_shas(record):
        entry = record.artifact(document)
        if entry is not None and len(entry.derived_from) == 1:
            found.append((entry.derived_from[0], document))
    return found


def derived_by_analyses(record: model.EvidenceRecord) -> set[str]:
    """Every artifact of a record that an analysis made (documents, keyframes, sheets, stores):
    never analysed in turn."""
    made: set[str] = set()
    for acquisition in record.acquisitions:
        if acquisition.method is model.AcquisitionMethod.DERIVED and acquisition.artifact_sha256 is not None:
            made.update((acquisition.artifact_sha256, *acquisition.other_artifacts))
    return made


def analysable(media_type: str) -> bool:
    """Whether an analysis can look at bytes of this media type."""
    from evidence_catalog.extract import credentials, perceptual  # Pillow, PyAV, c2pa: only here

    return bool(perceptual.analysable(media_type) or credentials.supported(media_type))


#: The Python distribution behind each tool an analysis names, whose installed version is the
#: tool's version here.  A tool not listed (FFmpeg, c2pa-rs) comes with one that is (PyAV's
#: wheels carry their FFmpeg, c2pa-python's its c2pa-rs).
DISTRIBUTIONS = {
    "pdqhash": "pdqhash",
    "Pillow": "pillow",
    "PyAV": "av",
    "numpy": "numpy",
    "c2pa-python": "c2pa-python",
}


def same_tools(tools: Sequence[model.Agent]) -> bool:
    """Whether the tools an analysis names are, version for version, the ones installed here
    (each tool's version text starts with its distribution's version)."""
    from importlib.metadata import PackageNotFoundError, version

    for tool in tools:
        distribution = DISTRIBUTIONS.get(tool.name)
        if distribution is None:
            continue
        try:
            installed = version(distribution)
        except PackageNotFoundError:
            return False
        if tool.version is None or tool.version.split()[0] != installed:
            return False
    return bool(tools)


def earlier_analyses(ctx: Context, record_id: str, sha256: str) -> list[MediaAnalysis]:
    """The analyses of artifact *sha256* on the record, oldest first, read from their stored
    documents (a document that cannot be read is left out: ``verify`` reports it)."""
    with ctx.db.read() as session:
        record = ctx.db.record(session, record_id)
    found = []
    for source, document in analysis_documents(record):
        analysis = read_analysis(ctx, document) if source == sha256 else None
        if analysis is not None and analysis.source_sha256 == sha256:
            found.append(analysis)
    return found


#: The most bytes of an analysis document read (one is far smaller; a larger file is no analysis).
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


def read_analysis(ctx: Context, sha256: str) -> MediaAnalysis | None:
    """The analysis document stored under *sha256*, or ``None`` when it cannot be read."""
    try:
        with ctx.blobs.open(sha256) as stream:
            data = stream.read(MAX_DOCUMENT_BYTES + 1)
    except OSError:
        return None
    return parse_analysis(data)


def parse_analysis(data: bytes) -> MediaAnalysis | None:
    """The analysis the document *data* holds, or ``None`` when it holds none (verify says why)."""
    from evidence_catalog.store.engine import strict_json

    try:
        return from_document(strict_json(data), MediaAnalysis)
    except (ValueError, TypeError, RecursionError, EvidenceError) as exc:  # not an analysis: verify says so
        del exc
        return None


def analyze_artifact(ctx: Context, record_id: str, sha256: str, *, force: bool = False) -> AnalysisResult:
    """Analyse one artifact of a record and write what was derived (see the module's text)."""
    return _analyze_one(ctx, record_id, sha256, force=force, anchors=trust_anchors(ctx))


def _analyze_one(ctx: Context, record_id: str, sha256: str, *, force: bool, anchors: bytes | None) -> AnalysisResult:
    """:func:`analyze_artifact`, the catalog's trust list read already (*anchors*)."""
    from evidence_catalog.results import AnalysisResult

    found = _look_up(ctx, record_id, sha256, force=force, anchors=anchors)
    if isinstance(found, AnalysisResult):
        return found
    started_at = ctx.clock()
    derived = _derive_stored(ctx, sha256, found, anchors)
    return _recorded(ctx, record_id, derived, started_at, max(ctx.clock(), started_at))


@attrs.frozen
class _Derived:
    """What the analysers made of one artifact's stored bytes: stored, not yet recorded."""

    source: model.Artifact
    analysis: MediaAnalysis
    document: StoredBlob
    #: Each file made (what it is, its path in the work area, now gone) and its stored blob.
    files: list[tuple[str, Path]]
    stored: dict[Path, StoredBlob]


def _look_up(
    ctx: Context, record_id: str, sha256: str, *, force: bool, anchors: bytes | None
) -> AnalysisResult | model.Artifact:
    """The result of an earlier analysis by the same tools (unless *force*), else the artifact
    to analyse; an :class:`~evidence_catalog.errors.InputError` when it is not catalogued."""
    if not force:
        for earlier in earlier_analyses(ctx, record_id, sha256):
            if same_tools(earlier.tools) and same_trust(earlier, anchors) and machine_stop(earlier) is None:
                return _result(record_id, earlier, document=None, new=False)
    with ctx.db.read() as session:
        source = ctx.db.artifact(session, sha256)
    if source is None:
        raise InputError(f"artifact {sha256} is not in the catalog", where="sha256")
    return source


def _derive_stored(
    ctx: Context, sha256: str, source: model.Artifact, anchors: bytes | None, stop: Callable[[], None] | None = None
) -> _Derived:
    """Run the analysers on the artifact's stored bytes and store what they made; nothing is
    recorded, and the database is not touched (so worker threads may run this).  *stop* is
    called while the bytes are checked, to raise when the caller has stopped."""
    try:
        with common.work_area(ctx, f"analyze-{model.new_id()}") as work, ctx.blobs.local_copy(sha256) as path:
            check_copy(path, source, stop=stop)
            analysis, files = derive(path, source.media_type, sha256, work, trust_anchors=anchors)
            stored = {role_path: ctx.blobs.adopt_file(role_path) for _, role_path in files}
            analysis = with_digests(analysis, files, {path: blob.sha256 for path, blob in stored.items()})
            document = work / "analysis.json"
            document.write_bytes(canonical_json(to_document(analysis)))
            doc_blob = ctx.blobs.adopt_file(document)
    except OSError as exc:  # the work area's files (a full disk): a storage error, as the blob store's are
        raise StorageError(
            f"the analysis of {sha256} could not be stored ({exc.strerror or exc})", where=display_path(ctx.path)
        ) from exc
    return _Derived(source, analysis, doc_blob, files, stored)


def _recorded(
    ctx: Context, record_id: str, derived: _Derived, started_at: dt.datetime, ended_at: dt.datetime
) -> AnalysisResult:
    new = _record_analysis(ctx, record_id, derived, started_at, ended_at)
    moved = common.quarantined_by([derived.document, *derived.stored.values()])
    return _result(record_id, derived.analysis, document=derived.document.sha256, new=new, quarantined=moved)


#: Files analysed at once.  The analysers' child processes do the work, so two keep both CPUs
#: of a small machine busy while this process records the file before; more would only share
#: them, and hold more decoders' memory (a video's may use its whole limit).
WORKERS = 2


def analysed_in_turn(
    ctx: Context, todo: Sequence[tuple[str, str]], *, force: bool = False
) -> Generator[AnalysisResult | EvidenceError, None, None]:
    """:func:`analyze_artifact` of each ``(record id, SHA-256)`` of *todo*, in its order: the
    next :data:`WORKERS` are analysed in threads while one is recorded here (each record's
    writes, its clock readings and its similarity look-ups stay in the caller's thread and
    order).  An :class:`~evidence_catalog.errors.EvidenceError` an artifact's analysis raised
    is yielded in its place.  Interrupted (or closed early), the analyses under way are
    stopped, their child processes killed, and nothing more is recorded."""
    from evidence_catalog.results import AnalysisResult

    try:
        anchors = trust_anchors(ctx)
    except EvidenceError as exc:  # the catalog's trust list: no artifact can be analysed
        for _ in todo:
            yield exc
        return
    if len(todo) < 2:  # no thread for one file
        for record_id, sha256 in todo:
            try:
                yield _analyze_one(ctx, record_id, sha256, force=force, anchors=anchors)
            except EvidenceError as exc:
                yield exc
        return
    from concurrent.futures import Future, ThreadPoolExecutor

    from evidence_catalog.extract import sandbox

    cancellation = sandbox.Cancellation()

    def work(sha256: str, source: model.Artifact) -> _Derived:
        with cancellation.applied():  # stopped, it starts no reader (not even one not begun yet)
            return _derive_stored(ctx, sha256, source, anchors, stop=cancellation.check)

    pending: collections.deque[tuple[tuple[str, str], Any, dt.datetime | None]] = collections.deque()
    under_way: collections.Counter[tuple[str, str]] = collections.Counter()  # the keys in pending
    items = iter(todo)
    item = next(items, None)
    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="evidence-catalog-analyze")
    try:
        while True:
            # Looked up ahead, but never past an artifact already under way: the second time, it
            # is found analysed, as one at a time finds it.
            while len(pending) <= WORKERS and item is not None and not under_way[item]:
                key, item = item, next(items, None)
                under_way[key] += 1
                try:
                    found = _look_up(ctx, *key, force=force, anchors=anchors)
                except EvidenceError as exc:
                    pending.append((key, exc, None))
                    continue
                if isinstance(found, AnalysisResult):
                    pending.append((key, found, None))
                else:
                    pending.append((key, pool.submit(work, key[1], found), ctx.clock()))
            if not pending:
                return
            key, outcome, started_at = pending.popleft()
            under_way[key] -= 1
            if isinstance(outcome, Future):
                assert started_at is not None
                try:
                    outcome = _recorded(ctx, key[0], outcome.result(), started_at, max(ctx.clock(), started_at))
                except EvidenceError as exc:
                    outcome = exc
            yield outcome
    except BaseException:  # an interrupt, an error, or the caller stopped early: stop the others
        for _, outcome, _ in pending:
            if isinstance(outcome, Future):
                outcome.cancel()
        cancellation.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_copy(path: Path, artifact: model.Artifact, *, stop: Callable[[], None] | None = None) -> None:
    """Refuse to analyse stored bytes that are not the artifact's (damaged, or gone): their
    analysis would be recorded, for good, as the artifact's.  An
    :class:`~evidence_catalog.errors.IntegrityError` says so.  *stop*, if given, is called
    after each block read (an interrupted analysis of a large video need not hash it all)."""
    from evidence_catalog.hashing import hash_file

    where = f"artifact {artifact.sha256}"
    try:
        digests, size = hash_file(os.fsencode(path), progress=None if stop is None else lambda _: stop())
    except OSError as exc:
        raise IntegrityError(
            f"its stored bytes cannot be read ({exc.strerror}); it was not analysed", where=where
        ) from exc
    if digests.sha256 != artifact.sha256 or size != artifact.size:
        raise IntegrityError(
            "its stored bytes are not the ones recorded (`verify` says more; adding the original file again "
            "restores them); it was not analysed",
            where=where,
        )


def machine_stop(analysis: MediaAnalysis) -> str | None:
    """Why an analysis says nothing of part of the file because an analyser stopped for a reason
    of the machine that ran it (a limit, a crash, a library missing), or ``None``.  Such an
    analysis is kept (it happened) but made again by the next ``analyze``."""
    from evidence_catalog.extract import credentials, perceptual

    found = perceptual.stopped_by_the_machine(analysis.errors)
    if found is None and analysis.credentials is not None:
        found = credentials.stopped_by_the_machine(analysis.credentials.errors)
    return found


def trust_anchors(ctx: Context) -> bytes | None:
    """The C2PA trust list configured for the catalog: the PEM certificates in
    :data:`TRUST_ANCHORS_FILE` in its folder, ``None`` when there is no such file.  An
    :class:`~evidence_catalog.errors.InputError` when it is not a regular file of PEM
    certificates of at most :data:`MAX_TRUST_ANCHORS_BYTES`."""
    path = ctx.path / TRUST_ANCHORS_FILE
    try:
        # Only a regular file, and only so much of it: a pipe there would block every analysis
        # and verification, and a link to /dev/zero would read until memory runs out.
        if not stat.S_ISREG(path.stat().st_mode):
            raise InputError("is not a regular file", where=str(TRUST_ANCHORS_FILE))
        with path.open("rb") as stream:
            data = stream.read(MAX_TRUST_ANCHORS_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", where=str(TRUST_ANCHORS_FILE)) from exc
    if len(data) > MAX_TRUST_ANCHORS_BYTES:
        raise InputError(f"is over {MAX_TRUST_ANCHORS_BYTES:,} bytes", where=str(TRUST_ANCHORS_FILE))
    from evidence_catalog.extract import credentials

    try:
        credentials.check_trust_anchors(data)
    except InputError as exc:
        raise InputError(str(exc), where=str(TRUST_ANCHORS_FILE)) from None
    return data


def same_trust(earlier: MediaAnalysis, anchors: bytes | None) -> bool:
    """Whether an earlier analysis checked Content Credentials against the same trust list."""
    from evidence_catalog.extract import credentials

    wanted = credentials.parameters(anchors)
    return all(earlier.parameters.get(name) == value for name, value in wanted.items() if name in earlier.parameters)


def derive(
    path: Path, media_type: str, sha256: str, work: Path, *, trust_anchors: bytes | None = None
) -> tuple[MediaAnalysis, list[tuple[str, Path]]]:
    """Run the analysers on the bytes at *path*: the analysis (derived artifacts' SHA-256s not
    yet filled in) and the files it made, each with what it is (``keyframe@12.0``,
    ``contact-sheet``, ``c2pa-manifest-store``)."""
    from evidence_catalog.extract import credentials, perceptual

    tools: list[model.Agent] = []
    parameters: dict[str, str] = {}
    errors: list[str] = []
    files: list[tuple[str, Path]] = []
    hashes: tuple[Any, ...] = ()
    found_credentials: ContentCredentials | None = None
    if perceptual.analysable(media_type):
        (work / "perceptual").mkdir(exist_ok=True)
        seen = perceptual.perceptual_hashes(path, media_type, work=work / "perceptual")
        hashes = seen.hashes
        tools.extend(seen.tools)
        parameters.update(seen.parameters)
        errors.extend(seen.errors)
        files.extend((f"keyframe@{offset!r}", frame) for offset, frame in seen.keyframes)
        if seen.contact_sheet is not None:
            files.append(("contact-sheet", seen.contact_sheet))
    if credentials.supported(media_type):
        (work / "c2pa").mkdir(exist_ok=True)
        read = credentials.read_credentials(path, media_type, work=work / "c2pa", trust_anchors=trust_anchors)
        found_credentials = read.credentials
        tools.extend(read.tools)
        parameters.update(read.parameters)
        if read.manifest_store is not None:
            files.append(("c2pa-manifest-store", read.manifest_store))
    analysis = MediaAnalysis(
        source_sha256=sha256,
        source_media_type=media_type,
        tools=tuple(dict.fromkeys(tools)),
        parameters=parameters,
        hashes=hashes,
        credentials=found_credentials,
        errors=tuple(errors),
    )
    return analysis, files


def with_digests(analysis: MediaAnalysis, files: list[tuple[str, Path]], digests: dict[Path, str]) -> MediaAnalysis:
    """The analysis naming the derived files by their SHA-256s (*digests*, by file)."""
    keyframes = []
    contact_sheet = None
    credentials = analysis.credentials
    for what, path in files:
        sha = digests[path]
        if what.startswith("keyframe@"):
            keyframes.append(Keyframe(offset_s=float(what.removeprefix("keyframe@")), sha256=sha))
        elif what == "contact-sheet":
            contact_sheet = sha
        elif what == "c2pa-manifest-store" and credentials is not None:
            credentials = attrs.evolve(credentials, manifest_store_sha256=sha)
    return attrs.evolve(
        analysis, keyframes=tuple(keyframes), contact_sheet_sha256=contact_sheet, credentials=credentials
    )


def _what(kind: str) -> str:
    """A derived file's kind said in words: ``keyframe@12.0`` is "keyframe at 12.0 s"."""
    if kind.startswith("keyframe@"):
        return f"keyframe at {kind.removeprefix('keyframe@')} s"
    return kind.replace("-", " ")


def _derivation(what: str, analysis: MediaAnalysis) -> str:
    """The ``derivation`` text of a derived artifact: what it is and with which tools."""
    tools = ", ".join(f"{t.name} {t.version}" if t.version else t.name for t in analysis.tools)
    return f"{DERIVATION}: {what} ({tools})" if tools else f"{DERIVATION}: {what}"


def _record_analysis(
    ctx: Context, record_id: str, derived: _Derived, started_at: dt.datetime, ended_at: dt.datetime
) -> bool:
    """Write the analysis, its derived artifacts, its acquisition, its custody event and its
    hashes in one transaction; False when the record already held this very document."""
    from evidence_catalog.replay import captured_details

    source, analysis, doc_blob, stored = derived.source, derived.analysis, derived.document, derived.stored
    described: dict[str, model.Artifact] = {}
    for blob in (doc_blob, *stored.values()):
        if blob.sha256 not in described:
            described[blob.sha256] = common.describe(ctx, blob)
    entries = [
        model.RecordArtifact(
            artifact=described[doc_blob.sha256],
            role=model.ArtifactRole.DERIVED,
            derived_from=(source.sha256,),
            derivation=_derivation("perceptual hashes and Content Credentials", analysis),
        )
    ]
    for what, path in derived.files:
        sha = stored[path].sha256
        if any(entry.artifact.sha256 == sha for entry in entries):
            continue
        entries.append(
            model.RecordArtifact(
                artifact=described[sha],
                role=model.ArtifactRole.DERIVED,
                derived_from=(source.sha256,),
                derivation=_derivation(_what(what), analysis),
            )
        )
    acquisition = common.new_acquisition(
        ctx,
        model.AcquisitionMethod.DERIVED,
        started_at,
        ended_at,
        tools=analysis.tools,
        artifact_sha256=doc_blob.sha256,
        other_artifacts=tuple(entry.artifact.sha256 for entry in entries[1:]),
        settings=tuple(f"{name}={value}" for name, value in sorted(analysis.parameters.items())),
    )
    with ctx.write() as session:
        common.check_record_exists(ctx, session, record_id, where="record_id")
        held = set(ctx.db.artifacts_of(session, record_id))
        if doc_blob.sha256 in held:
            return False
        for index, entry in enumerate(entries):
            catalogued = ctx.db.artifact(session, entry.artifact.sha256)
            if catalogued is not None and catalogued != entry.artifact:
                entries[index] = attrs.evolve(entry, artifact=catalogued)
        event = ctx.db.append_event(
            session,
            at=ended_at,
            actor=ctx.operator,
            action=Action.MEDIA_ANALYZED,
            subject=record_id,
            details=captured_details(record=None, entries=entries, acquisition=acquisition, tags=(), note=None),
        )
        for entry in entries:
            if ctx.db.artifact(session, entry.artifact.sha256) is None:
                common.add_artifact(ctx, session, entry.artifact, at=ended_at)
            ctx.db.attach_artifact(session, record_id, entry)
        ctx.db.add_acquisition(session, record_id, acquisition, event.seq)
        _index_hashes(ctx, session, record_id, analysis, doc_blob.sha256)
    return True


def _index_hashes(ctx: Context, session: Any, record_id: str, analysis: MediaAnalysis, document: str) -> None:
    """Put the analysis's hashes in the similarity index (in the same transaction)."""
    ctx.db.add_hashes(session, record_id, analysis.source_sha256, document, analysis.hashes)


def _result(
    record_id: str,
    analysis: MediaAnalysis,
    *,
    document: str | None,
    new: bool,
    quarantined: tuple[tuple[str, str], ...] = (),
) -> AnalysisResult:
    from evidence_catalog.results import AnalysisResult

    credentials = analysis.credentials
    return AnalysisResult(
        record_id=record_id,
        sha256=analysis.source_sha256,
        document_sha256=document,
        new=new,
        hashes=len(analysis.hashes),
        usable_hashes=len(analysis.usable_hashes()),
        keyframes=len(analysis.keyframes),
        credentials=None if credentials is None else credentials.state.value,
        errors=analysis.errors if credentials is None else (*analysis.errors, *credentials.errors),
        quarantined=quarantined,
    )


def document_digest(analysis: MediaAnalysis) -> str:
    """The SHA-256 of an analysis's document: what the same analysis made again must match."""
    return hashlib.sha256(canonical_json(to_document(analysis))).hexdigest()


def analyses(ctx: Context, record_id: str) -> list[tuple[str, MediaAnalysis | None]]:
    """Every analysis of a record's images and videos, oldest first: ``(document SHA-256, the
    analysis)``, the analysis ``None`` where its document cannot be read (``verify`` says why).
    Raises :class:`~evidence_catalog.errors.NotFoundError` for an unknown record."""
    with ctx.db.read() as session:
        common.check_record_exists(ctx, session, record_id, where="record_id")
        record = ctx.db.record(session, record_id)
    return [(document, read_analysis(ctx, document)) for _, document in analysis_documents(record)]


def looks_like(ctx: Context, record_id: str, sha256: str) -> tuple[str, ...]:
    """The other records holding an image or video within PDQ's customary distance of the
    artifact *sha256* (best first): a finding for a person to judge, never a merge."""
    from evidence_catalog.operations.similar import similar

    matches = similar(ctx, sha256)
    return tuple(dict.fromkeys(m.record_id for m in matches if m.record_id != record_id))


def analyze_added(
    ctx: Context,
    added: Iterable[tuple[str | None, str | None, str | None]],
    on_analyzed: Callable[[AnalysisResult], None] | None = None,
) -> list[AnalysisResult]:
    """Analyse what an add, a capture or an ingest just catalogued: ``(record id, SHA-256,
    media type)`` of each new artifact on a record (others are skipped at once, by their media
    type).  The evidence is catalogued already: an analysis that cannot be written (a full
    disk) is a result whose ``errors`` say so and that ``analyze`` can finish later, never an
    error of the add."""
    todo = [
        (record_id, sha256)
        for record_id, sha256, media_type in dict.fromkeys(added)
        if record_id is not None and sha256 is not None and media_type is not None and analysable(media_type)
    ]
    results = []
    with contextlib.closing(analysed_in_turn(ctx, todo)) as analysed:
        for (record_id, sha256), outcome in zip(todo, analysed, strict=True):
            if isinstance(outcome, EvidenceError):
                result = _unwritten(record_id, sha256, outcome)
            else:
                result = outcome
                if result.new and result.usable_hashes:
                    try:
                        result = attrs.evolve(result, looks_like=looks_like(ctx, record_id, sha256))
                    except EvidenceError as exc:
                        result = _unwritten(record_id, sha256, exc)
            results.append(result)
            if on_analyzed is not None:
                on_analyzed(result)
    return results


def _unwritten(record_id: str, sha256: str, error: EvidenceError) -> AnalysisResult:
    from evidence_catalog.results import AnalysisResult

    return AnalysisResult(
        record_id=record_id,
        sha256=sha256,
        document_sha256=None,
        new=False,
        errors=(f"the analysis could not be written ({error}); run `analyze {record_id}` again",),
    )
