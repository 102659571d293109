"""``verify``'s check of what analyses derived: documents read, the similarity index held
against them, and a sample of analyses (all of them with ``deep``) made again and compared.

An analysis document's bytes are checked like every artifact's (their digests); what is
checked here is what they *say*:

- every document reads as an analysis of the artifact its record says it was derived from,
  and names only derived artifacts that record holds (:class:`AnalysisUnreadable`);
- the similarity index holds exactly each document's hashes, no more, no fewer, no other
  (:class:`HashIndexMismatch`): a row added or changed in the database would make up a match,
  a row removed would hide one;
- analyses made again from the stored source, by the same tools with the same parameters,
  derive the same hashes, keyframes and contact sheet (:class:`AnalysisMismatch`).  Which
  analyses are made again is drawn at random each time (a forger cannot know which will be);
  ``deep`` makes them all again.  An analysis made by other tool versions than this machine's
  cannot be compared exactly; that is a notice (:class:`AnalysisNotRechecked`), as is a C2PA
  result that reads differently today (a certificate's validity is judged against a date).

Content Credentials that failed validation are notices too (:class:`CredentialsFailed`): a
fact about the evidence for a person to judge, not damage to the catalog.
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog.analysis import ContentCredentials, CredentialState, MediaAnalysis
from evidence_catalog.errors import StorageError
from evidence_catalog.findings import (
    AnalysisMismatch,
    AnalysisNotRechecked,
    AnalysisUnreadable,
    CredentialsFailed,
    Finding,
    HashIndexMismatch,
)
from evidence_catalog.operations.analyzing import (
    derive,
    machine_stop,
    read_analysis,
    same_tools,
    same_trust,
    trust_anchors,
    with_digests,
)
from evidence_catalog.operations.context import Context

#: Analyses made again by a verification that is not ``deep``.
SAMPLE = 4


def check_analyses(
    ctx: Context, *, deep: bool = False, damaged: Collection[str] = ()
) -> tuple[list[Finding], list[Finding], int]:
    """Check every analysis document, the similarity index, and a sample of analyses made
    again (all with *deep*): ``(findings, notices, analyses made again)``.

    *damaged* are the artifacts whose stored bytes the verification found missing or not
    what was recorded (it reports them): a document among them is not read (what it says
    cannot be trusted, and neither can the index be held against it), and an analysis of one
    is not made again (its bytes would differ, not the analysis) -- a notice says so."""
    findings: list[Finding] = []
    notices: list[Finding] = []
    damaged = frozenset(damaged)
    with ctx.db.read() as session:
        documents = ctx.db.derived_documents(session)
        readable: list[tuple[str, str, MediaAnalysis]] = []
        skipped: set[tuple[str, str]] = set()
        for record_id, document in documents:
            if document in damaged:
                skipped.add((record_id, document))
                continue
            analysis = read_analysis(ctx, document)
            if analysis is None:
                if ctx.blobs.exists(document):  # bytes gone or damaged: the bytes' check says so
                    findings.append(AnalysisUnreadable(record_id, document, "cannot be read as an analysis"))
                continue
            problem = _disagreement(ctx, session, record_id, document, analysis)
            if problem is not None:
                findings.append(AnalysisUnreadable(record_id, document, problem))
                continue
            readable.append((record_id, document, analysis))
            credentials = analysis.credentials
            if credentials is not None and credentials.state in (CredentialState.INVALID, CredentialState.UNREADABLE):
                notices.append(
                    CredentialsFailed(
                        record_id, analysis.source_sha256, credentials.state.value, credentials.failure_codes
                    )
                )
        findings.extend(_index_findings(ctx, session, readable, skipped))
    for record_id, document, analysis in readable:
        if analysis.source_sha256 in damaged:
            reason = f"the stored bytes of {analysis.source_sha256} are missing or damaged"
            notices.append(AnalysisNotRechecked(record_id, document, reason))
    sound = [item for item in readable if item[2].source_sha256 not in damaged]
    chosen = sound if deep else _sample(sound, SAMPLE)
    for record_id, document, analysis in chosen:
        anchors = trust_anchors(ctx)
        trusted_alike = same_trust(analysis, anchors)
        try:
            redo = remake(ctx, analysis, anchors)
        except StorageError as exc:  # this machine's disk, not the catalog: nothing to compare with
            notices.append(AnalysisNotRechecked(record_id, document, f"it could not be made again here ({exc})"))
            continue
        stopped = machine_stop(analysis) or machine_stop(redo)
        if stopped is not None:
            notices.append(AnalysisNotRechecked(record_id, document, f"an analyser stopped: {stopped}"))
            continue
        if not same_tools(analysis.tools):
            contradiction = compare_across_versions(analysis, redo)
            if contradiction is not None:
                findings.append(AnalysisMismatch(record_id, document, analysis.source_sha256, contradiction))
            else:
                reason = (
                    "it was made by other tool versions than this machine has: compared within their tolerance"
                    f" ({OTHER_TOOLS_TOLERANCE} bits a hash), not exactly"
                )
                notices.append(AnalysisNotRechecked(record_id, document, reason))
            continue
        mismatch = _compare(analysis, redo, with_credentials=trusted_alike)
        if not trusted_alike:
            notices.append(
                AnalysisNotRechecked(
                    record_id, document, "its Content Credentials were checked against another trust list than today's"
                )
            )
        if mismatch == "credentials":
            reason = "its signing certificate has expired since (no trusted time-stamp): it reads invalid today"
            notices.append(AnalysisNotRechecked(record_id, document, reason))
        elif mismatch is not None:
            findings.append(AnalysisMismatch(record_id, document, analysis.source_sha256, mismatch))
    return findings, notices, len(chosen)


def _sample(items: Sequence[Any], size: int) -> list[Any]:
    """*size* items drawn at random without replacement (a new draw each verification)."""
    pool = list(items)
    chosen: list[Any] = []
    while pool and len(chosen) < size:
        chosen.append(pool.pop(secrets.randbelow(len(pool))))
    return chosen


def _disagreement(ctx: Context, session: Any, record_id: str, document: str, analysis: MediaAnalysis) -> str | None:
    """Why an analysis document disagrees with its record, or ``None``."""
    entry_sources = ctx.db.derived_from(session, record_id, document)
    if entry_sources != (analysis.source_sha256,):
        return f"is of {analysis.source_sha256}, but the record says it was derived from {', '.join(entry_sources)}"
    held = set(ctx.db.artifacts_of(session, record_id))
    missing = [sha for sha in analysis.derived_sha256s() if sha not in held]
    if missing:
        return f"names derived artifacts the record does not hold: {', '.join(missing)}"
    return None


def _index_findings(
    ctx: Context, session: Any, readable: list[tuple[str, str, MediaAnalysis]], skipped: Collection[tuple[str, str]]
) -> list[Finding]:
    """The similarity index held against the documents, row for row (but for the *skipped*
    ``(record, document)``: documents whose bytes are damaged)."""
    expected = {
        (record_id, document): sorted(_hash_key(h) for h in analysis.hashes)
        for record_id, document, analysis in readable
    }
    found: dict[tuple[str, str], list[tuple[str, int, int | None]]] = {}
    after = 0
    while rows := ctx.db.hash_rows_after(session, after):
        for row in rows:
            key = (row.record_id, row.analysis_sha256)
            found.setdefault(key, []).append((row.hash.hex(), row.quality, row.offset_ms))
        after = rows[-1].id
    findings: list[Finding] = []
    for key in sorted((set(expected) | set(found)) - set(skipped)):
        want, have = expected.get(key, []), sorted(found.get(key, []))
        if want != have:
            extra = len([h for h in have if h not in want])
            lost = len([h for h in want if h not in have])
            findings.append(
                HashIndexMismatch(
                    key[0], key[1], f"{extra} row(s) the document does not hold, {lost} of its hashes missing"
                )
            )
    return findings


def _hash_key(item: Any) -> tuple[str, int, int | None]:
    from evidence_catalog.store.hashes import offset_ms

    return (item.value, item.quality, offset_ms(item.offset_s))


def remake(ctx: Context, analysis: MediaAnalysis, anchors: bytes | None) -> MediaAnalysis:
    """The analysis made again from the stored source (derived files hashed, not stored).

    Its files are written in a temporary folder of this machine, never in the catalog: a
    verification writes nothing there (``--no-log``, a copy on read-only media).  Raises
    :class:`~evidence_catalog.errors.StorageError` when no such folder can be made."""
    try:
        scratch = tempfile.TemporaryDirectory(prefix="evidence-catalog-verify-")
    except OSError as exc:
        raise StorageError(f"cannot make a temporary folder ({exc.strerror})", where=tempfile.gettempdir()) from exc
    with scratch as name:
        work = Path(name)
        with ctx.blobs.local_copy(analysis.source_sha256) as path:
            redo, files = derive(path, analysis.source_media_type, analysis.source_sha256, work, trust_anchors=anchors)
        digests = {path: hashlib.sha256(path.read_bytes()).hexdigest() for _, path in files}
    return with_digests(redo, files, digests)


def _compare(stored: MediaAnalysis, redo: MediaAnalysis, *, with_credentials: bool = True) -> str | None:
    """What differs between an analysis and the same analysis made again, or ``None``; without
    *with_credentials*, the Content Credentials and their parameters are left out (checked
    against another trust list)."""
    if with_credentials and stored.parameters != redo.parameters:
        return "parameters"
    if not with_credentials:
        kept = {k: v for k, v in stored.parameters.items() if not k.startswith("c2pa.")}
        if kept != {k: v for k, v in redo.parameters.items() if not k.startswith("c2pa.")}:
            return "parameters"
    for name in ("hashes", "keyframes", "contact_sheet_sha256", "errors"):
        if getattr(stored, name) != getattr(redo, name):
            return name.replace("_sha256", "").replace("_", " ")
    if not with_credentials:
        return None
    if stored.credentials != redo.credentials:
        return _credentials_differ(stored.credentials, redo.credentials)
    if attrs.evolve(stored) != redo:
        return "document"
    return None


#: The one validation failure that time alone brings to the same bytes read by the same tools
#: against the same trust list: the signing certificate expired since (no trusted time-stamp).
EXPIRED = "signingCredential.expired"


def _credentials_differ(stored: ContentCredentials | None, redo: ContentCredentials | None) -> str:
    """What differs between two readings of the same file's Content Credentials: ``expired``
    when the only difference is the signing certificate's expiry since (a notice), else what
    a forged or damaged verdict differs in (a finding)."""
    if stored is None or redo is None:
        return "credentials presence"
    if stored.manifest_store_sha256 != redo.manifest_store_sha256:
        return "manifest store"
    added = set(redo.failure_codes) - set(stored.failure_codes)
    if (
        stored.state in (CredentialState.VALID, CredentialState.TRUSTED)
        and redo.state is CredentialState.INVALID
        and added == {EXPIRED}
        and set(stored.failure_codes) <= set(redo.failure_codes)
        and attrs.evolve(redo, state=stored.state, failure_codes=stored.failure_codes, errors=stored.errors) == stored
    ):
        return "credentials"
    return "credentials verdict"


#: Bits two PDQ hashes of the same frame may differ by when other versions of the decoders made
#: them (a re-encode moves a hash by a few bits; unrelated pictures differ by about 128).
OTHER_TOOLS_TOLERANCE = 16


def compare_across_versions(stored: MediaAnalysis, redo: MediaAnalysis) -> str | None:
    """What an analysis made by other tool versions says that this machine's tools contradict,
    or ``None``: a hash of the same frame more than :data:`OTHER_TOOLS_TOLERANCE` bits away
    (more than half of the frames compared), or Content Credentials claimed of a file that
    carries no C2PA data at all, or a manifest store that is not the file's.  Exact values are
    not compared: other decoders differ in the last bits."""
    from evidence_catalog.store.hashes import offset_ms

    mine = {offset_ms(h.offset_s): h for h in redo.hashes}
    pairs = [(h, mine[offset_ms(h.offset_s)]) for h in stored.hashes if offset_ms(h.offset_s) in mine]
    if stored.hashes and redo.hashes and len(pairs) * 2 >= len(stored.hashes):
        far = [a for a, b in pairs if a.distance(b) > OTHER_TOOLS_TOLERANCE]
        if len(far) * 2 > len(pairs):
            return f"hashes ({len(far)} of {len(pairs)} more than {OTHER_TOOLS_TOLERANCE} bits from this machine's)"
    if stored.credentials is not None and redo.credentials is not None:
        claimed = stored.credentials.state in (CredentialState.VALID, CredentialState.TRUSTED, CredentialState.INVALID)
        if claimed and redo.credentials.state is CredentialState.NONE:
            return "credentials (the file carries no C2PA data)"
        stores = (stored.credentials.manifest_store_sha256, redo.credentials.manifest_store_sha256)
        if None not in stores and stores[0] != stores[1]:
            return "manifest store"
    return None
