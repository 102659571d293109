"""An import's events (:func:`import_drafts`), most of them presealed in a worker process while
the import writes its records.

Each imported record gets one ``record.imported`` event holding the record and the custody
events that came with it: some eighty values, each with its salted digest, which made sealing
those events two thirds of writing an import's records.  As an ingest does
(:mod:`~evidence_catalog.operations.ingesting_offload`, whose :class:`Presealing` this uses), an
import of :data:`~evidence_catalog.operations.ingesting_offload.OFFLOAD_ITEMS` records or more
forks one worker before it reads its source (while it holds little), and, once it writes, sends
the worker the events of most of each batch of records (:data:`SHARE`) a few batches ahead:
the worker makes their presealed forms while the import links and seals the rest of each batch
itself and writes the rows, and the import links each event from its form
(:func:`~evidence_catalog.sealing.sealed_salted`).

The worker computes; the import decides: what it does not bring back is sealed by the import
from the same details and secret, and the events, their hashes and leaves are the same either
way (``tests/test_import_offload.py`` holds them so).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evidence_catalog.custody import Action
from evidence_catalog.interchange.import_documents import hashed_lines
from evidence_catalog.interchange.importing import UNSIGNED_PROVENANCE_TAG, EventHasher, IncomingRecord
from evidence_catalog.operations.context import Context
from evidence_catalog.operations.ingesting_offload import Presealing, salted
from evidence_catalog.replay import imported_details
from evidence_catalog.sealing import Presealed
from evidence_catalog.store.database import EventDraft

#: The share of each batch's records whose event the worker preseals; the import seals the rest
#: itself while the worker works.  Sealing an imported record's event costs about twice what
#: writing its rows does, so with this share both processes are busy about as long.
SHARE = 0.85
#: Records whose events are sent to the worker ahead of the batch being written.
LEAD = 1000


def event_hasher(presealing: Presealing) -> EventHasher | None:
    """A bag's custody events hashed by the import's worker while the import reads the bag's
    records (the worker is idle until the import writes): each chunk of ``custody.jsonl``'s
    lines is sent to :func:`~evidence_catalog.interchange.import_documents.hashed_lines`, and
    the import checks each hash it gives back (hashing itself what it does not).  ``None``
    without a worker."""
    if not presealing.active:
        return None

    def send(chunk: list[bytes]) -> Callable[[], list[tuple[str, bytes] | None] | None]:
        future = presealing.submit(hashed_lines, chunk)

        def wait() -> list[tuple[str, bytes] | None] | None:
            found = presealing.answer_to(future)
            return found if isinstance(found, list) else None

        return wait

    return send


def import_drafts(
    ctx: Context, item: IncomingRecord, source: Mapping[str, Any], at: dt.datetime, unsigned: bool
) -> list[EventDraft]:
    """The events that import *item*: its ``record.imported`` event (the record, *source*, the
    custody events that came with it), and, for a record of *unsigned* provenance that does not
    say so yet, the ``tags.added`` event of the tag that says so."""
    record = item.record
    drafts = [
        EventDraft(
            at=at,
            actor=ctx.operator,
            action=Action.RECORD_IMPORTED,
            subject=record.id,
            details=imported_details(record, dict(source), item.history),
        )
    ]
    if unsigned and UNSIGNED_PROVENANCE_TAG not in record.tags:
        drafts.append(
            EventDraft(
                at=at,
                actor=ctx.operator,
                action=Action.TAGS_ADDED,
                subject=record.id,
                details={"tags": [UNSIGNED_PROVENANCE_TAG]},
            )
        )
    return drafts


def source_size(path: Path) -> int:
    """About how large an export's documents are (a bag's custody log, a JSON or JSON Lines
    file), 0 when it cannot be told: whether its import may hold enough records for a worker
    (:class:`~evidence_catalog.operations.ingesting_offload.Presealing`)."""
    try:
        return (path / "data" / "custody.jsonl").stat().st_size if path.is_dir() else path.stat().st_size
    except OSError:
        return 0


class ImportSeals:
    """The events of one import's records, in the order the records are written (see the
    module's documentation): :meth:`events` gives those of some records, with the presealed
    form of each (``None`` for each the import seals itself)."""

    def __init__(self, presealing: Presealing, order: Sequence[str], make: Callable[[str], list[EventDraft]]) -> None:
        """*order*: the ids of the records the import may write, in the order it writes them
        (it may leave some out); *make*: a record's events, as drafts."""
        self.presealing = presealing
        self.order = list(order)
        self.position = {record_id: index for index, record_id in enumerate(self.order)}
        self.make = make
        #: Each prepared record's drafts (salted where presealing), and whether the worker has
        #: its first.
        self.drafts: dict[str, tuple[list[EventDraft], bool]] = {}
        #: How many records (of *order*) are prepared; how many of the worker's forms are taken.
        self.prepared = 0
        self.taken = 0
        #: The records whose first event the worker has, in the order sent, and their places.
        self.sent_order: list[str] = []
        self.sent_index: dict[str, int] = {}
        self.forms: dict[str, Presealed | None] = {}
        #: The records of *order* before this one are written or left out: none of theirs is kept.
        self.released = 0

    def events(self, record_ids: Sequence[str]) -> tuple[list[EventDraft], list[Presealed | None] | None]:
        """The events of *record_ids* (in that order, ahead of those of any later call), as
        drafts, and each one's presealed form (``None`` without a worker: sealed as always)."""
        if not record_ids:
            return [], None
        known = [self.position[r] for r in record_ids if r in self.position]
        self._prepare(max(known, default=-1) + 1 + (LEAD if self.presealing.active else 0))
        for record_id in record_ids:
            if record_id not in self.drafts:  # not among those it was made for: sealed here
                events = self.make(record_id)
                self.drafts[record_id] = ([salted(e) for e in events] if self.presealing.active else events, False)
        drafts = [draft for record_id in record_ids for draft in self.drafts[record_id][0]]
        if not self.presealing.active:
            for record_id in record_ids:
                del self.drafts[record_id]
            self._release(max(known, default=-1) + 1)
            return drafts, None
        wanted = max((self.sent_index[r] for r in record_ids if self.drafts[r][1]), default=-1) + 1
        if wanted > self.taken:
            forms = self.presealing.take(wanted - self.taken)
            assert forms is not None  # (active)
            for record_id, form in zip(self.sent_order[self.taken : wanted], forms, strict=True):
                if self.position[record_id] >= self.released:  # (not one written or left out already)
                    self.forms[record_id] = form
            self.taken = wanted
        presealed: list[Presealed | None] = []
        for record_id in record_ids:
            events, worker = self.drafts.pop(record_id)
            presealed.append(self.forms.pop(record_id, None) if worker else None)
            presealed.extend([None] * (len(events) - 1))
        self._release(max(known, default=-1) + 1)
        return drafts, presealed

    def _release(self, end: int) -> None:
        """Keep nothing of the records of *order* before *end*: written, or left out by the
        import (another writer added them meanwhile)."""
        for record_id in self.order[self.released : end]:
            self.drafts.pop(record_id, None)
            self.forms.pop(record_id, None)
        self.released = max(self.released, end)

    def _prepare(self, end: int) -> None:
        """Make the drafts of the records of *order* up to *end*, and send the worker its share."""
        end = min(end, len(self.order))
        while self.prepared < end:
            record_id = self.order[self.prepared]
            events = self.make(record_id)
            worker = False
            if self.presealing.active:
                # Of every hundred records, the first SHARE go to the worker.
                worker = bool(events) and (self.prepared % 100) < SHARE * 100
                if worker:
                    self.sent_index[record_id] = len(self.sent_order)
                    self.sent_order.append(record_id)
                    events = [self.presealing.draft(events[0]), *(salted(e) for e in events[1:])]
                else:
                    events = [salted(e) for e in events]
            self.drafts[record_id] = (events, worker)
            self.prepared += 1
        self.presealing.flush()
