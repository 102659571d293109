"""Commands that need no catalog of their own yet: ``init`` (a new catalog) and ``schema`` (the
published JSON Schemas)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import click

from evidence_catalog.cli.app import cli
from evidence_catalog.cli.options import LazyChoice, operator_option, quiet_option
from evidence_catalog.cli.output import agent_text, echo_json, printable
from evidence_catalog.errors import InputError
from evidence_catalog.paths import display_path


@cli.command()
@click.argument("path", type=click.Path())
@operator_option
@click.option(
    "--digest",
    "digests",
    multiple=True,
    type=click.Choice(["md5", "sha1", "sha512", "blake2b"]),
    help="Extra digest to compute for every artifact, besides SHA-256 (repeatable).",
)
@click.option("--organization", help="The operator's organisation, recorded with every action.")
@click.option(
    "--database",
    metavar="URL",
    help="Keep the database in PostgreSQL (postgresql+psycopg://host/dbname, an empty database) "
    "instead of catalog.db in PATH.  A password in the URL is used now and never stored.",
)
@click.option(
    "--blobs",
    metavar="URL",
    help="Keep the blobs in S3-compatible object storage (s3://bucket/prefix) instead of PATH/blobs.",
)
@click.option("--blobs-endpoint", metavar="URL", help="The S3-compatible server's endpoint, when not AWS itself.")
@quiet_option
def init(
    path: str,
    operator: str | None,
    digests: Sequence[str],
    organization: str | None,
    database: str | None,
    blobs: str | None,
    blobs_endpoint: str | None,
    quiet: bool,
) -> None:
    """Create a new, empty catalog in PATH.

    PATH holds the catalog's settings and log key; by default also its SQLite database and its
    blobs.  A team's catalog keeps them in PostgreSQL and object storage (--database, --blobs);
    credentials come from the environment, never from the catalog.

    Without --operator (or $EVIDENCE_CATALOG_OPERATOR) the operator is the operating-system
    account running init, recorded by its name; init says so on standard error.
    """
    import attrs

    from evidence_catalog.catalog import Catalog
    from evidence_catalog.config import CONFIG_FILE, OPERATOR_ENV, parse_operator, resolve_operator
    from evidence_catalog.store.database import check_database_url
    from evidence_catalog.store.objectstore import check_endpoint_url, parse_blobs_url

    from_account = operator is None and not os.environ.get(OPERATOR_ENV, "").strip()
    agent = resolve_operator(operator, None)
    if organization is not None:
        agent = attrs.evolve(agent, organization=parse_operator(organization, where="--organization").name)
    if blobs_endpoint is not None and blobs is None:
        raise InputError("--blobs-endpoint needs --blobs", where="--blobs-endpoint")
    # The library's errors name its parameters (database, blobs, blobs_endpoint_url): checked here
    # first, the same way, they name the options.
    if database is not None:
        check_database_url(database, where="--database")
    if blobs is not None:
        parse_blobs_url(blobs, where="--blobs")
    if blobs_endpoint is not None:
        check_endpoint_url(blobs_endpoint, where="--blobs-endpoint")
    with Catalog.init(
        path,
        operator=agent,
        algorithms=("sha256", *digests),
        database=database,
        blobs=blobs,
        blobs_endpoint_url=blobs_endpoint,
    ) as catalog:
        if not quiet:
            who = agent_text(attrs.evolve(catalog.operator, host=None))
            click.echo(f"created catalog {display_path(catalog.path)} (operator: {who})")
            if database is not None and catalog.config.database_url is not None:
                click.echo(f"database: {catalog.config.database_url}")
            if blobs is not None:
                click.echo(f"blobs:    {catalog.blobs.location}")
        if from_account:
            account = printable(catalog.operator.name)
            click.echo(
                f"note: no --operator given: this catalog's default operator is the operating-system account "
                f"'{account}', recorded as the actor of every action that names no other; to record a person, "
                f"set name and email under [operator] in {CONFIG_FILE}, or give --operator 'NAME <EMAIL>' "
                f"(or ${OPERATOR_ENV})",
                err=True,
            )


def _schema_names() -> list[str]:
    from evidence_catalog.schema_files import SCHEMA_FILES

    return sorted(SCHEMA_FILES)


@cli.command()
@click.argument("name", type=LazyChoice(_schema_names))
def schema(name: str) -> None:
    """Print a published JSON Schema."""
    from evidence_catalog.schema_files import load_schema

    echo_json(load_schema(name))
