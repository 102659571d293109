"""Alembic environment: runs on the connection the catalog hands over (never a URL from an ini)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from evidence_catalog.store import tables  # noqa: F401  (registers the tables on the metadata)
from evidence_catalog.store.search import outside_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    include_name=outside_metadata,  # the full-text index is made by hand, not from a table
    render_as_batch=True,  # SQLite alters tables by copy; batch mode does that for us
)
with context.begin_transaction():
    context.run_migrations()
