"""Records in and out of the catalog: ``export``, ``exhibit`` and ``import``."""

from __future__ import annotations

from collections.abc import Sequence

import click

from evidence_catalog.cli.app import EXIT_PROBLEMS, cli
from evidence_catalog.cli.options import (
    catalog_option,
    library_values,
    open_catalog,
    operator_option,
    quiet_option,
    record_criteria,
    record_filter_options,
)
from evidence_catalog.cli.output import echo_quarantined, printable
from evidence_catalog.cli.progress import bytes_progress, export_progress
from evidence_catalog.errors import EvidenceError, InputError
from evidence_catalog.paths import display_path


@cli.command()
@click.argument("record_ids", metavar="[ID]...", nargs=-1)
@catalog_option
@click.option(
    "--format", "fmt", type=library_values("operations.exporting", "EXPORT_FORMATS"), default="json", show_default=True
)
@click.option(
    "--output", "-o", required=True, type=click.Path(), help="File (or, for bagit, folder) to write; must not exist."
)
@record_filter_options
@click.option("--search", "search_text", metavar="TEXT", help="Records holding a report that matches TEXT.")
@click.option(
    "--redact", is_flag=True, help="BagIt, CASE: withhold what the records' flags name, and say so in the export."
)
@click.option("--sha512", is_flag=True, help="BagIt: add manifest-sha512.txt beside manifest-sha256.txt.")
@click.option("--bom", is_flag=True, help="CSV only: start with a UTF-8 byte order mark (for spreadsheet software).")
@operator_option
@quiet_option
def export(
    record_ids: Sequence[str],
    catalog_path: str,
    fmt: str,
    output: str,
    status: str | None,
    category: str | None,
    tags: Sequence[str],
    flags: Sequence[str],
    bbox: str | None,
    search_text: str | None,
    redact: bool,
    sha512: bool,
    bom: bool,
    operator: str | None,
    quiet: bool,
) -> None:
    """Export records: all, the IDs given, or those the filters choose (IDs and filters
    together: the IDs that meet the filters).

    bagit: a BagIt bag (a new folder) with the records, their artifacts and custody events,
    which bagit-python and sha256sum -c can check; json/jsonl: records and custody events;
    prov: W3C PROV-JSON provenance; csv: one row per artifact for spreadsheets; case: CASE/UCO
    1.5.0 JSON-LD (records, artifacts, acquisitions, custody chain, claims) for forensic tools,
    which case-utils' case_validate accepts.
    """
    with open_catalog(catalog_path, operator) as catalog:
        criteria = record_criteria(catalog, status, category, tags, flags, bbox)
        with export_progress(quiet=quiet or fmt != "bagit") as progress:
            result = catalog.export(
                output,
                format=fmt,  # type: ignore[arg-type]
                record_ids=list(record_ids) or None,
                where=criteria,
                search=search_text,
                bom=bom,
                redact=redact,
                sha512=sha512,
                progress=progress,
            )
    if not quiet:
        if result.format == "bagit":
            click.echo(
                f"exported {result.records} record(s), {result.artifacts} artifact file(s) and "
                f"{result.custody_events} custody event(s) to the bag {display_path(result.path)} "
                f"(Payload-Oxum {result.payload_oxum}, {result.external_identifier})"
            )
            if result.redacted:
                click.echo(
                    f"redacted: {result.withheld_artifacts} artifact(s) and {result.withheld_fields} field(s) "
                    "withheld (listed in data/contents.json)"
                )
        else:
            click.echo(
                f"exported {result.records} record(s) and {result.custody_events} custody event(s) "
                f"to {display_path(result.path)} (sha256 {result.sha256})"
            )
            if result.redacted:
                click.echo(
                    f"redacted: {result.withheld_artifacts} artifact(s) and {result.withheld_fields} field(s) "
                    "withheld (each record's annotation tagged 'redacted' says what and why)"
                )


@cli.command()
@click.argument("record_id", metavar="ID")
@catalog_option
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(),
    help="An existing folder (HTML and PDF written in it), or a new FILE.pdf or FILE.html.",
)
@click.option("--redact", is_flag=True, help="Withhold what the record's flags name, and say so in the exhibit.")
@operator_option
@quiet_option
def exhibit(record_id: str, catalog_path: str, output: str, redact: bool, operator: str | None, quiet: bool) -> None:
    """Write a court exhibit of one record: a self-contained HTML file and a PDF (PDF/A) that
    show its media, every digest, its acquisitions, embedded metadata, reports (text exactly),
    claims (as alleged), assessments, its whole custody history, the latest signed checkpoint
    with the record's inclusion proofs, its RFC 3161 tokens, and how to check it.

    The files written are logged as an export (records.exported, format exhibit) with their
    SHA-256s; an existing file is never replaced.
    """
    with open_catalog(catalog_path, operator) as catalog:
        result = catalog.exhibit(record_id, output, redact=redact)
    if not quiet:
        for path, sha in ((result.html, result.html_sha256), (result.pdf, result.pdf_sha256)):
            if path is not None:
                click.echo(f"wrote {display_path(path)} (sha256 {sha})")
        click.echo(
            f"exhibit of record {result.record_id}: {result.custody_events} custody event(s) shown"
            f"{', redacted' if result.redacted else ''}; logged as custody event {result.export_seq}"
        )


@cli.command(name="import")
@click.argument("source", type=click.Path(exists=False))
@catalog_option
@click.option(
    "--from",
    "source_format",
    type=click.Choice(["evidence-catalog", "auto-archiver"]),
    default="evidence-catalog",
    show_default=True,
    help="What made SOURCE: an export of evidence-catalog (a bag, JSON or JSON Lines), or "
    "bellingcat's auto-archiver (its CSV database, or the folder holding db.csv and its local storage).",
)
@click.option(
    "--blobs",
    type=click.Path(file_okay=False),
    help="JSON/JSON Lines: the exporting catalog (or its blobs folder), where the artifacts' bytes are.",
)
@click.option(
    "--accept-unsigned",
    is_flag=True,
    help="Import an export whose custody events no signed checkpoint of its own log key covers; "
    "its records are tagged provenance:unsigned.",
)
@click.option(
    "--keep-going",
    is_flag=True,
    help="auto-archiver: import the rows that are sound, list the others (exit code 1) instead of importing nothing.",
)
@click.option(
    "--source-version",
    metavar="VERSION",
    help="auto-archiver: its version, recorded when its output names none (its HTML reports do).",
)
@click.option(
    "--no-analyze",
    is_flag=True,
    help="auto-archiver: do not analyse the images and videos now (`analyze` can do it later).",
)
@operator_option
@quiet_option
def import_(
    source: str,
    catalog_path: str,
    source_format: str,
    blobs: str | None,
    accept_unsigned: bool,
    keep_going: bool,
    source_version: str | None,
    no_analyze: bool,
    operator: str | None,
    quiet: bool,
) -> None:
    """Import a bag, JSON or JSON Lines export made by evidence-catalog, or what auto-archiver archived.

    Everything is checked first (paths, completeness, Payload-Oxum, every digest, schemas, custody
    hashes; each record against what its custody events rebuild and each artifact against what
    its bytes say; the events against a checkpoint signed by the key their own log names);
    anything wrong is refused (exit code 2, whatever the reason) and nothing changes.  Records
    keep their ids; importing the same export again adds nothing.  The summary names the log key
    checked: compare its id with the one the sender gave you.

    With --from auto-archiver, each archived URL of its CSV becomes a record; every file is
    checked against the hash auto-archiver wrote of it.  Every finding is listed (row, field,
    why); one refuses the whole input unless --keep-going.  The images and videos imported are
    then analysed (perceptual hashes, keyframes, near-duplicates among the records already
    here) unless --no-analyze.
    """
    if source_format == "auto-archiver":
        if blobs is not None or accept_unsigned:
            raise InputError("--blobs and --accept-unsigned are for evidence-catalog exports", where="--from")
        _import_auto_archiver(source, catalog_path, keep_going, source_version, not no_analyze, operator, quiet)
        return
    if keep_going or source_version is not None or no_analyze:
        raise InputError("--keep-going, --source-version and --no-analyze are for --from auto-archiver", where="--from")
    from evidence_catalog.interchange.importing import UNSIGNED_PROVENANCE_TAG

    with open_catalog(catalog_path, operator) as catalog:
        # (drawn from the first bytes counted: the import forks its worker before then)
        with bytes_progress(None, "checking", quiet=quiet, deferred=True) as progress:
            try:
                result = catalog.import_records(source, blobs=blobs, progress=progress, accept_unsigned=accept_unsigned)
            except EvidenceError as exc:  # one rule: a refused import is exit code 2, whatever the reason
                raise InputError(exc.message, where=exc.where) from exc
    if not quiet:
        click.echo(
            f"imported {len(result.records_added)} record(s) ({len(result.records_present)} already here); "
            f"{result.artifacts_stored} artifact(s) stored, {result.artifacts_present} already stored"
            + (f"; bag {result.external_identifier}, Payload-Oxum {result.payload_oxum}" if result.payload_oxum else "")
            + (
                f"; log key {result.log_key_id} ({printable(result.log_origin or '')})"
                if result.log_key_id
                else f"; UNSIGNED provenance accepted ({printable(result.unsigned or '')}),"
                f" tagged {UNSIGNED_PROVENANCE_TAG}"
            )
        )
    echo_quarantined(result.quarantined)


def _import_auto_archiver(
    source: str,
    catalog_path: str,
    keep_going: bool,
    source_version: str | None,
    analyze: bool,
    operator: str | None,
    quiet: bool,
) -> None:
    """``import --from auto-archiver``: each finding on standard error, then the summary (what
    the analyses found worth a look on standard error too, as ``add`` says it)."""
    from evidence_catalog.cli.adding import echo_analysis
    from evidence_catalog.operations.migrating import MigrationError

    with open_catalog(catalog_path, operator) as catalog:
        with bytes_progress(None, "checking", quiet=quiet) as progress:
            try:
                result = catalog.import_auto_archiver(
                    source,
                    keep_going=keep_going,
                    source_version=source_version,
                    progress=progress,
                    analyze=analyze,
                    on_analyzed=echo_analysis,
                )
            except MigrationError as exc:
                for finding in exc.findings:
                    click.echo(f"finding: {printable(str(finding))}", err=True)
                raise InputError(exc.message, where=exc.where) from exc
            except EvidenceError as exc:  # a refused import is exit code 2, whatever the reason
                raise InputError(exc.message, where=exc.where) from exc
    for finding in result.findings:
        click.echo(f"finding: {printable(str(finding))}", err=True)
    if not quiet:
        click.echo(
            f"imported {len(result.records_added)} record(s) ({len(result.records_present)} already here)"
            + (f" from auto-archiver {printable(result.tool_version)}" if result.records_added else "")
            + f"; {result.artifacts_stored} artifact(s) stored,"
            f" {result.artifacts_present} already stored"
            + (f"; {len(result.rows_refused)} row(s) left out" if result.rows_refused else "")
        )
    echo_quarantined(result.quarantined)
    if result.findings:
        raise SystemExit(EXIT_PROBLEMS)
