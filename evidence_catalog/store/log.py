"""The custody log in the database: its events, the Merkle tree over them, and the checkpoints of
that tree.

Events are appended only here (:meth:`CustodyLog.append_events`), in a write transaction, which
holds the catalog's one write lock (see :mod:`evidence_catalog.store.engine`): each is linked to
the last event as that transaction sees it, and the perfect subtrees of the Merkle tree each one
completes are stored with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypedDict

import sqlalchemy as sa
from sqlmodel import Session

from evidence_catalog import merkle, model
from evidence_catalog.checkpoint import stated
from evidence_catalog.custody import ChainHead, event_leaf
from evidence_catalog.errors import IntegrityError, ValidationError
from evidence_catalog.sealing import Presealed, sealed_event, sealed_salted
from evidence_catalog.serialize import _agent_document, format_timestamp, structure
from evidence_catalog.store.engine import Connections, aware, execute, strict_json, table_of
from evidence_catalog.store.inserts import insert_many, insert_row
from evidence_catalog.store.jsontext import JSONText
from evidence_catalog.store.tables import CheckpointRow, CustodyEventRow, MerkleNodeRow


class EventDraft(TypedDict):
    """An event's content before it is linked into the log (see :meth:`append_events`)."""

    at: dt.datetime
    actor: model.Agent
    action: str
    subject: str
    details: dict[str, Any]


class CustodyLog(Connections):
    """The custody log, its Merkle tree and its checkpoints (part of
    :class:`~evidence_catalog.store.database.CatalogDatabase`)."""

    @staticmethod
    def appended(session: Session) -> bool:
        """Whether the write transaction *session* appended custody events (asked once, at its
        end: the operation that commits it then writes the checkpoint that ends it)."""
        return bool(session.info.pop("appended", False))

    def append_event(
        self,
        session: Session,
        *,
        at: dt.datetime,
        actor: model.Agent,
        action: str,
        subject: str,
        details: dict[str, Any],
    ) -> model.CustodyEvent:
        """Append one event to the custody log, linked to the last one (the only appender)."""
        [event] = self.append_events(
            session, [EventDraft(at=at, actor=actor, action=action, subject=subject, details=details)]
        )
        return event

    def append_events(
        self,
        session: Session,
        drafts: Sequence[EventDraft],
        presealed: Sequence[Presealed | None] | None = None,
        written: Sequence[Mapping[str, JSONText]] | None = None,
    ) -> list[model.CustodyEvent]:
        """Append events in order, each linked to the one before it (the first to the log's last
        event), with one insert for all of them (a large ingest writes thousands).

        With *presealed* (one for each draft), every draft's details hold their secret already
        (:func:`~evidence_catalog.sealing.with_secret`), and each event is sealed from its
        :func:`~evidence_catalog.sealing.preseal` where that is not ``None``.  With *written*
        (one for each draft), the members of a draft's details that are also written to rows of
        their own, by name, as those rows are given them: each written once."""
        table = table_of(CustodyEventRow)
        head: model.CustodyEvent | ChainHead | None = _log_head(session)
        events, leaves = [], []
        if presealed is not None and len(presealed) != len(drafts):
            raise ValueError("one presealed form for each draft")
        if written is not None and len(written) != len(drafts):
            raise ValueError("one set of written members for each draft")
        for index, draft in enumerate(drafts):
            if presealed is None:
                head, leaf = sealed_event(head, **draft)
            else:
                head, leaf = sealed_salted(head, draft, presealed[index])
            events.append(head)
            leaves.append(leaf)
        if events:
            insert_many(
                session,
                table,
                [
                    {
                        "seq": e.seq,
                        "at": e.at,
                        "actor": _agent_document(e.actor),
                        "action": e.action,
                        "subject": e.subject,
                        "details": e.details if written is None else JSONText(e.details, written[index]),
                        "prev_hash": e.prev_hash,
                        "hash": e.hash,
                    }
                    for index, e in enumerate(events)
                ],
            )
            self._add_leaves(session, events, leaves)
        return events

    def _add_leaves(self, session: Session, events: Sequence[model.CustodyEvent], leaves: Sequence[bytes]) -> None:
        """Put new events (with their leaves) into the Merkle tree (the perfect subtrees each
        one completes), and mark the session so that its transaction ends with a checkpoint."""
        _insert_nodes(session, [(e.seq - 1, leaf) for e, leaf in zip(events, leaves, strict=True)])
        session.info[_HEAD] = ChainHead(seq=events[-1].seq, hash=events[-1].hash)
        session.info["appended"] = True
        # How long the log was before this transaction: what the checkpoint at its end must find
        # covered already by a signed one (see operations.log_key.write_checkpoint).
        session.info.setdefault(LOG_SIZE_BEFORE, events[0].seq - 1)

    # -- Merkle tree and checkpoints ----------------------------------------------------------

    def tree_size(self, session: Session) -> int:
        """How many events the log has (its Merkle tree's size)."""
        table = table_of(CustodyEventRow)
        return int(execute(session, sa.select(sa.func.coalesce(sa.func.max(table.c.seq), 0))).scalar_one())

    def subtrees(self, session: Session) -> merkle.SubtreeSource:
        """Stored perfect subtrees, read on demand (:class:`~evidence_catalog.merkle.MerkleError`
        for one that is missing)."""
        return _stored_subtrees(session)

    def merkle_root(self, session: Session, size: int | None = None) -> bytes:
        """The root of the first *size* events (all when ``None``)."""
        return merkle.root(self.subtrees(session), self.tree_size(session) if size is None else size)

    def stored_nodes(self, session: Session) -> dict[tuple[int, int], bytes]:
        """Every node the stored Merkle tree holds, by (level, index); damaged hex reads as b""."""
        table = table_of(MerkleNodeRow)
        found = {}
        for row in execute(session, sa.select(table.c.level, table.c.idx, table.c.hash)):
            try:
                found[(int(row.level), int(row.idx))] = bytes.fromhex(row.hash)
            except (TypeError, ValueError):
                found[(int(row.level), int(row.idx))] = b""
        return found

    def stored_tree(self, session: Session, *, page: int = 4096) -> StoredTree:
        """The stored Merkle tree, for a check that walks it in log order (see
        :class:`StoredTree`): a window of *page* nodes of each level held at a time."""
        return StoredTree(session, page)

    def add_checkpoint(
        self, session: Session, *, size: int, root: bytes, note: str, signed: bool, at: dt.datetime
    ) -> None:
        """Keep a checkpoint of the log."""
        insert_row(
            session, CheckpointRow, tree_size=size, root_hash=root.hex(), note=note, signed=signed, created_at=at
        )

    # The checkpoints are read as plain rows (``sa.Row``, whose members are the columns of
    # :class:`CheckpointRow`), not as ORM objects: the first ORM query of a process sets up
    # every mapped class, about 8 ms that every write (which checks the signed history) paid.

    def checkpoints(self, session: Session) -> list[sa.Row[Any]]:
        """Every checkpoint kept, oldest first."""
        table = table_of(CheckpointRow)
        return list(execute(session, sa.select(table).order_by(table.c.id)))

    def checkpoint(self, session: Session, checkpoint_id: int) -> KeptCheckpoint | None:
        """The checkpoint with this number, if kept (its size and root as its note states them)."""
        table = table_of(CheckpointRow)
        row = execute(session, sa.select(table).where(table.c.id == checkpoint_id)).first()
        return None if row is None else kept(row)

    def signed_checkpoints_by_size(self, session: Session) -> Iterator[sa.Row[Any]]:
        """The checkpoints kept as signed, largest (as their rows say) first, newest first among
        equals; read a page at a time (no cursor is left open between them), as a caller stops
        at the first one that checks -- in a catalog that was not tampered with, the first."""
        table = table_of(CheckpointRow)
        query = sa.select(table).where(table.c.signed.is_(True)).order_by(table.c.tree_size.desc(), table.c.id.desc())
        offset, page = 0, 8
        while rows := list(execute(session, query.offset(offset).limit(page))):
            yield from rows
            offset, page = offset + len(rows), min(page * 4, 4096)

    def latest_checkpoint(self, session: Session, *, signed: bool = False) -> KeptCheckpoint | None:
        """The newest checkpoint (the newest signed one with *signed*), if any: its size and
        root as its note states them (:func:`kept`)."""
        table = table_of(CheckpointRow)
        query = sa.select(table).order_by(table.c.id.desc()).limit(1)
        if signed:
            query = query.where(table.c.signed.is_(True))
        row = execute(session, query).first()
        return None if row is None else kept(row)

    def event_documents(
        self, session: Session, subject: str | None = None, *, action: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """The custody log in sequence order as plain JSON objects, read from the stored text.

        Nothing is validated or trusted: a damaged column (JSON that does not parse, a time
        that is not a time) is handed on as the text it holds, so that verification can name
        the event instead of failing on it.
        """
        for row in self.event_rows(session, subject, action=action):
            yield event_document(row)

    def event_rows(
        self, session: Session, subject: str | None = None, *, action: str | None = None
    ) -> Iterator[EventRow]:
        """:meth:`event_documents` before they are made: each event's stored columns as they
        are, ``(seq, at, actor, details, action, subject, prev_hash, hash)`` (the time and the
        JSON as text), for :func:`event_document` to make the document of (a verification's
        worker processes make them: the text is less to send than the document)."""
        table = table_of(CustodyEventRow)
        as_text = [sa.cast(table.c[name], sa.Text) for name in ("at", "actor", "details")]
        query = sa.select(
            table.c.seq, *as_text, table.c.action, table.c.subject, table.c.prev_hash, table.c.hash
        ).order_by(table.c.seq)
        if subject is not None:
            query = query.where(table.c.subject == subject)
        if action is not None:
            query = query.where(table.c.action == action)
        # Streamed (a server-side cursor on PostgreSQL, whose driver otherwise fetches the whole
        # result at once): verifying a log of millions of events holds one page at a time.
        for row in execute(session, query.execution_options(stream_results=True, yield_per=2000)):
            yield tuple(row)

    def event_details_holding(self, session: Session, actions: Sequence[str], text: str) -> list[Any]:
        """The details (parsed) of the events of *actions* whose stored details text holds
        *text* (letters, digits, dots and slashes only: no pattern), in log order; details that
        do not parse are left out.  One scan of those events' text, for the rare question of
        which events name a file (``fsck`` asking after the damaged copies moved aside)."""
        if not text or not all(c.isalnum() or c in "./" for c in text):
            raise ValueError("only letters, digits, dots and slashes are looked for")
        table = table_of(CustodyEventRow)
        details = sa.cast(table.c.details, sa.Text)
        query = (
            sa.select(details).where(table.c.action.in_(list(actions)), details.like(f"%{text}%")).order_by(table.c.seq)
        )
        found = []
        for (body,) in execute(session, query):
            try:
                found.append(strict_json(body) if isinstance(body, str) else body)
            except ValueError:
                continue
        return found

    def event_page(self, session: Session, *, after: int = 0, limit: int = 100) -> list[model.CustodyEvent]:
        """The events numbered after *after*, at most *limit* of them, in log order (a range
        of the primary key: as fast at the millionth event as at the first)."""
        table = table_of(CustodyEventRow)
        as_text = [sa.cast(table.c[name], sa.Text) for name in ("at", "actor", "details")]
        query = (
            sa.select(table.c.seq, *as_text, table.c.action, table.c.subject, table.c.prev_hash, table.c.hash)
            .where(table.c.seq > after)
            .order_by(table.c.seq)
            .limit(limit)
        )
        return [structure_event(event_document(tuple(row))) for row in execute(session, query)]

    def latest_event(self, session: Session, action: str) -> model.CustodyEvent | None:
        """The last event with this action, if any (the action column is indexed)."""
        table = table_of(CustodyEventRow)
        query = sa.select(sa.func.max(table.c.seq)).where(table.c.action == action)
        seq = execute(session, query).scalar_one()
        if seq is None:
            return None
        found = self.event_page(session, after=int(seq) - 1, limit=1)
        return found[0] if found else None

    def events_by_action(self, session: Session, action: str) -> list[model.CustodyEvent]:
        """The events with one action, in log order (the action column is indexed)."""
        return [structure_event(document) for document in self.event_documents(session, action=action)]

    def events(self, session: Session, subject: str | None = None) -> Iterator[model.CustodyEvent]:
        """The custody log in sequence order, optionally only events about *subject*.

        Raises :class:`ValidationError` naming the first event that is not a valid event.
        """
        for document in self.event_documents(session, subject):
            yield structure_event(document)


class KeptCheckpoint(NamedTuple):
    """A checkpoint row as what reads it for a proof, an export or an exhibit takes it."""

    id: int | None
    tree_size: int
    root_hash: str
    note: str
    signed: bool
    created_at: dt.datetime


def kept(row: Any) -> KeptCheckpoint:
    """A checkpoint row with the size and root its note states (:func:`~evidence_catalog.checkpoint.stated`),
    not its columns' word for them (SQL can change those alone: ``verify`` names such a row); the
    columns where the note cannot be read.  :class:`IntegrityError` for a note that is not even
    text: nothing can be handed out of such a row (``verify`` names it)."""
    if not isinstance(row.note, str):
        raise IntegrityError(
            "its note is not text (the row was edited); run `evidence-catalog verify`", where=f"checkpoint {row.id}"
        )
    found = stated(row.note)
    if found is None:
        return KeptCheckpoint(row.id, row.tree_size, row.root_hash, row.note, row.signed, row.created_at)
    return KeptCheckpoint(row.id, found.size, found.root.hex(), row.note, row.signed, row.created_at)


class StoredTree:
    """The stored Merkle tree's nodes, read a window of one level at a time: :meth:`node` of
    each level asked in increasing index order (as a log read from its start completes them)
    costs one query per *page* nodes of that level, and memory is a window per level, not the
    tree (a log of a million events stores two million nodes)."""

    def __init__(self, session: Session, page: int) -> None:
        self._session = session
        self._page = page
        self._windows: dict[int, tuple[int, dict[int, str | None]]] = {}

    def node(self, level: int, index: int) -> bytes | None:
        """The stored hash of the perfect subtree (*level*, *index*): ``None`` when no row holds
        it, ``b""`` when its row's hash is not hex (damaged)."""
        window = self._windows.get(level)
        if window is None or not window[0] <= index < window[0] + self._page:
            start = index - index % self._page
            table = table_of(MerkleNodeRow)
            query = sa.select(table.c.idx, table.c.hash).where(
                table.c.level == level, table.c.idx >= start, table.c.idx < start + self._page
            )
            window = self._windows[level] = (start, {row.idx: row.hash for row in execute(self._session, query)})
        if index not in window[1]:
            return None
        try:
            return bytes.fromhex(window[1][index])  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return b""


def _json_text(text: str | None) -> Any:
    """The JSON *text* holds, or *text* itself when it does not parse or names a member twice
    (Python keeps the last, SQLite's ``json_extract`` the first: text that reads two ways is
    not what was hashed, and is handed on as damaged)."""
    try:
        return None if text is None else strict_json(text)
    except ValueError:
        return text


def _timestamp_text(text: str | None) -> Any:
    try:
        return format_timestamp(aware(dt.datetime.fromisoformat(str(text))))
    except ValueError:
        return text


def structure_event(document: dict[str, Any]) -> model.CustodyEvent:
    """The custody event a stored document holds; :class:`ValidationError` naming the event."""
    try:
        return structure(document, model.CustodyEvent)
    except ValidationError as exc:
        raise ValidationError(exc.message, where=f"custody event {document.get('seq')}") from exc


def _stored_subtrees(bind: Session | sa.Connection) -> merkle.SubtreeSource:
    table = table_of(MerkleNodeRow)
    cache: dict[tuple[int, int], bytes] = {}

    def subtree(level: int, index: int) -> bytes:
        found = cache.get((level, index))
        if found is None:
            text = bind.execute(sa.select(table.c.hash).where(table.c.level == level, table.c.idx == index)).scalar()
            if text is None:
                raise merkle.MerkleError(f"the Merkle tree has no node at level {level}, index {index}")
            found = cache[(level, index)] = bytes.fromhex(text)
        return found

    return subtree


def _insert_nodes(bind: Session | sa.Connection, leaves: Sequence[tuple[int, bytes]]) -> None:
    """Insert leaves (index, leaf hash), in order after those stored, with every perfect subtree
    each completes."""
    if not leaves:
        return
    stored = _stored_subtrees(bind)
    # Nodes this transaction wrote, kept for its later appends: the sibling a new leaf needs
    # was, almost always, written moments before (a batch of files appends an event per file).
    # Only a session's: a connection's ``info`` outlives the transaction (it stays with the pool).
    written: dict[tuple[int, int], bytes] = bind.info.setdefault(_NODES, {}) if isinstance(bind, Session) else {}
    added: dict[tuple[int, int], bytes] = {}

    def subtree(level: int, index: int) -> bytes:
        return added.get((level, index)) or written.get((level, index)) or stored(level, index)

    for index, leaf in leaves:
        for level, position, value in merkle.completed_nodes(index, leaf, subtree):
            added[(level, position)] = value
    insert_many(
        bind,
        table_of(MerkleNodeRow),
        [{"level": level, "idx": index, "hash": value.hex()} for (level, index), value in added.items()],
    )
    written.update(added)


#: ``Session.info`` keys of what one write transaction appended: the log's last event, and the
#: Merkle nodes it wrote.  Only :meth:`CustodyLog.append_events` adds events, under the write
#: lock, and a session is one transaction: nothing else moves them.
_HEAD = "log_head"
_NODES = "merkle_nodes_written"
#: ``Session.info`` key: how many events the log had before the transaction appended any.
LOG_SIZE_BEFORE = "log_size_before"


def _log_head(session: Session) -> ChainHead | None:
    """The last event of the log as this transaction sees it (read once, then kept)."""
    head: ChainHead | None = session.info.get(_HEAD)
    if head is None:
        table = table_of(CustodyEventRow)
        last = execute(session, sa.select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)).first()
        head = None if last is None else ChainHead(seq=last.seq, hash=last.hash)
    return head


def build_merkle_nodes(bind: sa.Connection) -> None:
    """Fill ``merkle_node`` from the events already in the log (migration 0005), in batches."""
    table = table_of(CustodyEventRow)
    as_text = [sa.cast(table.c[name], sa.Text) for name in ("at", "actor", "details")]
    query = sa.select(table.c.seq, *as_text, table.c.action, table.c.subject, table.c.prev_hash, table.c.hash).order_by(
        table.c.seq
    )
    batch: list[tuple[int, bytes]] = []
    for row in bind.execute(query):
        batch.append((row[0] - 1, event_leaf(event_document(tuple(row)))))
        if len(batch) == 5000:
            _insert_nodes(bind, batch)
            batch = []
    _insert_nodes(bind, batch)


#: An event's stored columns (see :meth:`CustodyLog.event_rows`).
EventRow = tuple[Any, ...]


def event_document(row: Sequence[Any]) -> dict[str, Any]:
    """An event document from a row (seq, at, actor, details as text, action, subject,
    prev_hash, hash): damaged text is handed on as it is."""
    seq, at, actor, details, action, about, prev_hash, stored_hash = row
    return {
        "seq": seq,
        "at": _timestamp_text(at),
        "actor": _json_text(actor),
        "action": action,
        "subject": about,
        "prev_hash": prev_hash,
        "hash": stored_hash,
        "details": _json_text(details),
    }
