"""``verify``'s check of what analyses derived: documents read, the similarity index held
against them, and a sample of analyses (all of them with ``deep``) made again and compared.

An analysis document's bytes are checked like every artifact's (their digests); what is
checked here is what they *say*:

- every document reads as an analysis of the artifact its record says it was derived from,
  names only derived artifacts that record holds, and says what the acquisition that logged
  it says (tools, parameters, derived artifacts: what ``show``, the exports and PROV tell)
  (:class:`AnalysisUnreadable`);
- the similarity index holds exactly each document's hashes, no more, no fewer, no other
  (:class:`HashIndexMismatch`): a row added or changed in the database would make up a match,
  a row removed would hide one;
- analyses made again from the stored source, by the same tools with the same parameters,
  derive the same hashes, keyframes and contact sheet (:class:`AnalysisMismatch`).  Which
  analyses are made again is drawn at random each time (a forger cannot know which will be);
  ``deep`` makes them all again.  An analysis made by other tool versions than this machine's
  cannot be compared exactly; that is a notice (:class:`AnalysisNotRechecked`), as is a C2PA
  result that reads differently today only as time explains it (a certificate's validity is
  judged against a date) -- but anyone who can write to the catalog can name other versions or
  another trust list, so what neither changes is compared all the same.

Content Credentials that failed validation are notices too (:class:`CredentialsFailed`): a
fact about the evidence for a person to judge, not damage to the catalog.
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog import model
from evidence_catalog.analysis import ContentCredentials, CredentialState, MediaAnalysis
from evidence_catalog.errors import EvidenceError, InputError, StorageError
from evidence_catalog.findings import (
    AnalysisMismatch,
    AnalysisNotRechecked,
    AnalysisUnreadable,
    CredentialsFailed,
    Finding,
    HashIndexMismatch,
)
from evidence_catalog.operations.analyzing import (
    DISTRIBUTIONS,
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
) -> tuple[list[Finding], list[Finding], int, int]:
    """Check every analysis document, the similarity index, and a sample of analyses made
    again (all with *deep*): ``(findings, notices, documents checked, analyses made again)``.

    *damaged* are the artifacts whose stored bytes the verification found missing or not
    what was recorded (it reports them): a document among them is not read (what it says
    cannot be trusted, and neither can the index be held against it), and an analysis of one
    is not made again (its bytes would differ, not the analysis) -- a notice says so."""
    findings: list[Finding] = []
    notices: list[Finding] = []
    damaged = frozenset(damaged)
    with ctx.db.read() as session:
        documents = ctx.db.derived_documents(session)
        loaded: dict[str, model.EvidenceRecord] = {}

        def records(record_id: str) -> model.EvidenceRecord:
            if record_id not in loaded:
                loaded.clear()  # documents come in log order: one record's are mostly together
                loaded[record_id] = ctx.db.record(session, record_id)
            return loaded[record_id]

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
            try:
                problem = _disagreement(ctx, session, record_id, document, analysis, records)
            except EvidenceError:  # the record's rows are damaged: its own finding says how
                skipped.add((record_id, document))
                continue
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
    unreadable_trust: str | None = None
    try:
        anchors = trust_anchors(ctx) if chosen else None
    except InputError as exc:  # the folder's configuration, not the evidence: checked without it
        anchors, unreadable_trust = None, str(exc)
    for record_id, document, analysis in chosen:
        if unreadable_trust is not None and not same_trust(analysis, None):
            notices.append(
                AnalysisNotRechecked(
                    record_id, document, f"the catalog's C2PA trust list cannot be used ({unreadable_trust})"
                )
            )
        if not same_tools(analysis.tools):
            # Any writer can name other versions: what those versions cannot change is still
            # held against the file (a hash far from today's, credentials found or lost).
            found = _across_versions(ctx, record_id, document, analysis, anchors)
            (findings if isinstance(found, AnalysisMismatch) else notices).append(found)
            continue
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
        mismatch = _compare(analysis, redo, with_credentials=trusted_alike)
        if not trusted_alike:
            notices.append(
                AnalysisNotRechecked(
                    record_id, document, "its Content Credentials were checked against another trust list than today's"
                )
            )
        if mismatch == "credentials read differently now":
            notices.append(AnalysisNotRechecked(record_id, document, "its Content Credentials read differently now"))
        elif mismatch is not None:
            findings.append(AnalysisMismatch(record_id, document, analysis.source_sha256, mismatch))
    return findings, notices, len(documents), len(chosen)


def _across_versions(
    ctx: Context, record_id: str, document: str, analysis: MediaAnalysis, anchors: bytes | None
) -> Finding:
    """An analysis made by other tool versions, made again here and held against what no
    version changes: a mismatch, or the notice that it was not checked exactly."""
    reason = "it was made by other tool versions than this machine has"
    try:
        redo = remake(ctx, analysis, anchors)
    except StorageError:
        return AnalysisNotRechecked(record_id, document, reason)
    if machine_stop(analysis) is None and machine_stop(redo) is None:
        what = _loose_compare(analysis, redo)
        if what is not None:
            return AnalysisMismatch(
                record_id, document, analysis.source_sha256, f"{what} (made by other tool versions)"
            )
    return AnalysisNotRechecked(record_id, document, f"{reason}; only what no version changes was compared")


def _loose_compare(stored: MediaAnalysis, redo: MediaAnalysis) -> str | None:
    """What differs beyond what other versions of the tools explain: a hash more than a match's
    distance from the one made here of the same frame, a hash of a frame made here missing,
    credentials found where there are none (or none where there are), another manifest store."""
    from evidence_catalog.analysis import DEFAULT_MAX_DISTANCE
    from evidence_catalog.store.hashes import offset_ms

    made = {offset_ms(h.offset_s): h for h in redo.hashes}
    for kept in stored.hashes:
        again = made.get(offset_ms(kept.offset_s))
        if again is not None and (kept.algorithm != again.algorithm or kept.distance(again) > DEFAULT_MAX_DISTANCE):
            return "hashes"
    if stored.hashes == () and redo.usable_hashes():
        return "hashes"
    pdq = {k: v for k, v in stored.parameters.items() if k.startswith("pdq.")}
    if pdq == {k: v for k, v in redo.parameters.items() if k.startswith("pdq.")}:
        # Sampled the same way: a frame hashed here that the document leaves out was dropped
        # (a forger hiding the one frame that matches), not missed by another decoder.
        kept_offsets = {offset_ms(h.offset_s) for h in stored.hashes}
        if any(offset_ms(h.offset_s) not in kept_offsets for h in redo.usable_hashes()):
            return "hashes"
    if (stored.credentials is None) != (redo.credentials is None):
        return "credentials presence"
    if stored.credentials is not None and redo.credentials is not None:
        absent = CredentialState.NONE
        if (stored.credentials.state is absent) != (redo.credentials.state is absent):
            return "credentials presence"
        if stored.credentials.manifest_store_sha256 != redo.credentials.manifest_store_sha256:
            return "manifest store"
        # A hash of the bytes that does not match what was signed is a fact of the bytes, not
        # of a version: credentials said intact when it is so are no version's doing.
        broken = [code for code in redo.credentials.failure_codes if code.endswith(".mismatch")]
        if broken and stored.credentials.state in (CredentialState.VALID, CredentialState.TRUSTED):
            return "credentials"
    return None


def _sample(items: Sequence[Any], size: int) -> list[Any]:
    """*size* items drawn at random without replacement (a new draw each verification)."""
    pool = list(items)
    chosen: list[Any] = []
    while pool and len(chosen) < size:
        chosen.append(pool.pop(secrets.randbelow(len(pool))))
    return chosen


def _disagreement(
    ctx: Context,
    session: Any,
    record_id: str,
    document: str,
    analysis: MediaAnalysis,
    records: Callable[[str], model.EvidenceRecord],
) -> str | None:
    """Why an analysis document disagrees with its record, or ``None``."""
    entry_sources = ctx.db.derived_from(session, record_id, document)
    if entry_sources != (analysis.source_sha256,):
        return f"is of {analysis.source_sha256}, but the record says it was derived from {', '.join(entry_sources)}"
    held = set(ctx.db.artifacts_of(session, record_id))
    missing = [sha for sha in analysis.derived_sha256s() if sha not in held]
    if missing:
        return f"names derived artifacts the record does not hold: {', '.join(missing)}"
    return acquisition_disagreement(records(record_id), document, analysis)


#: The analysers' names an acquisition may list only as the document does.
_ANALYSERS = frozenset({*DISTRIBUTIONS, "FFmpeg"})


def acquisition_disagreement(record: model.EvidenceRecord, document: str, analysis: MediaAnalysis) -> str | None:
    """Why the acquisition that logged an analysis says other than its document, or ``None``:
    ``show``, the exports and PROV tell its tools and parameters from the acquisition, and
    ``analyze`` never analyses what an analysis's acquisition says it made (an original
    listed there would be left out of every analysis, and of every search)."""
    acquisition = next(
        (
            a
            for a in record.acquisitions
            if a.method is model.AcquisitionMethod.DERIVED
            and a.outcome is model.Outcome.SUCCEEDED
            and a.artifact_sha256 == document
        ),
        None,
    )
    if acquisition is None:  # derived_documents found it: not reached but by a concurrent change
        return "has no acquisition on the record"
    # The acquisition names the library first (as every acquisition does), then the analysers.
    tools = tuple(acquisition.tools)
    library, analysers = tools[: len(tools) - len(analysis.tools)], tools[len(tools) - len(analysis.tools) :]
    if analysers != tuple(analysis.tools) or any(t.name in _ANALYSERS for t in library):
        return "names other tools than the acquisition that logged it"
    settings = tuple(f"{name}={value}" for name, value in sorted(analysis.parameters.items()))
    if tuple(acquisition.settings) != settings:
        return "holds other parameters than the acquisition that logged it"
    if set(acquisition.other_artifacts) != set(analysis.derived_sha256s()) - {document}:
        return "names other derived artifacts than the acquisition that logged it"
    return None


def _index_findings(
    ctx: Context, session: Any, readable: list[tuple[str, str, MediaAnalysis]], skipped: Collection[tuple[str, str]]
) -> list[Finding]:
    """The similarity index held against the documents, row for row (but for the *skipped*
    ``(record, document)``: documents whose bytes are damaged)."""
    expected = {
        (record_id, document): sorted(_hash_key(analysis.source_sha256, h) for h in analysis.hashes)
        for record_id, document, analysis in readable
    }
    found: dict[tuple[str, str], list[tuple[str, str, str, int, int | None]]] = {}
    after = 0
    while rows := ctx.db.hash_rows_after(session, after):
        for row in rows:
            key = (row.record_id, row.analysis_sha256)
            # Every column a search reads: the analysed artifact a match is reported on and the
            # algorithm a search keeps too, not only the hash (a row moved to another artifact
            # would move a match to another record; another algorithm would hide it).
            found.setdefault(key, []).append(
                (row.artifact_sha256, row.algorithm, row.hash.hex(), row.quality, row.offset_ms)
            )
        after = rows[-1].id
    findings: list[Finding] = []
    for key in sorted((set(expected) | set(found)) - set(skipped), key=repr):  # a row edited by hand: any type
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


def _hash_key(source: str, item: Any) -> tuple[str, str, str, int, int | None]:
    from evidence_catalog.store.hashes import offset_ms

    return (source, item.algorithm, item.value, item.quality, offset_ms(item.offset_s))


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


#: What differs between two readings of the same manifest store that time alone explains: the
#: signing certificate (or the time-stamp's) judged at the time of reading has since expired.
_TIME_CODES = ("signingCredential.", "timeStamp.")
#: The failure code that says only that the signer is not on the trust list.
_UNTRUSTED = "signingCredential.untrusted"


def _compare(stored: MediaAnalysis, redo: MediaAnalysis, *, with_credentials: bool = True) -> str | None:
    """What differs between an analysis and the same analysis made again, or ``None``; without
    *with_credentials* (checked against another trust list), the trust verdict and the trust
    list's parameter are left out -- but not the rest of the Content Credentials: a ``trusted``
    or ``valid`` claimed for a file whose credentials read otherwise is a mismatch all the same.

    ``"credentials"`` (a notice, not a finding) means only what time can change: credentials
    that read ``valid`` or ``trusted`` then and ``invalid`` now for their certificate, the rest
    of them the same."""
    if with_credentials and stored.parameters != redo.parameters:
        return "parameters"
    if not with_credentials:
        kept = {k: v for k, v in stored.parameters.items() if k != "c2pa.trust_anchors_sha256"}
        if kept != {k: v for k, v in redo.parameters.items() if k != "c2pa.trust_anchors_sha256"}:
            return "parameters"
    for name in ("hashes", "keyframes", "contact_sheet_sha256", "errors"):
        if getattr(stored, name) != getattr(redo, name):
            return name.replace("_sha256", "").replace("_", " ")
    difference = _credentials_difference(stored.credentials, redo.credentials, trust_free=not with_credentials)
    if difference is not None:
        return difference
    if with_credentials and attrs.evolve(stored) != redo:
        return "document"
    return None


def _credentials_difference(
    stored: ContentCredentials | None, redo: ContentCredentials | None, *, trust_free: bool
) -> str | None:
    """What differs between credentials as recorded and as read again (see :func:`_compare`)."""
    if stored is None or redo is None:
        return None if stored is redo else "credentials presence"
    if stored.manifest_store_sha256 != redo.manifest_store_sha256:
        return "manifest store"
    if trust_free:
        stored, redo = _without_trust(stored), _without_trust(redo)
    if stored == redo:
        return None
    timeless = ("state", "failure_codes", "errors")
    if any(
        getattr(stored, f.name) != getattr(redo, f.name)
        for f in attrs.fields(ContentCredentials)
        if f.name not in timeless
    ):
        return "credentials"  # the signer, the actions, ... : not what time changes
    new_codes = set(redo.failure_codes) - set(stored.failure_codes)
    expired = (
        stored.state in (CredentialState.VALID, CredentialState.TRUSTED)
        and redo.state is CredentialState.INVALID
        and new_codes
        and all(code.startswith(_TIME_CODES) and code != _UNTRUSTED for code in new_codes)
    )
    return "credentials read differently now" if expired else "credentials"


def _without_trust(credentials: ContentCredentials) -> ContentCredentials:
    """Credentials as any trust list reads them: ``trusted`` is ``valid``, and the code that
    says the signer is not on the list is left out."""
    state = CredentialState.VALID if credentials.state is CredentialState.TRUSTED else credentials.state
    codes = tuple(code for code in credentials.failure_codes if code != _UNTRUSTED)
    return attrs.evolve(credentials, state=state, failure_codes=codes)
