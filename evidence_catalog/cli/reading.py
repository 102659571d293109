"""Commands that read the catalog and change nothing but links: ``list``, ``show``, ``search``,
``similar`` (near-duplicate images and videos), ``log`` (the custody history) and ``link`` (a
report onto another record)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import click

from evidence_catalog.cli.app import EXIT_PROBLEMS, cli
from evidence_catalog.cli.options import (
    catalog_option,
    json_option,
    open_catalog,
    operator_option,
    record_criteria,
    record_filter_options,
)
from evidence_catalog.cli.output import agent_text, echo_json, echo_nothing_found, one_line, printable
from evidence_catalog.errors import EvidenceError
from evidence_catalog.paths import display_path

if TYPE_CHECKING:
    from evidence_catalog import model


@cli.command(name="list")
@catalog_option
@record_filter_options
@click.option("--since", metavar="DATE", help="Only records with a claim alleging a time from then on.")
@click.option("--until", metavar="DATE", help="Only records with a claim alleging a time up to then.")
@click.option("--sha256", metavar="HASH", help="Only the records holding the artifact with this SHA-256.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many (a page).")
@click.option("--after", metavar="ID", help="Start after this record id (the last one of the previous page).")
@json_option
def list_records(
    catalog_path: str,
    status: str | None,
    category: str | None,
    tags: Sequence[str],
    flags: Sequence[str],
    bbox: str | None,
    since: str | None,
    until: str | None,
    sha256: str | None,
    limit: int | None,
    after: str | None,
    as_json: bool,
) -> None:
    """List the records, oldest first, or those that meet every filter given.

    Records are read and printed a page at a time, so a catalog of millions starts printing at
    once; --limit and --after show one page (the next page starts --after the last id shown).
    When nothing matches, standard error says "no matches" (--json prints []); the exit code is
    0.  Exit code 1 if a record cannot be read (it is named).
    """
    from evidence_catalog.serialize import format_timestamp, to_document

    unreadable = shown = 0
    last: str | None = None
    with open_catalog(catalog_path) as catalog:
        criteria = record_criteria(catalog, status, category, tags, flags, bbox, since, until)
        if after is not None:
            catalog.record_ids(after=after, limit=1)  # a malformed id is named before anything is printed
        holding = None if sha256 is None else catalog.records_with_artifact(sha256.strip().lower())

        def named(record_id: str, error: EvidenceError) -> None:
            """A record that cannot be read: named on standard error (it must not hide the rest)."""
            nonlocal unreadable
            click.echo(f"error: {one_line(error)}", err=True)
            unreadable += 1

        def matching() -> Iterator[model.EvidenceRecord]:
            """The records to show, as they are read, up to --limit; counts them and those that cannot be read."""
            nonlocal shown, last
            for record in catalog.readable_records(after=after, only=holding, on_unreadable=named):
                if criteria is not None and not criteria.matches(record):
                    continue
                yield record
                shown += 1
                last = record.id
                if limit is not None and shown >= limit:
                    return

        if as_json:
            echo_json(to_document(record) for record in matching())
        else:
            for record in matching():
                size = sum(ra.artifact.size for ra in record.artifacts)
                tag_text = printable(",".join(record.tags))
                title = display_path(record.title or "")
                click.echo(
                    f"{record.id}  {format_timestamp(record.created_at)}  {len(record.artifacts)} artifact(s) "
                    f"{size} B  {title}" + (f"  [{tag_text}]" if tag_text else "")
                )
    if limit is not None and shown >= limit and last is not None:
        click.echo(f"more may follow: --after {last}", err=True)
    if not shown and not as_json:
        echo_nothing_found(among_readable=bool(unreadable))
    if unreadable:
        raise SystemExit(EXIT_PROBLEMS)


@cli.command()
@click.argument("record_id", metavar="ID")
@catalog_option
@json_option
def show(record_id: str, catalog_path: str, as_json: bool) -> None:
    """Show one record: its artifacts, their provenance and metadata, tags and notes, then what
    analyses of its images and videos derived (perceptual hashes, keyframes, C2PA results).

    With --json, the record document alone: the analyses are among its derived artifacts, JSON
    documents of their own (schema media-analysis) that an export carries."""
    from evidence_catalog.cli.rendering import echo_analyses, echo_record
    from evidence_catalog.serialize import to_document

    with open_catalog(catalog_path) as catalog:
        record = catalog.record(record_id)
        found = [] if as_json else catalog.analyses(record_id)
    if as_json:
        echo_json(to_document(record))
    else:
        echo_record(record)
        echo_analyses(found)


@cli.command()
@click.argument("text", required=False, default="")
@catalog_option
@click.option("--mention", metavar="HANDLE", help="Only reports mentioning this account (@ optional).")
@click.option("--hashtag", metavar="TAG", help="Only reports with this hashtag (# optional).")
@click.option("--feed", metavar="NAME", help="Only reports from this feed (its name as in the digest or feed).")
@click.option("--author", metavar="HANDLE", help="Only reports by this author, or reposts of or by them.")
@click.option(
    "--since", metavar="DATE", help="Only reports published (else found) from then on: 2024-03-01 or 2024-03-01T10:00Z."
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Show at most this many.")
@click.option(
    "--offset", type=click.IntRange(min=0), default=0, help="Skip this many hits first (the next page: offset + limit)."
)
@record_filter_options
@click.option("--alleged-since", metavar="DATE", help="Only on records with a claim alleging a time from then on.")
@click.option("--alleged-until", metavar="DATE", help="Only on records with a claim alleging a time up to then.")
@json_option
def search(
    text: str,
    catalog_path: str,
    mention: str | None,
    hashtag: str | None,
    feed: str | None,
    author: str | None,
    since: str | None,
    limit: int,
    offset: int,
    status: str | None,
    category: str | None,
    tags: Sequence[str],
    flags: Sequence[str],
    bbox: str | None,
    alleged_since: str | None,
    alleged_until: str | None,
    as_json: bool,
) -> None:
    """Find reports by their words (every word of TEXT, case and accents ignored) and filters.

    Prints one line per report: report id, record id, when it was published (or '-'),
    feed/author, and its first line; best match first, then newest.  When nothing matches,
    standard error says "no matches" (--json prints []); the exit code is 0.
    """
    from evidence_catalog.serialize import format_timestamp, unstructure

    with open_catalog(catalog_path) as catalog:
        hits = catalog.search(
            text,
            mention=mention,
            hashtag=hashtag,
            feed=feed,
            author=author,
            since=since,
            limit=limit,
            offset=offset,
            record_filter=record_criteria(catalog, status, category, tags, flags, bbox, alleged_since, alleged_until),
        )
    if as_json:
        echo_json([{"record_id": h.record_id, "report": unstructure(h.report)} for h in hits])
    else:
        for hit in hits:
            report = hit.report
            when = format_timestamp(report.published_at) if report.published_at else "-"
            who = " / ".join(filter(None, (report.source.feed_name or report.source.account_handle, report.author)))
            first = report.text.split("\n", 1)[0]
            first = first if len(first) <= 80 else first[:79] + "…"
            click.echo(f"{report.id}  {hit.record_id}  {when}  {printable(who)}  {printable(first)}")
        if len(hits) == limit:
            click.echo(
                f"(hits {offset + 1} to {offset + limit} shown; --offset {offset + limit} for the next page)", err=True
            )
        if not hits:
            echo_nothing_found()


@cli.command()
@click.argument("target")
@catalog_option
@click.option(
    "--max-distance",
    type=click.IntRange(0, 256),
    default=31,
    show_default=True,
    help="Match hashes at most this many bits apart (of 256; 31 is PDQ's customary threshold).",
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Show at most this many.")
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="List at most this many matching pairs of hashes (frames) for each.",
)
@json_option
def similar(target: str, catalog_path: str, max_distance: int, limit: int, frames: int, as_json: bool) -> None:
    """Find the images and videos near TARGET by their perceptual hashes (PDQ).

    TARGET is a record id (its analysed images and videos; the record itself is left out), an
    artifact's SHA-256 (that artifact left out) or the path of an image or video file (./NAME
    for a file named like an id).  Only analysed media are found (see analyze).

    Prints one line per image or video found and record holding it, best first: the distance
    (bits that differ, of 256), the record id, the artifact's SHA-256 and, where a video is
    involved, the matching frames as TARGET-OFFSET>OFFSET:DISTANCE (seconds; "-" for an
    image), best first, with how many matched in all when more than --frames did.  --json
    prints a list of objects: record_id, artifact_sha256, distance, frames_matched and frames
    (each distance, target_sha256, target_offset_s, offset_s; an offset is null for an image).
    When nothing is near, standard error says "no matches" (--json prints []); the exit code
    is 0.
    """
    from evidence_catalog.serialize import unstructure

    with open_catalog(catalog_path) as catalog:
        matches = catalog.similar(target, max_distance=max_distance, limit=limit, frames=frames)
    if as_json:
        echo_json([unstructure(match) for match in matches])
        return
    for match in matches:
        pairs = ""
        if any(f.offset_s is not None or f.target_offset_s is not None for f in match.frames):
            shown = " ".join(f"{_seconds(f.target_offset_s)}>{_seconds(f.offset_s)}:{f.distance}" for f in match.frames)
            more = f" ({match.frames_matched} matched)" if match.frames_matched > len(match.frames) else ""
            pairs = f"  {shown}{more}"
        click.echo(f"{match.distance:>3}  {match.record_id}  {match.artifact_sha256}{pairs}")
    if len(matches) == limit:
        click.echo(f"(the {limit} nearest shown; --limit for more)", err=True)
    if not matches:
        echo_nothing_found()


def _seconds(offset: float | None) -> str:
    """A frame's offset as printed: seconds, to the millisecond, no trailing zeros ("-" for an image)."""
    return "-" if offset is None else f"{offset:.3f}".rstrip("0").rstrip(".")


@cli.command()
@click.argument("record_id", metavar="[ID]", required=False)
@catalog_option
@click.option(
    "--proof",
    "proof_seq",
    type=int,
    metavar="SEQ",
    help="Print the RFC 6962 inclusion proof of custody event SEQ in the latest checkpoint.",
)
@json_option
def log(record_id: str | None, catalog_path: str, proof_seq: int | None, as_json: bool) -> None:
    """Show the custody history: of the whole catalog, or of one record; or, with --proof, that
    one event is in the signed log."""
    import attrs

    from evidence_catalog.serialize import format_timestamp, to_document
    from evidence_catalog.store.records import no_record

    if proof_seq is not None:
        with open_catalog(catalog_path) as catalog:
            proof = catalog.inclusion_proof(proof_seq)
        if as_json:
            echo_json(attrs.asdict(proof))
            return
        click.echo(f"event      {proof.seq} (leaf {proof.leaf_index})")
        click.echo(f"tree size  {proof.tree_size}")
        click.echo(f"leaf hash  {proof.leaf_hash}")
        for step in proof.proof:
            click.echo(f"path       {step}")
        click.echo(f"root       {proof.root}")
        if proof.checkpoint is not None:
            click.echo("checkpoint")
            click.echo(proof.checkpoint, nl=False)
        return
    with open_catalog(catalog_path) as catalog:
        if record_id is not None and not catalog.has_record(record_id):
            raise no_record(record_id, where="record")
        events = catalog.history(record_id)
    if as_json:
        echo_json([to_document(e) for e in events])
        return
    for event in events:
        click.echo(
            f"{event.seq:>6}  {format_timestamp(event.at)}  {event.action:<16} {printable(event.subject)}  "
            f"{_event_url(event)}by {agent_text(event.actor)}  {event.hash[:16]}"
        )
    if not events:
        echo_nothing_found()


def _event_url(event: model.CustodyEvent) -> str:
    """The URL a capture event is about (a failed one may be on no record), or nothing."""
    acquisition = event.details.get("acquisition") if event.action.startswith(("media.", "capture.")) else None
    url = acquisition.get("requested_url") if isinstance(acquisition, dict) else None
    return f"{printable(url)}  " if isinstance(url, str) else ""


@cli.command()
@click.argument("ids", metavar="[REPORT_ID RECORD_ID]", nargs=-1)
@catalog_option
@click.option("--note", help="Why they belong together, kept on the record.")
@click.option(
    "--suggest",
    is_flag=True,
    help="List suggested links instead (for one record when its ID is given); change nothing.",
)
@operator_option
@json_option
def link(
    ids: Sequence[str], catalog_path: str, note: str | None, suggest: bool, operator: str | None, as_json: bool
) -> None:
    """Put a report on another record, e.g. a post announcing a film on the captured film's record.

    The report and its source document join RECORD_ID; the move is a custody event.  With
    --suggest, list reports whose URL or link-card title matches media captured on another
    record, each with the command that would link it.
    """
    import attrs

    if suggest:
        if len(ids) > 1 or note is not None:
            raise click.UsageError("--suggest takes at most one record ID and no --note")
        with open_catalog(catalog_path, operator) as catalog:
            suggestions = catalog.link_suggestions(ids[0] if ids else None)
        if as_json:
            echo_json([attrs.asdict(s) for s in suggestions])
            return
        for s in suggestions:
            click.echo(
                f"report {s.report_id} (on {s.report_record}) -> record {s.record_id}: "
                f"{s.reason} {printable(s.matched)}\n  evidence-catalog link {s.report_id} {s.record_id}"
            )
        if suggestions:
            click.echo(f"{len(suggestions)} suggestion(s)", err=True)
        else:
            echo_nothing_found()
        return
    if len(ids) != 2:
        raise click.UsageError("give a REPORT_ID and a RECORD_ID (or --suggest)")
    with open_catalog(catalog_path, operator) as catalog:
        result = catalog.link(ids[0], ids[1], note=note)
    if as_json:
        echo_json(attrs.asdict(result))
    elif result.moved:
        click.echo(f"report {result.report_id} moved from record {result.from_record} to {result.record_id}")
    else:
        click.echo(f"report {result.report_id} is on record {result.record_id} already; nothing changed")
