"""Reading the custody log a page at a time, and the latest verification: what a viewer (or a
script) shows without reading the whole log.  Nothing here writes."""

from __future__ import annotations

from evidence_catalog import model
from evidence_catalog.custody import Action
from evidence_catalog.errors import InputError
from evidence_catalog.operations.common import check_limit
from evidence_catalog.operations.context import Context

#: The most events :func:`custody_events` gives at once.
MAX_EVENT_PAGE = 10_000


def custody_events(ctx: Context, *, after: int = 0, limit: int = 100) -> list[model.CustodyEvent]:
    """The custody events numbered after *after* (0: from the first), at most *limit* (up to
    :data:`MAX_EVENT_PAGE`), in log order: the log a page at a time.  The next page starts
    after the last ``seq`` of this one."""
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise InputError(f"after must be an event number (0 or more), got {after!r}", where="after")
    check_limit(limit)
    if limit > MAX_EVENT_PAGE:
        raise InputError(f"at most {MAX_EVENT_PAGE} events at once, not {limit}", where="limit")
    with ctx.db.read() as session:
        return ctx.db.event_page(session, after=after, limit=limit)


def log_size(ctx: Context) -> int:
    """How many events the custody log holds."""
    with ctx.db.read() as session:
        return ctx.db.tree_size(session)


def last_verification(ctx: Context) -> model.CustodyEvent | None:
    """The latest ``catalog.verified`` event (its details say whether it found anything), or
    ``None`` when the catalog was never verified with a writable copy -- or when that event is
    not the one its hash, its Merkle leaf and the latest signed checkpoint commit to (someone
    who can write the database could otherwise have it say that all was well)."""
    from evidence_catalog.operations.record_checks import event_findings

    with ctx.db.read() as session:
        found = ctx.db.latest_event(session, Action.CATALOG_VERIFIED)
        if found is None or event_findings(ctx, session, [found]):
            return None
        return found


def flagged_record_ids(ctx: Context) -> list[str]:
    """The ids of the records that carry a sensitivity flag, oldest first: what a view that
    withholds flagged material plans its withholding from."""
    with ctx.db.read() as session:
        return ctx.db.flagged_record_ids(session)


def record_events(ctx: Context, record_id: str) -> list[model.CustodyEvent]:
    """The custody events that concern one record, in log order: those about it, the
    time-stamps of its files, and the exports that named it (what its exhibit lists)."""
    from evidence_catalog.operations.common import check_record_exists, check_record_id
    from evidence_catalog.operations.record_checks import events_about

    check_record_id(record_id)
    with ctx.db.read() as session:
        check_record_exists(ctx, session, record_id)
        return events_about(ctx, session, record_id, ctx.db.artifacts_of(session, record_id))
