"""Records in the database: artifacts, records with their tags, artifacts, acquisitions and
parts, and the rows each is kept in.

A record's own row holds only its own columns; what it holds (artifacts, acquisitions, reports,
notes, flags, relations, claims, assessments) is in rows of their own, each tied to the custody
event that logged it.  The ``*_row`` functions build those rows, for the inserts here and for an
operation that inserts many at once (:meth:`Records.insert_rows`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from evidence_catalog import model
from evidence_catalog.errors import EvidenceError, NotFoundError, ValidationError
from evidence_catalog.serialize import _agent_document, structure, unstructure
from evidence_catalog.store.engine import (
    Connections,
    aware,
    chunks,
    execute,
    json_body,
    table_of,
)
from evidence_catalog.store.inserts import insert_many, insert_row
from evidence_catalog.store.tables import (
    AcquisitionRow,
    ArtifactRow,
    PerceptualHashRow,
    RecordArtifactRow,
    RecordPartRow,
    RecordRow,
    RecordTagRow,
)

#: The tables whose rows belong to a record (``record_id``), with the column that names a row.
_RECORD_CHILDREN = (
    (RecordPartRow, "id"),
    (AcquisitionRow, "id"),
    (RecordArtifactRow, "sha256"),
    (RecordTagRow, "tag"),
    (PerceptualHashRow, "id"),
)


def _shown(value: object) -> str:
    """A value of a row as a finding shows it: text as it is, anything else by its ``repr``."""
    return value if isinstance(value, str) and value.strip() == value and value.isprintable() and value else repr(value)


def no_record(record_id: str, *, where: str | None = None) -> NotFoundError:
    """The error for a record id no record has: one message wherever a record is looked for."""
    return NotFoundError(f"no record with id {record_id}", where=where)


#: Record parts kept as JSON bodies in ``record_part``, by kind, with their model type.
PART_KINDS: dict[str, type[Any]] = {
    "report": model.Report,
    "note": model.Note,
    "flag": model.SensitivityFlag,
    "relation": model.Relation,
    "claim": model.Claim,
    "assessment": model.Assessment,
}
_PART_FIELDS = {
    "report": "reports",
    "note": "notes",
    "flag": "flags",
    "relation": "relations",
    "claim": "claims",
    "assessment": "assessments",
}


class Records(Connections):
    """Artifacts and records (part of :class:`~evidence_catalog.store.database.CatalogDatabase`)."""

    def record_exists_now(self, record_id: str) -> bool:
        """:meth:`record_exists` as one statement outside any transaction (see :meth:`_lookup`)."""
        return bool(self._lookup("SELECT 1 FROM record WHERE id = {} LIMIT 1", record_id))

    def records_holding_now(self, sha256: str) -> list[str]:
        """:meth:`records_holding` as one statement outside any transaction."""
        found = self._lookup("SELECT record_id FROM record_artifact WHERE sha256 = {} ORDER BY record_id", sha256)
        return [str(row[0]) for row in found]

    def insert_rows(self, session: Session, rows: dict[str, list[dict[str, Any]]]) -> None:
        """Insert prepared rows, table by table (``artifact`` and ``record`` first: others refer
        to them), one statement per table."""
        for name in ("artifact", "record", "record_tag", "record_artifact", "acquisition", "record_part"):
            if rows.get(name):
                insert_many(session, _ROW_TYPES[name].__table__, rows[name])

    # -- artifacts ---------------------------------------------------------------------------

    def artifact(self, session: Session, sha256: str) -> model.Artifact | None:
        """The artifact with this SHA-256, if catalogued."""
        table = table_of(ArtifactRow)
        row = execute(session, sa.select(table).where(table.c.sha256 == sha256)).first()
        return None if row is None else _artifact_from_row(row)

    def artifact_digests(self, session: Session) -> Iterator[tuple[str, int, model.Digests | str]]:
        """(SHA-256, size, recorded digests) of every artifact, for re-hashing; where a row's
        digests are no longer valid, the reason instead of the digests."""
        table = table_of(ArtifactRow)
        columns = (table.c.sha256, table.c.size, table.c.md5, table.c.sha1, table.c.sha512, table.c.blake2b)
        for row in execute(session, sa.select(*columns).order_by(table.c.sha256)):
            try:
                digests: model.Digests | str = model.Digests(
                    sha256=row.sha256, md5=row.md5, sha1=row.sha1, sha512=row.sha512, blake2b=row.blake2b
                )
            except (TypeError, ValueError) as exc:
                digests = str(exc)
            size = row.size
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                digests, size = f"size {size!r} is not a byte count", 0
            yield row.sha256, size, digests

    def artifacts(self, session: Session, sha256s: Iterable[str]) -> dict[str, model.Artifact]:
        """The catalogued artifacts among these SHA-256s, by SHA-256 (one query per 500)."""
        table = table_of(ArtifactRow)
        found: dict[str, model.Artifact] = {}
        for chunk in chunks(sha256s):
            for row in execute(session, sa.select(table).where(table.c.sha256.in_(chunk))):
                found[row.sha256] = _artifact_from_row(row)
        return found

    def add_artifact(self, session: Session, artifact: model.Artifact, *, at: dt.datetime) -> None:
        """Insert a new artifact (the caller has checked that it is not catalogued yet)."""
        execute(session, sa.insert(table_of(ArtifactRow)), [artifact_row(artifact, at)])

    def artifact_bytes(self, session: Session, record_ids: Sequence[str] | None = None) -> int:
        """The bytes of every artifact on these records (all records when ``None``), counted
        once per record that holds it: what an export of them copies."""
        entry, artifact = table_of(RecordArtifactRow), table_of(ArtifactRow)
        query = sa.select(sa.func.coalesce(sa.func.sum(artifact.c.size), 0)).select_from(
            entry.join(artifact, artifact.c.sha256 == entry.c.sha256)
        )
        if record_ids is None:
            return int(execute(session, query).scalar_one())
        total = 0
        ids = list(record_ids)
        for start in range(0, len(ids), 500):
            total += int(execute(session, query.where(entry.c.record_id.in_(ids[start : start + 500]))).scalar_one())
        return total

    def ids_in_use(self, session: Session, ids: Sequence[str]) -> set[str]:
        """Which of these ids a record part or an acquisition already has (ids are unique
        across the catalog)."""
        found: set[str] = set()
        wanted = list(ids)
        for table in (table_of(RecordPartRow), table_of(AcquisitionRow)):
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found.update(execute(session, sa.select(table.c.id).where(table.c.id.in_(chunk))).scalars())
        return found

    def records_holding(self, session: Session, sha256: str) -> list[str]:
        """Ids of the records that hold an artifact, oldest first."""
        table = table_of(RecordArtifactRow)
        query = sa.select(table.c.record_id).where(table.c.sha256 == sha256).order_by(table.c.record_id)
        return list(execute(session, query).scalars())

    def holders(self, session: Session, sha256s: Iterable[str]) -> dict[str, list[str]]:
        """:meth:`records_holding` of many artifacts at once: the ids of the records holding
        each, oldest first (an artifact no record holds is left out)."""
        table = table_of(RecordArtifactRow)
        found: dict[str, list[str]] = {}
        for chunk in chunks(sha256s):
            query = sa.select(table.c.sha256, table.c.record_id).where(table.c.sha256.in_(chunk))
            for row in execute(session, query):
                found.setdefault(row.sha256, []).append(row.record_id)
        for ids in found.values():
            ids.sort()
        return found

    def held_by(self, session: Session, record_ids: Iterable[str]) -> dict[str, list[str]]:
        """:meth:`artifacts_of` of many records at once (every record given is a key)."""
        table = table_of(RecordArtifactRow)
        found: dict[str, list[str]] = {}
        for chunk in chunks(record_ids):
            found.update((record_id, []) for record_id in chunk)
            query = (
                sa.select(table.c.record_id, table.c.sha256)
                .where(table.c.record_id.in_(chunk))
                .order_by(table.c.record_id, table.c.position)
            )
            for row in execute(session, query):
                found[row.record_id].append(row.sha256)
        return found

    def tags_of(self, session: Session, record_ids: Iterable[str]) -> dict[str, set[str]]:
        """The tags of each of these records (every record given is a key)."""
        table = table_of(RecordTagRow)
        found: dict[str, set[str]] = {}
        for chunk in chunks(record_ids):
            found.update((record_id, set()) for record_id in chunk)
            query = sa.select(table.c.record_id, table.c.tag).where(table.c.record_id.in_(chunk))
            for row in execute(session, query):
                found[row.record_id].add(row.tag)
        return found

    # -- records -----------------------------------------------------------------------------

    def artifacts_of(self, session: Session, record_id: str) -> list[str]:
        """SHA-256 of every artifact on a record, in the order they were attached."""
        table = table_of(RecordArtifactRow)
        query = sa.select(table.c.sha256).where(table.c.record_id == record_id).order_by(table.c.position)
        return list(execute(session, query).scalars())

    def record_exists(self, session: Session, record_id: str) -> bool:
        """Tell whether a record with this id exists."""
        table = table_of(RecordRow)
        return execute(session, sa.select(table.c.id).where(table.c.id == record_id)).first() is not None

    def records_existing(self, session: Session, record_ids: Iterable[str]) -> set[str]:
        """Which of these record ids exist (:meth:`record_exists` of many, one query per 500)."""
        table = table_of(RecordRow)
        found: set[str] = set()
        for chunk in chunks(record_ids):
            found.update(execute(session, sa.select(table.c.id).where(table.c.id.in_(chunk))).scalars())
        return found

    def add_record(self, session: Session, record: model.EvidenceRecord) -> None:
        """Insert a new record with its own columns and tags (parts are added separately)."""
        insert_row(session, RecordRow, **record_row(record))
        for tag in record.tags:
            insert_row(session, RecordTagRow, record_id=record.id, tag=tag)

    def add_tags(self, session: Session, record_id: str, tags: Sequence[str]) -> list[str]:
        """Add tags a record does not have yet; return those added."""
        if not tags:
            return []
        table = table_of(RecordTagRow)
        have = set(execute(session, sa.select(table.c.tag).where(table.c.record_id == record_id)).scalars())
        added = sorted(set(tags) - have)
        for tag in added:
            insert_row(session, RecordTagRow, record_id=record_id, tag=tag)
        return added

    def attach_artifact(self, session: Session, record_id: str, entry: model.RecordArtifact) -> bool:
        """Put an artifact on a record unless it is there already; return True when attached."""
        table = table_of(RecordArtifactRow)
        held = list(execute(session, sa.select(table.c.sha256).where(table.c.record_id == record_id)).scalars())
        if entry.artifact.sha256 in held:
            return False
        insert_row(session, RecordArtifactRow, **record_artifact_row(record_id, entry, len(held)))
        return True

    def derived_documents(self, session: Session) -> list[tuple[str, str]]:
        """``(record id, analysis document SHA-256)`` of every successful acquisition of method
        ``derived``, in the order they were logged."""
        table = table_of(AcquisitionRow)
        query = (
            sa.select(table.c.record_id, table.c.artifact_sha256)
            .where(
                table.c.method == model.AcquisitionMethod.DERIVED.value,
                table.c.outcome == "succeeded",
                table.c.artifact_sha256.is_not(None),
            )
            .order_by(table.c.custody_seq, table.c.position)
        )
        rows: list[Any] = list(execute(session, query).all())
        return [(str(row[0]), str(row[1])) for row in rows]

    def derived_from(self, session: Session, record_id: str, sha256: str) -> tuple[str, ...]:
        """What the record says an artifact of it was derived from (empty when not derived)."""
        table = table_of(RecordArtifactRow)
        query = sa.select(table.c.derived_from).where(table.c.record_id == record_id, table.c.sha256 == sha256)
        sources = execute(session, query).scalar()
        return tuple(str(s) for s in sources) if isinstance(sources, list) else ()

    def add_acquisition(
        self, session: Session, record_id: str, acquisition: model.Acquisition, custody_seq: int, position: int = 0
    ) -> None:
        """Record an acquisition on a record, tied to the custody event that logged it (the
        *position*-th that event logged)."""
        insert_row(session, AcquisitionRow, **acquisition_row(record_id, acquisition, custody_seq, position))

    def earlier_capture(
        self, session: Session, *, platform_key: str | None, requested_url: str | None, record_id: str | None = None
    ) -> tuple[str, str, str] | None:
        """The newest successful capture of the same item: ``(record id, main artifact SHA-256,
        acquisition id)``.

        The same item is the same extractor and platform id when both are known, else the same
        requested URL.  With *record_id*, only captures on that record count.
        """
        table = table_of(AcquisitionRow)
        if platform_key is not None:
            same = table.c.platform_key == platform_key
        elif requested_url is not None:
            same = table.c.requested_url == requested_url
        else:
            return None
        query = (
            sa.select(table.c.record_id, table.c.artifact_sha256, table.c.id)
            .where(
                same,
                table.c.outcome == model.Outcome.SUCCEEDED.value,
                table.c.method == model.AcquisitionMethod.CAPTURED_FROM_URL.value,
                table.c.artifact_sha256.is_not(None),
            )
            .order_by(table.c.custody_seq.desc())
            .limit(1)
        )
        if record_id is not None:
            query = query.where(table.c.record_id == record_id)
        row = execute(session, query).first()
        return None if row is None else (str(row.record_id), str(row.artifact_sha256), str(row.id))

    def record_with_report(self, session: Session, identity: str) -> str | None:
        """The record holding a report with this identity, if any."""
        table = table_of(RecordPartRow)
        query = sa.select(table.c.record_id).where(table.c.kind == "report", table.c.identity == identity).limit(1)
        found = execute(session, query).scalar()
        return None if found is None else str(found)

    def records_with_reports(self, session: Session, identities: Iterable[str]) -> dict[str, str]:
        """:meth:`record_with_report` of many identities at once (one query per 500): the
        record holding a report of each identity, by identity (an identity no report has is
        left out; of several records holding one, the oldest)."""
        table = table_of(RecordPartRow)
        found: dict[str, str] = {}
        for chunk in chunks(identities):
            query = sa.select(table.c.identity, table.c.record_id).where(
                table.c.kind == "report", table.c.identity.in_(chunk)
            )
            for row in execute(session, query):
                identity, record_id = str(row.identity), str(row.record_id)
                held = found.get(identity)
                found[identity] = record_id if held is None else min(held, record_id)
        return found

    def add_part(self, session: Session, record_id: str, kind: str, part: Any, custody_seq: int) -> None:
        """Add a report, note, flag, relation, claim or assessment to a record."""
        if not isinstance(part, PART_KINDS[kind]):
            raise TypeError(f"a {kind} part must be a {PART_KINDS[kind].__name__}")
        table = table_of(RecordPartRow)
        position = execute(
            session,
            sa.select(sa.func.count()).select_from(table).where(table.c.record_id == record_id, table.c.kind == kind),
        ).scalar_one()
        insert_row(session, RecordPartRow, **part_row(record_id, kind, part, custody_seq, position))

    def report(self, session: Session, report_id: str) -> tuple[str, model.Report] | None:
        """The record holding a report, and the report, by the report's id."""
        table = table_of(RecordPartRow)
        row = execute(
            session,
            sa.select(table.c.record_id, table.c.body).where(table.c.id == report_id, table.c.kind == "report"),
        ).first()
        return None if row is None else (str(row.record_id), structure(json_body(row.body), model.Report))

    def reports(self, session: Session) -> Iterator[tuple[str, model.Report]]:
        """``(record id, report)`` of every report, in the order they were catalogued."""
        table = table_of(RecordPartRow)
        query = (
            sa.select(table.c.record_id, table.c.body)
            .where(table.c.kind == "report")
            .order_by(table.c.custody_seq, table.c.position)
            .execution_options(yield_per=1000)
        )
        for row in execute(session, query):
            yield str(row.record_id), structure(json_body(row.body), model.Report)

    def captures(self, session: Session) -> Iterator[tuple[str, model.Acquisition]]:
        """``(record id, acquisition)`` of every successful capture from a URL."""
        table = table_of(AcquisitionRow)
        query = sa.select(table.c.record_id, table.c.body).where(
            table.c.method == model.AcquisitionMethod.CAPTURED_FROM_URL.value, table.c.outcome == "succeeded"
        )
        for row in execute(session, query):
            yield str(row.record_id), structure(json_body(row.body), model.Acquisition)

    def move_report(self, session: Session, report_id: str, record_id: str, custody_seq: int) -> None:
        """Put a report on another record, after the reports it holds (see ``report.linked``).

        After the *last* of them, not at their count: a record that a report left has a gap in
        its positions, and a count would give the newcomer the position of one already there
        (their order would then differ from the custody log's)."""
        table = table_of(RecordPartRow)
        position = execute(
            session,
            sa.select(sa.func.coalesce(sa.func.max(table.c.position) + 1, 0)).where(
                table.c.record_id == record_id, table.c.kind == "report"
            ),
        ).scalar_one()
        execute(
            session,
            sa.update(table)
            .where(table.c.id == report_id)
            .values(record_id=record_id, position=position, custody_seq=custody_seq),
        )

    def record_ids(self, session: Session, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """Record ids, oldest first (ids are time-ordered): all of them, or a page of at most
        *limit* ids after the id *after* (a keyset page: as fast on the millionth page as on
        the first)."""
        table = table_of(RecordRow)
        query = sa.select(table.c.id).order_by(table.c.id)
        if after is not None:
            query = query.where(table.c.id > after)
        if limit is not None:
            query = query.limit(limit)
        return list(execute(session, query).scalars())

    def flagged_record_ids(self, session: Session) -> list[str]:
        """The ids of the records that carry a sensitivity flag, oldest first (an index of the
        parts by kind: no scan of the records)."""
        table = table_of(RecordPartRow)
        query = sa.select(table.c.record_id).where(table.c.kind == "flag").distinct().order_by(table.c.record_id)
        return list(execute(session, query).scalars())

    def record(self, session: Session, record_id: str) -> model.EvidenceRecord:
        """Assemble a whole record from its rows; :class:`ValidationError` if a row is invalid."""
        return _checked(record_id, lambda: _build_record(record_id, _record_rows(session, [record_id])))

    def records(
        self, session: Session, record_ids: Sequence[str], *, batch: int = 500
    ) -> Iterator[model.EvidenceRecord]:
        """Whole records in the order of *record_ids*, read a batch at a time (a few queries per
        batch instead of a few per record: an export of many records is bound by the disk, not
        by the queries).  Each record is what :meth:`record` returns; a record whose rows do not
        make a valid record is a :class:`ValidationError` naming it (also when the database
        driver cannot convert one of its values, such as JSON that does not parse: the batch is
        then read again a record at a time, as :meth:`record_pages` does)."""
        for start in range(0, len(record_ids), batch):
            ids = list(record_ids[start : start + batch])
            rows = _batch_rows(session, ids)
            for record_id in ids:
                if rows is None:
                    yield self.record(session, record_id)
                else:
                    yield _checked(record_id, partial(_build_record, record_id, rows))

    def record_pages(
        self, session: Session, *, batch: int = 500, logged: Mapping[str, Sequence[int]] | None = None
    ) -> Iterator[list[tuple[str, model.EvidenceRecord | EvidenceError]]]:
        """Every record, oldest first, a page of at most *batch* at a time (a keyset page of
        ids, then a few queries for all their rows): ``(id, record)``, or ``(id, error)`` for a
        record whose rows do not make a valid record (the error :meth:`record` raises), so
        that one damaged record does not hide the others.  A page holding a value the
        database driver cannot convert (JSON that does not parse, a time that is no time) is
        read again a record at a time.  Each record's indexed columns are held to its bodies
        (:func:`_check_index`), and with *logged* (of each record, the event that logged each of
        its acquisitions, as the log's replay says) the acquisitions' ``custody_seq`` to it:
        this is what a verification reads."""
        after: str | None = None
        while ids := self.record_ids(session, after=after, limit=batch):
            rows = _batch_rows(session, ids, span=True, index=True)
            page: list[tuple[str, model.EvidenceRecord | EvidenceError]] = []
            for record_id in ids:
                try:
                    own = rows if rows is not None else _batch_rows(session, [record_id], index=True)
                    if own is None:  # a value of its own rows the driver cannot convert
                        self.record(session, record_id)  # says which, where the record reads it
                        raise ValidationError(
                            "an acquisition's row holds a value that cannot be read", where=f"record {record_id}"
                        )
                    record = _checked(record_id, partial(_build_record, record_id, own))
                    seqs = None if logged is None else logged.get(record_id, ())
                    _check_index(record, own.acquisitions[record_id], own.parts[record_id], seqs)
                    page.append((record_id, record))
                except EvidenceError as exc:
                    page.append((record_id, exc))
            yield page
            after = ids[-1]

    def orphan_rows(self, session: Session) -> list[tuple[str, str, str]]:
        """Rows that belong to a record the catalog does not hold (or to none: a ``NULL`` where a
        schema edited by hand allows one): ``(table, the row's key, record id)``, each shown as
        text (a value of another type by its ``repr``).  No record read meets them, but look-ups
        do: a report row's identity makes an ingest take that post as held already, an
        acquisition's an earlier capture."""
        found: list[tuple[str, str, str]] = []
        records = table_of(RecordRow)
        for row_type, key in _RECORD_CHILDREN:
            table = table_of(row_type)
            held = sa.select(records.c.id).where(records.c.id == table.c.record_id).exists()
            # Whether there are any, from the index of record ids alone; then the rows themselves.
            if execute(session, sa.select(table.c.record_id).where(~held).limit(1)).first() is None:
                continue
            rows = execute(session, sa.select(table.c[key], table.c.record_id).where(~held))
            found.extend(sorted(((table.name, _shown(own), _shown(record_id)) for own, record_id in map(tuple, rows))))
        return found


class _RecordRows:
    """The rows of some records, by record id: their own, (record_artifact, artifact) pairs and
    acquisitions in order, their tags, and their parts ordered by kind and position."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.own: dict[str, Any] = {}
        self.entries: dict[str, list[Any]] = {i: [] for i in ids}
        self.acquisitions: dict[str, list[Any]] = {i: [] for i in ids}
        self.tags: dict[str, list[str]] = {i: [] for i in ids}
        self.parts: dict[str, list[Any]] = {i: [] for i in ids}


def _batch_rows(session: Session, ids: list[str], *, span: bool = False, index: bool = False) -> _RecordRows | None:
    """:func:`_record_rows`, or ``None`` when the database driver cannot convert one of their
    values (JSON that does not parse, a time that is no time): the caller then reads the
    records one at a time, so that only the damaged one fails."""
    try:
        return _record_rows(session, ids, span=span, index=index)
    except (TypeError, ValueError):
        return None


def _record_rows(session: Session, ids: list[str], *, span: bool = False, index: bool = False) -> _RecordRows:
    """Every row of the records *ids* (a few queries for all of them: plain rows, no ORM
    objects made).  A ``record_artifact`` row comes with its artifact's columns in one row,
    which serves as both.

    With *span*, *ids* are a keyset page (every id from the first to the last, in order, as
    :meth:`Records.record_ids` gives them): the rows are asked for by that range of ids (one
    parameter pair, where a list of ids costs the driver a parameter each), and a row whose
    record is not one of *ids* (a row left by no record) is passed over, as the list would.
    With *index*, the acquisitions' indexed columns and the parts' ``identity`` come too (for
    :func:`_check_index`)."""
    found = _RecordRows(ids)
    record, entry, artifact = table_of(RecordRow), table_of(RecordArtifactRow), table_of(ArtifactRow)
    acquisition, tag, part = table_of(AcquisitionRow), table_of(RecordTagRow), table_of(RecordPartRow)

    def among(column: Any) -> Any:
        return sa.and_(column >= ids[0], column <= ids[-1]) if span else column.in_(ids)

    wanted = found.entries  # every id of the page, as a key
    found.own = {r.id: r for r in execute(session, sa.select(record).where(among(record.c.id))) if r.id in wanted}
    entries = (
        sa.select(
            entry.c.record_id,
            entry.c.role,
            entry.c.derived_from,
            entry.c.derivation,
            entry.c.version_of,
            *(artifact.c[name] for name in _ARTIFACT_COLUMNS),
        )
        .join_from(entry, artifact, artifact.c.sha256 == entry.c.sha256)
        .where(among(entry.c.record_id))
        .order_by(entry.c.record_id, entry.c.position)
    )
    for row in execute(session, entries):
        if row.record_id in wanted:
            found.entries[row.record_id].append((row, row))
    acquisitions = (
        sa.select(
            acquisition.c.record_id,
            acquisition.c.body,
            *(acquisition.c[name] for name in (_ACQUISITION_INDEX if index else ())),
        )
        .where(among(acquisition.c.record_id))
        .order_by(acquisition.c.record_id, acquisition.c.custody_seq, acquisition.c.position, acquisition.c.id)
    )
    for row in execute(session, acquisitions):
        if row.record_id in wanted:
            found.acquisitions[row.record_id].append(row)
    for row in execute(session, sa.select(tag.c.record_id, tag.c.tag).where(among(tag.c.record_id))):
        if row.record_id in wanted:
            found.tags[row.record_id].append(row.tag)
    parts = (
        sa.select(part.c.record_id, part.c.kind, part.c.body, *((part.c.identity, part.c.id) if index else ()))
        .where(among(part.c.record_id))
        .order_by(part.c.record_id, part.c.kind, part.c.position)
    )
    for row in execute(session, parts):
        if row.record_id in wanted:
            found.parts[row.record_id].append(row)
    return found


#: The columns of an acquisition's row that repeat what its ``body`` holds, for the queries that
#: look acquisitions up (an earlier capture of the same item, the documents derived): SQL can
#: change them alone, so a verification holds them to the body (:func:`_check_index`).
_ACQUISITION_INDEX = (
    "id",
    "artifact_sha256",
    "method",
    "started_at",
    "requested_url",
    "platform_key",
    "outcome",
    "custody_seq",
)


def _check_index(
    record: model.EvidenceRecord, rows: Sequence[Any], parts: Sequence[Any], seqs: Sequence[int] | None = None
) -> None:
    """:class:`ValidationError` naming the first acquisition of *record* (built from *rows*, in
    their order) whose indexed columns are not what its body says, or the first of its parts
    (built from *parts*, in their order) whose ``identity`` or ``id`` is not its body's (what an
    ingest looks a report up by: another would make an item seem new, or seem held already; what
    ``link`` and ``search`` find a part by); with
    *seqs* (the events that logged its acquisitions, in order, as the log's replay says), each
    acquisition's ``custody_seq`` too (what the look-up of an earlier capture takes the newest
    by)."""
    taken: dict[str, int] = {}
    for row in parts:
        field = _PART_FIELDS[row.kind]
        index = taken[field] = taken.get(field, -1) + 1
        built = getattr(record, field)[index]
        wanted, own = getattr(built, "identity", None), getattr(built, "id", None)
        differing = [] if row.identity == wanted and type(row.identity) is type(wanted) else ["identity"]
        if own is not None and (row.id != own or type(row.id) is not type(own)):  # what link and search find it by
            differing.append("id")
        if differing:
            raise ValidationError(
                f"{row.kind} {own or ''}: its row does not say what its body says ({', '.join(differing)})",
                where=f"record {record.id}",
            )
    logged = None if seqs is None else list(seqs)
    if logged is not None and len(logged) != len(rows):
        raise ValidationError(
            f"it has {len(rows)} acquisition row(s), where its log recorded {len(logged)}", where=f"record {record.id}"
        )
    for number, (acquisition, row) in enumerate(zip(record.acquisitions, rows, strict=True)):
        # What adding it writes (custody_seq: the event that logged it, when the replay says).
        seq = row.custody_seq if logged is None else logged[number]
        wanted = acquisition_row(record.id, acquisition, seq, body=row.body)
        differing = [name for name in _ACQUISITION_INDEX if not _same_column(name, getattr(row, name), wanted[name])]
        if differing:
            raise ValidationError(
                f"acquisition {acquisition.id}: its row does not say what its body says ({', '.join(differing)})",
                where=f"record {record.id}",
            )


def _same_column(name: str, found: Any, wanted: Any) -> bool:
    """Whether a stored column holds what :func:`acquisition_row` writes there: the same value
    of the same type (a time as the instant it names, SQLite handing times back without zone)."""
    if name == "started_at":
        try:
            return bool(aware(found) == wanted)
        except (TypeError, ValueError, AttributeError):
            return False
    return bool(found == wanted) and type(found) is type(wanted)


#: The columns of an artifact's row that describe it (what :func:`_artifact_from_row` reads).
_ARTIFACT_COLUMNS = ("sha256", "size", "media_type", "md5", "sha1", "sha512", "blake2b", "extracted")


def _checked(record_id: str, build: Callable[[], model.EvidenceRecord]) -> model.EvidenceRecord:
    """``build()``, with rows that do not make a valid record a :class:`ValidationError` naming
    the record (a missing record stays a :class:`NotFoundError`)."""
    try:
        return build()
    except NotFoundError:
        raise
    except EvidenceError as exc:
        raise ValidationError(str(exc), where=f"record {record_id}") from exc
    except (TypeError, ValueError, KeyError) as exc:  # a row edited into nonsense
        raise ValidationError(f"{type(exc).__name__}: {exc}", where=f"record {record_id}") from exc


def _build_record(record_id: str, rows: _RecordRows) -> model.EvidenceRecord:
    """The record *record_id* from its rows; :class:`NotFoundError` when it has none."""
    row = rows.own.get(record_id)
    if row is None:
        raise no_record(record_id)
    parts: dict[str, list[Any]] = {name: [] for name in _PART_FIELDS.values()}
    for part in rows.parts[record_id]:
        parts[_PART_FIELDS[part.kind]].append(structure(part.body, PART_KINDS[part.kind]))
    return model.EvidenceRecord(
        id=row.id,
        created_at=aware(row.created_at),
        created_by=structure(row.created_by, model.Agent),
        title=row.title,
        artifacts=[
            model.RecordArtifact(
                artifact=_artifact_from_row(artifact),
                role=entry.role,
                derived_from=entry.derived_from or (),
                derivation=entry.derivation,
                version_of=entry.version_of,
            )
            for entry, artifact in rows.entries[record_id]
        ],
        acquisitions=[structure(a.body, model.Acquisition) for a in rows.acquisitions[record_id]],
        tags=rows.tags[record_id],
        **parts,
    )


def _item_key(acquisition: model.Acquisition) -> str | None:
    if acquisition.method is not model.AcquisitionMethod.CAPTURED_FROM_URL:
        return None
    return model.item_key(acquisition.extractor, acquisition.platform_id)


def artifact_row(artifact: model.Artifact, at: dt.datetime) -> dict[str, Any]:
    """The ``artifact`` row describing stored bytes, catalogued at *at*."""
    digests = artifact.digests
    return {
        "sha256": digests.sha256,
        "size": artifact.size,
        "media_type": artifact.media_type,
        "md5": digests.md5,
        "sha1": digests.sha1,
        "sha512": digests.sha512,
        "blake2b": digests.blake2b,
        "extracted": None if artifact.metadata is None else unstructure(artifact.metadata),
        "stored_at": at,
    }


def record_row(record: model.EvidenceRecord) -> dict[str, Any]:
    """The ``record`` row of a record's own columns."""
    return {
        "id": record.id,
        "created_at": record.created_at,
        "created_by": _agent_document(record.created_by),
        "title": record.title,
    }


def record_artifact_row(record_id: str, entry: model.RecordArtifact, position: int) -> dict[str, Any]:
    """The ``record_artifact`` row putting an artifact on a record at *position*."""
    return {
        "record_id": record_id,
        "sha256": entry.artifact.sha256,
        "position": position,
        "role": entry.role.value,
        "derived_from": list(entry.derived_from) or None,
        "derivation": entry.derivation,
        "version_of": entry.version_of,
    }


def acquisition_row(
    record_id: str, acquisition: model.Acquisition, custody_seq: int, position: int = 0, *, body: Any = None
) -> dict[str, Any]:
    """The ``acquisition`` row of an acquisition on a record, logged by event *custody_seq*
    (the *position*-th that event logged); *body* is ``unstructure(acquisition)`` when the
    caller has it already."""
    return {
        "id": acquisition.id,
        "record_id": record_id,
        "artifact_sha256": acquisition.artifact_sha256,
        "method": acquisition.method.value,
        "started_at": acquisition.started_at,
        "custody_seq": custody_seq,
        "requested_url": acquisition.requested_url,
        "platform_key": _item_key(acquisition),
        "outcome": acquisition.outcome.value,
        "position": position,
        "body": unstructure(acquisition) if body is None else body,
    }


def part_row(
    record_id: str, kind: str, part: Any, custody_seq: int, position: int, *, body: Any = None
) -> dict[str, Any]:
    """The ``record_part`` row of a report, note, flag, relation, claim or assessment; *body*
    is ``unstructure(part)`` when the caller has it already."""
    return {
        "id": getattr(part, "id", None) or model.new_id(),
        "record_id": record_id,
        "kind": kind,
        "identity": getattr(part, "identity", None),
        "position": position,
        "custody_seq": custody_seq,
        "body": unstructure(part) if body is None else body,
    }


_ROW_TYPES: dict[str, Any] = {
    "artifact": ArtifactRow,
    "record": RecordRow,
    "record_tag": RecordTagRow,
    "record_artifact": RecordArtifactRow,
    "acquisition": AcquisitionRow,
    "record_part": RecordPartRow,
}


def _artifact_from_row(row: Any) -> model.Artifact:
    return model.Artifact(
        digests=model.Digests(sha256=row.sha256, md5=row.md5, sha1=row.sha1, sha512=row.sha512, blake2b=row.blake2b),
        size=row.size,
        media_type=row.media_type,
        metadata=None if row.extracted is None else structure(row.extracted, model.EmbeddedMetadata),
    )
