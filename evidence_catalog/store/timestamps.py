"""The queue of RFC 3161 time-stamp requests in the database, and what became of each."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from evidence_catalog.store.engine import Connections, execute, table_of
from evidence_catalog.store.inserts import insert_row
from evidence_catalog.store.tables import TimestampTokenRow


class TimestampQueue(Connections):
    """Time-stamp requests and tokens (part of :class:`~evidence_catalog.store.database.CatalogDatabase`)."""

    def queue_timestamp(
        self, session: Session, *, kind: str, subject: str, data_sha256: str, url: str, at: dt.datetime
    ) -> bool:
        """Queue a time-stamp request unless one for the same subject is pending or granted."""
        table = table_of(TimestampTokenRow)
        known = execute(
            session,
            sa.select(table.c.id).where(
                table.c.subject_kind == kind, table.c.subject == subject, table.c.status.in_(("pending", "granted"))
            ),
        ).first()
        if known is not None:
            return False
        insert_row(
            session,
            TimestampTokenRow,
            subject_kind=kind,
            subject=subject,
            data_sha256=data_sha256,
            tsa_url=url,
            status="pending",
            requested_at=at,
        )
        return True

    def timestamps(self, session: Session, status: str | None = None) -> list[sa.Row[Any]]:
        """Time-stamp requests and tokens, oldest first (only those with *status* if given), as
        plain rows whose members are the columns of :class:`TimestampTokenRow`."""
        table = table_of(TimestampTokenRow)
        query = sa.select(table).order_by(table.c.id)
        if status is not None:
            query = query.where(table.c.status == status)
        return list(execute(session, query))

    def settle_timestamp(
        self,
        session: Session,
        row_id: int,
        status: str,
        *,
        token: str | None = None,
        gen_time: dt.datetime | None = None,
        error: str | None = None,
        url: str | None = None,
    ) -> None:
        """Record what became of a queued request (and the TSA that granted it, *url*)."""
        table = table_of(TimestampTokenRow)
        values: dict[str, Any] = {"status": status, "token": token, "gen_time": gen_time, "error": error}
        if url is not None:
            values["tsa_url"] = url
        execute(session, sa.update(table).where(table.c.id == row_id).values(**values))
