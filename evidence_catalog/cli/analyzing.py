"""Commands that derive from the evidence: ``analyze`` (perceptual hashes, keyframes, Content
Credentials of images and videos)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from evidence_catalog.cli.app import cli
from evidence_catalog.cli.options import catalog_option, json_option, open_catalog, operator_option, quiet_option
from evidence_catalog.cli.output import echo_json, echo_quarantined, printable
from evidence_catalog.cli.progress import progress_bars, shows_progress


@cli.command()
@click.argument("record_ids", metavar="[RECORD_ID]...", nargs=-1)
@catalog_option
@click.option("--all", "all_records", is_flag=True, help="Analyse the images and videos of every record.")
@click.option("--force", is_flag=True, help="Analyse again what the same tool versions analysed already.")
@operator_option
@json_option
@quiet_option
def analyze(
    record_ids: Sequence[str],
    catalog_path: str,
    all_records: bool,
    force: bool,
    operator: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Analyse the images and videos of the records named (or --all): PDQ perceptual hashes
    (of a video, one frame a second), keyframes and a contact sheet, and C2PA Content
    Credentials, each written as a derived artifact with a `media.analyzed` custody event.

    What the same tool versions analysed already is skipped, so running it again (after an
    interrupted run, or on a catalog made before analyses existed) does only what is left.
    One line per analysed file: record id, SHA-256, what happened, hashes, keyframes,
    credentials; then the problems met, if any.
    """
    with open_catalog(catalog_path, operator) as catalog:
        if shows_progress(quiet=quiet or as_json):
            with progress_bars() as bars:
                task = bars.add_task("analysing", total=None)
                results = catalog.analyze(
                    record_ids,
                    all_records=all_records,
                    force=force,
                    progress=lambda _sha, done, total: bars.update(task, completed=done, total=total),
                )
        else:
            results = catalog.analyze(record_ids, all_records=all_records, force=force)
    if as_json:
        echo_json(
            [
                {
                    "record_id": r.record_id,
                    "sha256": r.sha256,
                    "document_sha256": r.document_sha256,
                    "new": r.new,
                    "hashes": r.hashes,
                    "usable_hashes": r.usable_hashes,
                    "keyframes": r.keyframes,
                    "credentials": r.credentials,
                    "errors": list(r.errors),
                }
                for r in results
            ]
        )
        return
    for r in results:
        status = "analysed" if r.new else "already analysed"
        credentials = r.credentials or "-"
        click.echo(
            f"{r.record_id}\t{r.sha256}\t{status}\t{r.hashes} hash(es), {r.usable_hashes} usable\t"
            f"{r.keyframes} keyframe(s)\tcredentials {credentials}"
        )
        for error in r.errors:
            click.echo(f"  problem: {printable(error)}")
        echo_quarantined(r.quarantined)
    if not quiet:
        click.echo(f"{len(results)} file(s): {sum(r.new for r in results)} analysed now", err=True)
