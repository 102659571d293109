"""The ``evidence-catalog`` command: a thin layer of click commands over :class:`Catalog`.

Exit codes (docs/cli.md): 0 success, also when nothing is found ("no matches" on standard error);
1 the command found or left something wrong (verify's problems, a failed capture ...); 2 bad input
or usage; 3 a bug.  User errors are one line on standard error naming the file or field and the
reason, never a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from sqlalchemy.exc import DatabaseError

from evidence_catalog import model
from evidence_catalog.capture import CaptureOptions, CaptureProgress, parse_size
from evidence_catalog.catalog import (
    EXPORT_FORMATS,
    INGEST_FORMATS,
    Catalog,
)
from evidence_catalog.checkpoint import vkey
from evidence_catalog.config import CONFIG_FILE, OPERATOR_ENV, parse_operator, resolve_operator
from evidence_catalog.errors import (
    CatalogError,
    CatalogNotFoundError,
    CatalogVersionError,
    EvidenceError,
    InputError,
    IntegrityError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from evidence_catalog.filters import RecordFilter
from evidence_catalog.findings import EntryUnreadable
from evidence_catalog.interchange.importing import UNSIGNED_PROVENANCE_TAG
from evidence_catalog.operations.common import check_url, parse_time
from evidence_catalog.paths import display_path
from evidence_catalog.results import CaptureResult, VerificationReport
from evidence_catalog.schema_files import SCHEMA_FILES, load_schema
from evidence_catalog.serialize import format_timestamp, to_document, unstructure
from evidence_catalog.versions import versions

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # as a shell reports SIGINT
CATALOG_ENV = "EVIDENCE_CATALOG"
#: What ``list``, ``search``, ``link --suggest`` and ``log`` say (on standard error) when nothing matches.
NOTHING_FOUND = "no matches"

F = TypeVar("F", bound=Callable[..., Any])


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for name, version in versions().items():
        click.echo(f"{name} {version or 'not installed'}")
    ctx.exit(EXIT_OK)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_versions,
    help="Show versions of evidence-catalog, Python, SQLite, exifread and yt-dlp.",
)
def cli() -> None:
    """Catalogue evidence with provenance, integrity checks and a chain of custody."""


class _CatalogOption(click.Option):
    """``--catalog``, whose absence says how to name a catalog once for every command."""

    def process_value(self, ctx: click.Context, value: Any) -> Any:
        try:
            return super().process_value(ctx, value)
        except click.MissingParameter as exc:
            raise click.MissingParameter(
                f"Name the catalog directory with --catalog DIRECTORY, or once for every command with "
                f'the environment variable {CATALOG_ENV} (export {CATALOG_ENV}="$HOME/case/catalog").',
                ctx=ctx,
                param=self,
            ) from exc


def _catalog_option(f: F) -> F:
    return click.option(
        "--catalog",
        "catalog_path",
        cls=_CatalogOption,
        envvar=CATALOG_ENV,
        required=True,
        type=click.Path(file_okay=False),
        help=f"Catalog directory (default: ${CATALOG_ENV}).",
    )(f)


def _operator_option(f: F) -> F:
    return click.option(
        "--operator",
        metavar="'NAME <EMAIL>'",
        help="Who performs this action (default: $EVIDENCE_CATALOG_OPERATOR, then the operator set at init, "
        "then the operating-system user at this host).",
    )(f)


def _quiet_option(f: F) -> F:
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars or summaries.")(f)


def _json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(f)


def _choices(kind: type[Any]) -> click.Choice[str]:
    """The values of an enumeration, as a choice of an option."""
    return click.Choice([member.value for member in kind])


def _record_filter_options(f: F) -> F:
    """The options ``list`` and ``search`` share to choose records by their current state."""
    options = [
        click.option("--status", type=_choices(model.VerificationStatus), help="Records with this current status."),
        click.option("--category", metavar="CODE", help="Records with a claim of this category."),
        click.option("--tag", "tags", multiple=True, help="Records with this tag (repeatable: all of them)."),
        click.option(
            "--flag", "flags", multiple=True, type=_choices(model.SensitivityKind), help="Records with this flag."
        ),
        click.option("--bbox", metavar="W,S,E,N", help="Records with a claim placed in this box (WGS 84 degrees)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _criteria(
    catalog: Catalog,
    status: str | None,
    category: str | None,
    tags: Sequence[str],
    flags: Sequence[str],
    bbox: str | None,
    since: str | None = None,
    until: str | None = None,
) -> RecordFilter | None:
    """The record filter the options of :func:`_record_filter_options` (and a command's own
    time bounds) give, or ``None`` when none was given."""
    if not any((status, category, tags, flags, bbox, since, until)):
        return None
    return catalog.record_filter(
        status=status, category=category, tags=tags, flags=flags, bbox=_bbox(bbox), since=since, until=until
    )


def _progress_bars() -> Progress:
    """Byte-counting progress bars on standard error, removed when done."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=Console(stderr=True), transient=True)


@contextmanager
def _bytes_progress(total: int | None, label: str, *, quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on standard error when it is a terminal; nothing otherwise."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    with _progress_bars() as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def _printable(text: str | os.PathLike[str]) -> str:
    """Free text (notes, URLs, names, tags) as one line a terminal cannot be tricked by: control
    characters, line breaks and bidirectional overrides are shown escaped."""
    return display_path(text)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _nothing_found(*, among_readable: bool = False) -> None:
    """What a command that lists things says when nothing matches: a line on standard error
    (standard output stays empty, and ``--json`` prints ``[]``); the exit code stays 0."""
    click.echo(NOTHING_FOUND + (" among the records that could be read" if among_readable else ""), err=True)


def _open(catalog_path: str, operator: str | None = None) -> Catalog:
    try:
        return Catalog.open(catalog_path, operator=operator)
    except CatalogNotFoundError as exc:
        ctx = click.get_current_context(silent=True)
        source = None if ctx is None else ctx.get_parameter_source("catalog_path")
        if source is not click.core.ParameterSource.ENVIRONMENT:
            raise
        # The directory came from the environment, not the command line: say so, and how to change it.
        raise CatalogNotFoundError(
            f"{exc.message} (the directory named by ${CATALOG_ENV}; set it to a catalog, or give --catalog)",
            where=exc.where,
        ) from exc


# -- commands ---------------------------------------------------------------------------------


@cli.command()
@click.argument("path", type=click.Path())
@_operator_option
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
@_quiet_option
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
    from_account = operator is None and not os.environ.get(OPERATOR_ENV, "").strip()
    agent = resolve_operator(operator, None)
    if organization is not None:
        agent = attrs.evolve(agent, organization=parse_operator(organization, where="--organization").name)
    if blobs_endpoint is not None and blobs is None:
        raise InputError("--blobs-endpoint needs --blobs", where="--blobs-endpoint")
    with Catalog.init(
        path,
        operator=agent,
        algorithms=("sha256", *digests),
        database=database,
        blobs=blobs,
        blobs_endpoint_url=blobs_endpoint,
    ) as catalog:
        if not quiet:
            who = _agent(attrs.evolve(catalog.operator, host=None))
            click.echo(f"created catalog {display_path(catalog.path)} (operator: {who})")
            if database is not None and catalog.config.database_url is not None:
                click.echo(f"database: {catalog.config.database_url}")
            if blobs is not None:
                click.echo(f"blobs:    {catalog.blobs.location}")
        if from_account:
            account = _printable(catalog.operator.name)
            click.echo(
                f"note: no --operator given: this catalog's default operator is the operating-system account "
                f"'{account}', recorded as the actor of every action that names no other; to record a person, "
                f"set name and email under [operator] in {CONFIG_FILE}, or give --operator 'NAME <EMAIL>' "
                f"(or ${OPERATOR_ENV})",
                err=True,
            )


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(readable=False))
@_catalog_option
@click.option("--recursive", "-r", is_flag=True, help="Add the files inside directories.")
@click.option("--note", help="A note to keep with the record.")
@click.option("--source-url", help="Where the file came from, as stated by the operator.")
@click.option("--tag", "tags", multiple=True, help="Tag for the record (repeatable).")
@click.option("--record", "record_id", help="Add to this existing record instead of a new one.")
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Files committed per transaction: a larger batch loads many small files much faster.",
)
@_operator_option
@_quiet_option
def add(
    paths: Sequence[str],
    catalog_path: str,
    recursive: bool,
    note: str | None,
    source_url: str | None,
    tags: Sequence[str],
    record_id: str | None,
    batch: int,
    operator: str | None,
    quiet: bool,
) -> None:
    """Add files to the catalog and print the id of the record each one is on.

    Each line is: record id, SHA-256, what happened, path.  Identical bytes already in the
    catalog are not stored again; their record gains a new acquisition.
    """
    with _open(catalog_path, operator) as catalog:
        files = catalog.collect_files(paths, recursive=recursive)
        if not files:
            raise InputError("no files to add (the directories given are empty)", where=display_path(paths[0]))
        total = sum(os.stat(f).st_size for f in files)

        def report(result: Any) -> None:
            status = "new" if result.new_record else "added" if result.new_on_record else "already catalogued"
            click.echo(f"{result.record_id}\t{result.sha256}\t{status}\t{display_path(result.path)}")
            if result.quarantined:
                click.echo(
                    f"warning: the stored copy of {result.sha256} was damaged; it was replaced by these bytes "
                    f"and kept as blobs/{result.quarantined}",
                    err=True,
                )

        with _bytes_progress(total, "adding", quiet=quiet) as progress:
            catalog.add(
                files,
                record_id=record_id,
                note=note,
                source_url=source_url,
                tags=tags,
                progress=progress,
                on_added=report,
                batch=batch,
            )


def _read_url_file(path: str) -> list[str]:
    """URLs from a file, one per line (blank lines and ``#`` comments skipped); each is checked
    here, so that a bad line stops the batch before anything is fetched."""
    where = display_path(path)
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as stream:
                text = stream.read()
    except FileNotFoundError as exc:
        raise InputError("no such file", where=where) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text (byte {exc.start})", where=where) from exc
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", where=where) from exc
    text = text.removeprefix("\ufeff")  # the byte order mark Windows editors put before UTF-8 text
    urls = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            urls.append(check_url(line))
        except InputError as exc:
            raise InputError(exc.message, where=f"{where}, line {number}") from exc
    return urls


@contextmanager
def _capture_progress(*, quiet: bool) -> Iterator[tuple[CaptureProgress | None, Callable[[], None]]]:
    """Progress bars fed by yt-dlp's progress hooks, one per file being downloaded; nothing
    when standard error is not a terminal or with --quiet."""
    if quiet or not sys.stderr.isatty():
        yield None, lambda: None
        return
    with _progress_bars() as progress:
        tasks: dict[str, Any] = {}

        def update(name: str, done: int, total: int | None) -> None:
            task = tasks.get(name)
            if task is None:
                task = tasks[name] = progress.add_task(_printable(name), total=total)
            progress.update(task, completed=done, total=total)

        def clear() -> None:
            for task in tasks.values():
                progress.remove_task(task)
            tasks.clear()

        yield update, clear


def _size_option(text: str | None, where: str) -> int | None:
    return None if text is None else parse_size(text, where)


def _echo_capture(result: CaptureResult) -> bool:
    """Print one capture's line (record, SHA-256, status, URL) and its error or warning; return
    whether it succeeded."""
    url = _printable(result.url)
    if not result.ok:
        click.echo(f"-\t-\tfailed\t{url}")
        click.echo(f"error: {url}: {_printable(result.error or 'failed')}", err=True)
        return False
    status = (
        "skipped (captured before)"
        if result.skipped
        else "new"
        if result.new_record
        else "new version"
        if result.version_of
        else "added"
        if result.new_on_record
        else "already catalogued"
    )
    click.echo(f"{result.record_id}\t{result.sha256}\t{status}\t{url}")
    if result.not_kept:
        click.echo(f"warning: {url}: {_printable(result.not_kept)}", err=True)
    return True


@cli.command()
@click.argument("urls", metavar="[URL]...", nargs=-1)
@_catalog_option
@click.option(
    "--from-file",
    "url_file",
    metavar="FILE",
    help="Read URLs from FILE, one per line ('#' starts a comment; '-' reads standard input).",
)
@click.option("--record", "record_id", help="Attach the captures to this existing record.")
@click.option("--tag", "tags", multiple=True, help="Tag for the record (repeatable).")
@click.option("--note", help="A note to keep with the record.")
@click.option("--format", "format_spec", metavar="SPEC", help="yt-dlp format selector, e.g. 'best' or 'bv*+ba/b'.")
@click.option("--cookies", "cookies_file", metavar="FILE", help="Netscape cookies.txt for sites that need a login.")
@click.option("--proxy", metavar="URL", help="Proxy, e.g. socks5://127.0.0.1:9050 or http://proxy:3128.")
@click.option("--rate-limit", metavar="RATE", help="Maximum download rate in bytes per second, e.g. 500K or 2M.")
@click.option("--max-filesize", metavar="SIZE", help="Fail (store nothing) when media is larger, e.g. 800M or 2G.")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for the network.")
@click.option("--retries", type=int, default=3, show_default=True, help="Retries of a failed or cut-short download.")
@click.option("--no-ffmpeg", is_flag=True, help="Never use ffmpeg: choose formats served as one file.")
@click.option(
    "--skip-captured",
    is_flag=True,
    help="Do not fetch URLs captured successfully before (resume an interrupted batch).",
)
@_operator_option
@_quiet_option
def capture(
    urls: Sequence[str],
    catalog_path: str,
    url_file: str | None,
    record_id: str | None,
    tags: Sequence[str],
    note: str | None,
    format_spec: str | None,
    cookies_file: str | None,
    proxy: str | None,
    rate_limit: str | None,
    max_filesize: str | None,
    timeout: float,
    retries: int,
    no_ffmpeg: bool,
    skip_captured: bool,
    operator: str | None,
    quiet: bool,
) -> None:
    """Capture online media (videos, images, posts) with yt-dlp, with full provenance.

    Each line is: record id, SHA-256 of the main media file, what happened, URL.  The media as
    served, yt-dlp's info.json, thumbnails, subtitles, the description and the page are kept.
    A URL that fails does not stop the others: its line says "failed", the reason goes to
    standard error, the attempt is in the custody log, and the exit code is 1.
    """
    wanted = [check_url(url) for url in urls]
    if url_file is not None:
        wanted += _read_url_file(url_file)
    if not wanted:
        raise InputError("give at least one URL, or --from-file FILE", where="url")
    options = CaptureOptions(
        format=format_spec,
        cookies_file=None if cookies_file is None else Path(cookies_file),
        proxy=proxy,
        rate_limit=_size_option(rate_limit, "rate limit"),
        max_filesize=_size_option(max_filesize, "max filesize"),
        socket_timeout=timeout,
        retries=retries,
        ffmpeg=False if no_ffmpeg else None,
    )
    failed = skipped = 0
    with _open(catalog_path, operator) as catalog, _capture_progress(quiet=quiet) as (progress, clear):

        def report(result: CaptureResult) -> None:
            nonlocal failed, skipped
            clear()
            skipped += result.skipped
            failed += not _echo_capture(result)

        catalog.capture(
            wanted,
            record_id=record_id,
            options=options,
            tags=tags,
            note=note,
            progress=progress,
            on_result=report,
            skip_captured=skip_captured,
        )
    if not quiet:
        done = len(wanted) - failed - skipped
        summary = f"captured {done} of {len(wanted)} URL(s)"
        summary += f"; {skipped} skipped (captured before)" if skipped else ""
        summary += f"; {failed} failed" if failed else ""
        click.echo(summary, err=True)
    if failed:
        raise SystemExit(EXIT_PROBLEMS)


@cli.command()
@click.argument("source", metavar="PATH_OR_URL")
@_catalog_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(INGEST_FORMATS),
    help="What the input is (default: found from the content).",
)
@click.option("--tag", "tags", multiple=True, help="Tag for every new record (repeatable).")
@click.option("--note", help="A note to keep with every new record.")
@click.option(
    "--keep-going", is_flag=True, help="Leave out items that cannot be read (each is named) instead of stopping."
)
@click.option(
    "--capture-media",
    is_flag=True,
    help="Then capture the media of feed entries (enclosures) onto their records.",
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for the network.")
@_operator_option
@_quiet_option
def ingest(
    source: str,
    catalog_path: str,
    fmt: str | None,
    tags: Sequence[str],
    note: str | None,
    keep_going: bool,
    capture_media: bool,
    timeout: float,
    operator: str | None,
    quiet: bool,
) -> None:
    """Ingest reports: items of a digest, RSS/Atom feed, twarc2 JSONL or Telegram export.

    Each item becomes a report on a record of its own; the input is stored as each record's
    source document (for a digest, with the item's lines), and a Telegram message's photo or
    file on its record.  PATH_OR_URL is a file, a Telegram Desktop export folder, or the
    http(s) URL of a feed (downloaded as served).  Items already in the catalog are not added
    again.  All or nothing: an input that cannot be read changes nothing, unless --keep-going
    leaves the unreadable items out (exit code 1, each named).  With --capture-media, the
    media of the feed's entries is captured afterwards (exit code 1 if a capture failed).
    """
    options = CaptureOptions(socket_timeout=timeout)
    with _open(catalog_path, operator) as catalog, _capture_progress(quiet=quiet) as (progress, clear):
        result = catalog.ingest(
            source,
            format=fmt,  # type: ignore[arg-type]
            tags=tags,
            note=note,
            keep_going=keep_going,
            capture_media=capture_media,
            capture_options=options,
            capture_progress=progress,
            timeout=timeout,
        )
        clear()
    for line, message in result.warnings:
        at = f", line {line}" if result.format == "digest" and line else ""
        click.echo(f"warning: {_printable(result.path)}{at}: {_printable(message)}", err=True)
    for _, message in result.skipped:
        click.echo(f"skipped: {_printable(result.path)}: {_printable(message)}", err=True)
    click.echo(
        f"{result.items} item(s): {result.reports_added} report(s) added on {result.records_added} new record(s), "
        f"{result.reports_present} already present"
        + (f", {len(result.skipped)} left out" if result.skipped else "")
        + f"; {result.artifacts_added} artifact(s) stored, {result.artifacts_present} already stored"
        + f"; {result.format} {result.sha256}"
    )
    failed = [c for c in result.captures if not _echo_capture(c)]
    if capture_media and not quiet:
        click.echo(f"media: {len(result.captures) - len(failed)} of {len(result.media)} captured", err=True)
    if result.skipped or failed:
        raise SystemExit(EXIT_PROBLEMS)


@cli.command()
@click.argument("text", required=False, default="")
@_catalog_option
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
@_record_filter_options
@click.option("--alleged-since", metavar="DATE", help="Only on records with a claim alleging a time from then on.")
@click.option("--alleged-until", metavar="DATE", help="Only on records with a claim alleging a time up to then.")
@_json_option
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
    with _open(catalog_path) as catalog:
        hits = catalog.search(
            text,
            mention=mention,
            hashtag=hashtag,
            feed=feed,
            author=author,
            since=since,
            limit=limit,
            offset=offset,
            record_filter=_criteria(catalog, status, category, tags, flags, bbox, alleged_since, alleged_until),
        )
    if as_json:
        _echo_json([{"record_id": h.record_id, "report": unstructure(h.report)} for h in hits])
    else:
        for hit in hits:
            report = hit.report
            when = format_timestamp(report.published_at) if report.published_at else "-"
            who = " / ".join(filter(None, (report.source.feed_name or report.source.account_handle, report.author)))
            first = report.text.split("\n", 1)[0]
            first = first if len(first) <= 80 else first[:79] + "…"
            click.echo(f"{report.id}  {hit.record_id}  {when}  {_printable(who)}  {_printable(first)}")
        if len(hits) == limit:
            click.echo(
                f"(hits {offset + 1} to {offset + limit} shown; --offset {offset + limit} for the next page)", err=True
            )
        if not hits:
            _nothing_found()


@cli.command()
@click.argument("ids", metavar="[REPORT_ID RECORD_ID]", nargs=-1)
@_catalog_option
@click.option("--note", help="Why they belong together, kept on the record.")
@click.option(
    "--suggest",
    is_flag=True,
    help="List suggested links instead (for one record when its ID is given); change nothing.",
)
@_operator_option
@_json_option
def link(
    ids: Sequence[str], catalog_path: str, note: str | None, suggest: bool, operator: str | None, as_json: bool
) -> None:
    """Put a report on another record, e.g. a post announcing a film on the captured film's record.

    The report and its source document join RECORD_ID; the move is a custody event.  With
    --suggest, list reports whose URL or link-card title matches media captured on another
    record, each with the command that would link it.
    """
    if suggest:
        if len(ids) > 1 or note is not None:
            raise click.UsageError("--suggest takes at most one record ID and no --note")
        with _open(catalog_path, operator) as catalog:
            suggestions = catalog.link_suggestions(ids[0] if ids else None)
        if as_json:
            _echo_json([attrs.asdict(s) for s in suggestions])
            return
        for s in suggestions:
            click.echo(
                f"report {s.report_id} (on {s.report_record}) -> record {s.record_id}: "
                f"{s.reason} {_printable(s.matched)}\n  evidence-catalog link {s.report_id} {s.record_id}"
            )
        if suggestions:
            click.echo(f"{len(suggestions)} suggestion(s)", err=True)
        else:
            _nothing_found()
        return
    if len(ids) != 2:
        raise click.UsageError("give a REPORT_ID and a RECORD_ID (or --suggest)")
    with _open(catalog_path, operator) as catalog:
        result = catalog.link(ids[0], ids[1], note=note)
    if as_json:
        _echo_json(attrs.asdict(result))
    elif result.moved:
        click.echo(f"report {result.report_id} moved from record {result.from_record} to {result.record_id}")
    else:
        click.echo(f"report {result.report_id} is on record {result.record_id} already; nothing changed")


# -- the investigators' judgements ------------------------------------------------------------


def _event_time(text: str | None, precision: str | None) -> model.EventTime | None:
    """``--time START[/END]``: dates or times with their zone; a date alone means that day."""
    if text is None:
        if precision is not None:
            raise InputError("--precision needs --time", where="time")
        return None
    ends = text.split("/")
    if len(ends) > 2 or not all(e.strip() for e in ends):
        raise InputError(f"{_printable(text)!r} is not START or START/END", where="time")
    points = [parse_time(end.strip(), where="time", end_of_day=n == 1) for n, end in enumerate(ends)]
    inferred = "day" if all(len(e.strip()) == 10 for e in ends) else "minute"
    try:
        return model.EventTime(
            start=points[0], end=points[1] if len(points) > 1 else None, precision=precision or inferred
        )
    except ValueError as exc:
        raise InputError(str(exc), where="time") from exc


def _place(
    name: str | None, lat: float | None, lon: float | None, radius: float | None, admin_area: str | None
) -> model.Place | None:
    if (lat is None) != (lon is None):
        raise InputError("give both --lat and --lon, or neither", where="place")
    if all(v is None for v in (name, lat, radius, admin_area)):
        return None
    try:
        position = None if lat is None or lon is None else model.GeoPosition(latitude=lat, longitude=lon)
        return model.Place(name=name, position=position, uncertainty_m=radius, admin_area=admin_area)
    except ValueError as exc:
        raise InputError(str(exc), where="place") from exc


@cli.command()
@click.argument("record_id", metavar="ID")
@_catalog_option
@click.option("--summary", help="What the item allegedly shows, in a sentence.")
@click.option("--category", metavar="CODE", help="Alleged violation, from `evidence-catalog categories`.")
@click.option(
    "--time", "time_text", metavar="START[/END]", help="Alleged time: 2022-03-05, 2022-03-05T10:00Z, or START/END."
)
@click.option("--precision", type=_choices(model.TimePrecision), help="How precisely the time is known.")
@click.option("--place", "place_name", metavar="NAME", help="Alleged place, by name.")
@click.option("--lat", type=float, help="Latitude, WGS 84 decimal degrees.")
@click.option("--lon", type=float, help="Longitude, WGS 84 decimal degrees.")
@click.option("--radius", type=float, metavar="METRES", help="Uncertainty radius of the position.")
@click.option("--admin-area", help="Administrative area (region, district).")
@click.option("--perpetrator", help="Alleged perpetrator: unit or party.")
@click.option("--source-report", metavar="REPORT_ID", help="The report on this record that makes the claim.")
@click.option("--source", "source_description", metavar="TEXT", help="Who makes the claim, when it is not a report.")
@_operator_option
@_json_option
def claim(
    record_id: str,
    catalog_path: str,
    summary: str | None,
    category: str | None,
    time_text: str | None,
    precision: str | None,
    place_name: str | None,
    lat: float | None,
    lon: float | None,
    radius: float | None,
    admin_area: str | None,
    perpetrator: str | None,
    source_report: str | None,
    source_description: str | None,
    operator: str | None,
    as_json: bool,
) -> None:
    """Record what a record's item allegedly shows, and who says so.

    A claim is never a finding of fact: it says what is alleged (summary, category of
    violation, time, place, perpetrator) and its source (--source-report or --source).
    """
    event_time = _event_time(time_text, precision)
    place = _place(place_name, lat, lon, radius, admin_area)
    with _open(catalog_path, operator) as catalog:
        made = catalog.claim(
            record_id,
            summary=summary,
            category=category,
            event_time=event_time,
            place=place,
            alleged_perpetrator=perpetrator,
            source_report_id=source_report,
            source_description=source_description,
        )
    _echo_json(unstructure(made)) if as_json else click.echo(f"claim {made.id} on record {record_id}")


@cli.command()
@click.argument("record_id", metavar="ID")
@_catalog_option
@click.option("--status", required=True, type=_choices(model.VerificationStatus), help="Verification status.")
@click.option(
    "--method", "methods", multiple=True, type=_choices(model.VerificationMethod), help="Method used (repeatable)."
)
@click.option("--confidence", type=_choices(model.Confidence), help="How sure the assessor is.")
@click.option("--note", help="What was done and found.")
@_operator_option
@_json_option
def assess(
    record_id: str,
    catalog_path: str,
    status: str,
    methods: Sequence[str],
    confidence: str | None,
    note: str | None,
    operator: str | None,
    as_json: bool,
) -> None:
    """Record a verification assessment; it supersedes the latest one, which stays in the history."""
    with _open(catalog_path, operator) as catalog:
        made = catalog.assess(record_id, status, methods=methods, confidence=confidence, note=note)
    if as_json:
        _echo_json(unstructure(made))
    else:
        after = f" (supersedes {made.supersedes})" if made.supersedes else ""
        click.echo(f"assessment {made.id} on record {record_id}: {made.status.value}{after}")


@cli.command()
@click.argument("record_id", metavar="ID1")
@click.argument("kind", metavar="KIND", type=_choices(model.RelationKind))
@click.argument("target_id", metavar="ID2")
@_catalog_option
@click.option("--note", help="Why they are related.")
@_operator_option
def relate(
    record_id: str, kind: str, target_id: str, catalog_path: str, note: str | None, operator: str | None
) -> None:
    """Record that record ID1 is KIND of record ID2.

    KIND is duplicate_of, derived_from, same_incident_as, responds_to or contradicts.
    """
    with _open(catalog_path, operator) as catalog:
        catalog.relate(record_id, kind, target_id, note=note)
    click.echo(f"record {record_id} {kind} {target_id}")


@cli.command()
@click.argument("record_id", metavar="ID")
@click.argument("tags", metavar="TAG...", nargs=-1, required=True)
@_catalog_option
@_operator_option
def tag(record_id: str, tags: Sequence[str], catalog_path: str, operator: str | None) -> None:
    """Add tags to a record (those it has already are left as they are)."""
    with _open(catalog_path, operator) as catalog:
        added = catalog.tag(record_id, tags)
    click.echo(
        f"record {record_id}: " + (f"tagged {_printable(', '.join(added))}" if added else "had every tag already")
    )


@cli.command()
@click.argument("record_id", metavar="ID")
@click.argument("kind", metavar="FLAG", type=_choices(model.SensitivityKind))
@_catalog_option
@click.option("--reason", required=True, help="Why (kept with the flag; exports can state it).")
@click.option("--artifact", "artifacts", multiple=True, metavar="SHA256", help="An artifact the flag is about.")
@click.option(
    "--field", "fields", multiple=True, metavar="PATH", help="A field the flag is about, e.g. reports/<id>/author."
)
@_operator_option
def flag(
    record_id: str,
    kind: str,
    catalog_path: str,
    reason: str,
    artifacts: Sequence[str],
    fields: Sequence[str],
    operator: str | None,
) -> None:
    """Flag a record as sensitive: graphic, personal_data, protected_source or minors.

    The flag is about the artifacts and fields named; naming neither, every artifact of the
    record.  `export --redact` withholds what flags name.
    """
    with _open(catalog_path, operator) as catalog:
        catalog.flag(record_id, kind, reason, artifacts=list(artifacts), fields=list(fields))
    click.echo(f"record {record_id} flagged {kind}")


@cli.command()
@click.argument("record_id", metavar="ID")
@click.argument("text")
@_catalog_option
@_operator_option
def note(record_id: str, text: str, catalog_path: str, operator: str | None) -> None:
    """Keep a note on a record, attributed to the operator and timed."""
    with _open(catalog_path, operator) as catalog:
        made = catalog.add_note(record_id, text)
    click.echo(f"note {made.id} on record {record_id}")


@cli.command()
@_catalog_option
@click.option("--define", "code", metavar="CODE", help="Add a category with this code to the catalog's vocabulary.")
@click.option("--label", help="The new category's label (with --define).")
@click.option("--reference", help="The provision it follows, e.g. a criminal code article (with --define).")
@_operator_option
@_json_option
def categories(
    catalog_path: str, code: str | None, label: str | None, reference: str | None, operator: str | None, as_json: bool
) -> None:
    """List the categories of alleged violation claims can name, or add one with --define."""
    with _open(catalog_path, operator) as catalog:
        if code is not None:
            if label is None:
                raise click.UsageError("--define needs --label")
            catalog.define_category(code, label, reference)
        elif label is not None or reference is not None:
            raise click.UsageError("--label and --reference go with --define")
        found = catalog.categories()
    if as_json:
        _echo_json([attrs.asdict(c) for c in found])
        return
    for category in found:
        reference_text = f"  ({category.reference})" if category.reference else ""
        click.echo(f"{category.code:<16} {_printable(category.label)}{_printable(reference_text)}")


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    parts = text.split(",")
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise InputError(
            f"{_printable(text)!r} is not WEST,SOUTH,EAST,NORTH in decimal degrees (e.g. 36.1,47.9,38.4,49.2)",
            where="bbox",
        ) from None
    return west, south, east, north


@cli.command(name="list")
@_catalog_option
@_record_filter_options
@click.option("--since", metavar="DATE", help="Only records with a claim alleging a time from then on.")
@click.option("--until", metavar="DATE", help="Only records with a claim alleging a time up to then.")
@click.option("--sha256", metavar="HASH", help="Only the records holding the artifact with this SHA-256.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many (a page).")
@click.option("--after", metavar="ID", help="Start after this record id (the last one of the previous page).")
@_json_option
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
    unreadable = shown = 0
    last: str | None = None
    with _open(catalog_path) as catalog:
        criteria = _criteria(catalog, status, category, tags, flags, bbox, since, until)
        if after is not None:
            catalog.record_ids(after=after, limit=1)  # a malformed id is named before anything is printed
        holding = None if sha256 is None else catalog.records_with_artifact(sha256.strip().lower())
        if as_json:
            click.echo("[", nl=False)
        for record in _readable_records(catalog, after, holding):
            if record is None:
                unreadable += 1
                continue
            if criteria is not None and not criteria.matches(record):
                continue
            if as_json:
                text = json.dumps(to_document(record), ensure_ascii=False, indent=2)
                click.echo(("," if shown else "") + "\n" + textwrap.indent(text, "  "), nl=False)
            else:
                size = sum(ra.artifact.size for ra in record.artifacts)
                tag_text = _printable(",".join(record.tags))
                title = display_path(record.title or "")
                click.echo(
                    f"{record.id}  {format_timestamp(record.created_at)}  {len(record.artifacts)} artifact(s) "
                    f"{size} B  {title}" + (f"  [{tag_text}]" if tag_text else "")
                )
            shown += 1
            last = record.id
            if limit is not None and shown >= limit:
                break
        if as_json:
            click.echo("\n]" if shown else "]")
    if limit is not None and shown >= limit and last is not None:
        click.echo(f"more may follow: --after {last}", err=True)
    if not shown and not as_json:
        _nothing_found(among_readable=bool(unreadable))
    if unreadable:
        raise SystemExit(EXIT_PROBLEMS)


def _readable_records(
    catalog: Catalog, after: str | None = None, only: Sequence[str] | None = None
) -> Iterator[model.EvidenceRecord | None]:
    """Every record that can be read (or those of *only*), a page at a time, and ``None`` for
    each one that cannot (named on standard error: one damaged row must not hide the rest of a
    catalog)."""
    remaining = None if only is None else [i for i in only if after is None or i > after]
    while True:
        if remaining is None:
            page = catalog.record_ids(after=after, limit=Catalog.PAGE_SIZE)
        else:
            page, remaining = remaining[: Catalog.PAGE_SIZE], remaining[Catalog.PAGE_SIZE :]
        if not page:
            return
        try:
            yield from catalog.read_page(page)
        except ValidationError:
            for record_id in page:  # find the damaged one(s); read the others one by one
                try:
                    yield catalog.record(record_id)
                except ValidationError as exc:
                    click.echo(f"error: {_one_line(exc)}", err=True)
                    yield None
        after = page[-1]


@cli.command()
@click.argument("record_id", metavar="ID")
@_catalog_option
@_json_option
def show(record_id: str, catalog_path: str, as_json: bool) -> None:
    """Show one record: its artifacts, their provenance and metadata, tags and notes."""
    with _open(catalog_path) as catalog:
        record = catalog.record(record_id)
    if as_json:
        _echo_json(to_document(record))
        return
    click.echo(f"record   {record.id}")
    click.echo(f"title    {display_path(record.title or '')}")
    click.echo(f"created  {format_timestamp(record.created_at)} by {_agent(record.created_by)}")
    if record.tags:
        click.echo(f"tags     {_printable(', '.join(record.tags))}")
    if UNSIGNED_PROVENANCE_TAG in record.tags:
        click.echo("provenance UNSIGNED: imported with --accept-unsigned; its history is not tied to a signed log")
    current = record.assessments[-1] if record.assessments else None
    click.echo(
        "status   "
        + (
            "unverified (no assessment yet)"
            if current is None
            else f"{current.status.value}"
            + (f", {current.confidence.value} confidence" if current.confidence else "")
            + f" ({format_timestamp(current.assessed_at)} {_agent(current.assessor)})"
        )
    )
    for flagged in record.flags:
        click.echo(
            f"flag     {flagged.kind.value}: {_printable(flagged.reason)} "
            f"({format_timestamp(flagged.set_at)} {_agent(flagged.set_by)})"
        )
    for entry in record.artifacts:
        artifact = entry.artifact
        click.echo(f"artifact {artifact.sha256} ({entry.role.value})")
        if entry.derived_from:
            click.echo(f"  made from  {', '.join(entry.derived_from)}: {_printable(entry.derivation or '')}")
        if entry.version_of:
            click.echo(f"  version of {entry.version_of} (same source, different bytes)")
        click.echo(f"  size       {artifact.size} bytes")
        click.echo(f"  media type {artifact.media_type}")
        for algorithm, value in artifact.digests.as_dict().items():
            if algorithm != "sha256":
                click.echo(f"  {algorithm:<10} {value}")
        _show_metadata(artifact.metadata)
    for report in record.reports:
        _show_report(report)
    for alleged in record.claims:
        _show_claim(alleged)
    for relation in record.relations:
        why = f": {_printable(relation.note)}" if relation.note else ""
        click.echo(
            f"relation {relation.kind.value} {relation.target_id} "
            f"({format_timestamp(relation.linked_at)} {_agent(relation.linked_by)}){why}"
        )
    for acquisition in record.acquisitions:
        when, how = format_timestamp(acquisition.ended_at), acquisition.method.value
        failed = " FAILED" if acquisition.outcome is model.Outcome.FAILED else ""
        click.echo(f"acquired {when} {how}{failed} by {_agent(acquisition.operator)}")
        if acquisition.original_path:
            click.echo(f"  from     {display_path(acquisition.original_path)}")
        if acquisition.source_url:
            click.echo(f"  source   {_printable(acquisition.source_url)}")
        _show_capture(acquisition)
        if acquisition.artifact_sha256:
            click.echo(f"  artifact {acquisition.artifact_sha256}")
        for other in acquisition.other_artifacts:
            click.echo(f"  also     {other}")
    for kept in record.notes:
        click.echo(f"note     {format_timestamp(kept.written_at)} {_agent(kept.author)}: {_printable(kept.text)}")
    for assessment in record.assessments:  # the history, oldest first; the last is current
        methods = ", ".join(m.value for m in assessment.methods)
        click.echo(
            f"assessed {format_timestamp(assessment.assessed_at)} {assessment.status.value}"
            + (f" ({assessment.confidence.value} confidence)" if assessment.confidence else "")
            + f" by {_agent(assessment.assessor)}"
            + (f"; methods: {methods}" if methods else "")
            + (f"; {_printable(assessment.note)}" if assessment.note else "")
        )


def _show_claim(alleged: model.Claim) -> None:
    """A claim, said to be one: what is alleged, and by whom."""
    click.echo(
        f"claim    {alleged.id} (alleged; stated {format_timestamp(alleged.stated_at)} by {_agent(alleged.stated_by)})"
    )
    time = alleged.event_time
    place = alleged.place
    position = None if place is None or place.position is None else place.position
    lines = [
        ("summary", alleged.summary),
        ("category", alleged.category),
        (
            "time",
            None
            if time is None
            else format_timestamp(time.start)
            + (f" to {format_timestamp(time.end)}" if time.end else "")
            + f" (to the {time.precision.value})",
        ),
        ("place", None if place is None else ", ".join(filter(None, (place.name, place.admin_area))) or None),
        (
            "position",
            None
            if position is None
            else f"{position.latitude}, {position.longitude}"
            + (f" ± {place.uncertainty_m:g} m" if place is not None and place.uncertainty_m is not None else ""),
        ),
        ("by", alleged.alleged_perpetrator),
        ("source", f"report {alleged.source_report_id}" if alleged.source_report_id else alleged.source_description),
    ]
    for label, value in lines:
        if value:
            click.echo(f"  {label:<8} {_printable(value)}")


def _show_report(report: model.Report) -> None:
    """A report: where it was published, by whom, when, and what it says (escaped, line by line)."""
    source = report.source
    where = " / ".join(filter(None, (source.platform, source.feed_name, source.account_handle)))
    click.echo(f"report   {report.id}" + (f" ({_printable(where)})" if where else ""))
    lines = [
        ("author", report.author),
        ("post id", report.post_id),
        ("posted", format_timestamp(report.published_at) if report.published_at else None),
        ("updated", format_timestamp(report.updated_at) if report.updated_at else None),
        ("url", report.url if report.url_known else "unknown (the source did not give one)"),
        ("identity", report.identity),
    ]
    if report.repost is not None:
        lines.append(("repost", f"{report.repost.reposted_by} reposted {report.repost.original_author}"))
    if report.line_span is not None:
        lines.append(("lines", f"{report.line_span.first}-{report.line_span.last} of {report.document_sha256}"))
    for label, value in lines:
        if value:
            click.echo(f"  {label:<8} {_printable(value)}")
    for text_line in report.text.split("\n"):
        click.echo(f"  | {_printable(text_line)}")
    for card in report.link_cards:
        cut = " (cut short)" if card.truncated else ""
        click.echo(f"  card     {_printable(card.site_name or '')}: {_printable(card.title or '')}{cut}")
    for link in report.links:
        click.echo(f"  link     {_printable(link)}")
    for media in report.media:
        stated = ", ".join(filter(None, (media.media_type, None if media.length is None else f"{media.length} B")))
        click.echo(f"  media    {_printable(media.url)}" + (f" ({_printable(stated)})" if stated else ""))


def _show_capture(acquisition: model.Acquisition) -> None:
    """The capture-specific lines of an acquisition (nothing for other methods)."""
    lines = [
        ("url", acquisition.requested_url),
        ("final", acquisition.final_url if acquisition.final_url != acquisition.requested_url else None),
        ("status", None if acquisition.http_status is None else str(acquisition.http_status)),
        ("platform", " ".join(filter(None, (acquisition.extractor, acquisition.platform_id))) or None),
        ("error", acquisition.error),
    ]
    info = acquisition.platform_info
    if info is not None:
        uploaded = format_timestamp(info.uploaded_at) if info.uploaded_at else info.upload_date
        lines += [
            ("title", info.title),
            (
                "uploader",
                " ".join(filter(None, (info.uploader, f"({info.uploader_id})" if info.uploader_id else None))),
            ),
            ("channel", " ".join(filter(None, (info.channel, f"({info.channel_id})" if info.channel_id else None)))),
            ("uploaded", uploaded),
            ("duration", None if info.duration_s is None else f"{info.duration_s:g} s"),
            ("format", info.format_id),
        ]
    tools = ", ".join(f"{t.name} {t.version}" for t in acquisition.tools if t.name in ("yt-dlp", "ffmpeg"))
    lines.append(("tools", tools or None))
    for label, value in lines:
        if value:
            click.echo(f"  {label:<8} {_printable(value)}")
    for setting in acquisition.settings:
        click.echo(f"  setting  {_printable(setting)}")
    for withheld in acquisition.withheld:
        click.echo(f"  withheld {_printable(withheld)}")
    if acquisition.note:
        click.echo(f"  note     {_printable(acquisition.note)}")


def _agent(agent: model.Agent) -> str:
    text = agent.name + (f" <{agent.email}>" if agent.email else "")
    return _printable(text + (f" at {agent.host}" if agent.host else ""))


def _show_metadata(metadata: model.EmbeddedMetadata | None) -> None:
    if metadata is None:
        return
    exif = metadata.exif
    if exif is not None:
        for label, value in (
            ("taken", exif.datetime_original),
            ("make", exif.make),
            ("model", exif.model),
            ("software", exif.software),
        ):
            if value:
                click.echo(f"  {label:<10} {display_path(value)}")
        if exif.gps is not None:
            gps = exif.gps
            altitude = f", {gps.altitude_m:g} m" if gps.altitude_m is not None else ""
            click.echo(f"  gps        {gps.latitude:.6f}, {gps.longitude:.6f}{altitude}")
        click.echo(f"  exif tags  {len(exif.raw)}")
    for error in metadata.errors:
        click.echo(f"  extraction problem: {display_path(error)}")


@cli.command()
@click.argument("record_id", metavar="[ID]", required=False)
@_catalog_option
@click.option(
    "--proof",
    "proof_seq",
    type=int,
    metavar="SEQ",
    help="Print the RFC 6962 inclusion proof of custody event SEQ in the latest checkpoint.",
)
@_json_option
def log(record_id: str | None, catalog_path: str, proof_seq: int | None, as_json: bool) -> None:
    """Show the custody history: of the whole catalog, or of one record; or, with --proof, that
    one event is in the signed log."""
    if proof_seq is not None:
        with _open(catalog_path) as catalog:
            proof = catalog.inclusion_proof(proof_seq)
        if as_json:
            _echo_json(attrs.asdict(proof))
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
    with _open(catalog_path) as catalog:
        if record_id is not None and not catalog.has_record(record_id):
            raise NotFoundError(f"no record with id {record_id}", where="record")
        events = catalog.history(record_id)
    if as_json:
        _echo_json([to_document(e) for e in events])
        return
    for event in events:
        click.echo(
            f"{event.seq:>6}  {format_timestamp(event.at)}  {event.action:<16} {_printable(event.subject)}  "
            f"{_event_url(event)}by {_agent(event.actor)}  {event.hash[:16]}"
        )
    if not events:
        _nothing_found()


def _event_url(event: model.CustodyEvent) -> str:
    """The URL a capture event is about (a failed one may be on no record), or nothing."""
    acquisition = event.details.get("acquisition") if event.action.startswith(("media.", "capture.")) else None
    url = acquisition.get("requested_url") if isinstance(acquisition, dict) else None
    return f"{_printable(url)}  " if isinstance(url, str) else ""


@cli.command()
@_catalog_option
@_operator_option
@click.option("--no-log", is_flag=True, help="Do not record this verification in the custody log.")
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A signed checkpoint of this log held elsewhere: the log must still extend it (repeatable).",
)
@click.option(
    "--no-remember",
    is_flag=True,
    help="Neither check against nor keep the checkpoint remembered from the last verification.",
)
@click.option(
    "--allow-unsigned-tail",
    is_flag=True,
    help="Events after the last signed checkpoint (an encrypted key between signings) are counted, not a problem.",
)
@_json_option
@_quiet_option
def verify(
    catalog_path: str,
    operator: str | None,
    no_log: bool,
    checkpoint_files: Sequence[str],
    no_remember: bool,
    allow_unsigned_tail: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Check the custody log (hash links, Merkle tree, signed checkpoints), every record
    against it, and every stored file's digests.

    A checkpoint given with --checkpoint, and the one remembered from the last clean
    verification (in $XDG_STATE_HOME/evidence-catalog/), must still be a prefix of the log:
    a log rolled back or rewritten is found.  Exit code 1 if anything is wrong, including a
    catalog database that cannot be read; each problem is printed on its own line.
    """
    given = []
    for name in checkpoint_files:
        try:
            given.append((display_path(name), Path(name).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot be read as a checkpoint ({exc})", where=display_path(name)) from exc
    try:
        with _open(catalog_path, operator) as catalog:
            with catalog.db.read() as session:
                total = sum(size for _, size, _ in catalog.db.artifact_digests(session))
            with _bytes_progress(total, "verifying", quiet=quiet or as_json) as progress:
                report = catalog.verify(
                    progress=progress,
                    record_event=not no_log,
                    checkpoints=given,
                    remember=not no_remember,
                    allow_unsigned=allow_unsigned_tail,
                )
    except (CatalogNotFoundError, CatalogVersionError):
        raise  # the wrong path or a newer catalog: bad input, not a finding
    except (CatalogError, DatabaseError) as exc:
        # A catalog whose database cannot be read at all is the worst verification result.
        if as_json:
            unread = VerificationReport(
                findings=(EntryUnreadable(subject="catalog database", reason=_one_line(exc)),),
                records_checked=0,
                artifacts_checked=0,
                bytes_checked=0,
                events_checked=0,
            )
            _echo_json(unread.as_dict())
        else:
            click.echo(f"PROBLEM {_one_line(exc)}")
        raise SystemExit(EXIT_PROBLEMS) from exc
    if not report.logged and not no_log:
        reason = report.unlogged_reason or "the catalog is not writable"
        click.echo(f"note: {_printable(reason)}; this verification was not logged", err=True)
    if report.unsigned_events and report.ok:
        click.echo(
            f"note: the last {report.unsigned_events} custody event(s) are not yet covered by a signed checkpoint "
            "(allowed by --allow-unsigned-tail); sign them with `evidence-catalog checkpoint`",
            err=True,
        )
    if as_json:
        _echo_json(report.as_dict())
    else:
        for finding in report.findings:
            click.echo(f"PROBLEM {_printable(str(finding))}")
        if not quiet or not report.ok:
            verdict = "verified" if report.ok else f"{len(report.findings)} problem(s) found"
            click.echo(
                f"{verdict}: {report.records_checked} record(s), {report.artifacts_checked} artifact(s), "
                f"{report.bytes_checked} bytes, {report.events_checked} custody event(s)"
            )
    if not report.ok:
        raise SystemExit(EXIT_PROBLEMS)


@cli.command()
@click.argument("record_ids", metavar="[ID]...", nargs=-1)
@_catalog_option
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="json", show_default=True)
@click.option(
    "--output", "-o", required=True, type=click.Path(), help="File (or, for bagit, folder) to write; must not exist."
)
@_record_filter_options
@click.option("--search", "search_text", metavar="TEXT", help="Records holding a report that matches TEXT.")
@click.option("--redact", is_flag=True, help="BagIt: withhold what the records' flags name, and say so in the bag.")
@click.option("--sha512", is_flag=True, help="BagIt: add manifest-sha512.txt beside manifest-sha256.txt.")
@click.option("--bom", is_flag=True, help="CSV only: start with a UTF-8 byte order mark (for spreadsheet software).")
@_operator_option
@_quiet_option
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
    prov: W3C PROV-JSON provenance; csv: one row per artifact for spreadsheets.
    """
    with _open(catalog_path, operator) as catalog:
        chosen = list(record_ids) or None
        criteria = _criteria(catalog, status, category, tags, flags, bbox)
        if criteria is not None:
            chosen = [r.id for r in catalog.records(chosen) if criteria.matches(r)]
        if search_text is not None:
            found = {hit.record_id for hit in catalog.search(search_text, limit=None)}
            chosen = [r for r in (chosen if chosen is not None else catalog.record_ids()) if r in found]
        if chosen == []:
            raise InputError("no record meets the selection; nothing was exported", where="export")
        with _export_progress(quiet=quiet or fmt != "bagit") as progress:
            result = catalog.export(
                output,
                format=fmt,  # type: ignore[arg-type]
                record_ids=chosen,
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


@contextmanager
def _export_progress(*, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar for the bytes a bag export copies, on a terminal only."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    with _progress_bars() as bars:
        task = bars.add_task("exporting", total=None)
        yield lambda done, total: bars.update(task, completed=done, total=total)


@cli.command(name="import")
@click.argument("source", type=click.Path(exists=False))
@_catalog_option
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
@_operator_option
@_quiet_option
def import_(
    source: str, catalog_path: str, blobs: str | None, accept_unsigned: bool, operator: str | None, quiet: bool
) -> None:
    """Import a bag, JSON or JSON Lines export made by evidence-catalog.

    Everything is checked first (paths, completeness, Payload-Oxum, every digest, schemas, custody
    hashes; each record against what its custody events rebuild and each artifact against what
    its bytes say; the events against a checkpoint signed by the key their own log names);
    anything wrong is refused (exit code 2, whatever the reason) and nothing changes.  Records
    keep their ids; importing the same export again adds nothing.  The summary names the log key
    checked: compare its id with the one the sender gave you.
    """
    with _open(catalog_path, operator) as catalog:
        with _bytes_progress(None, "checking", quiet=quiet) as progress:
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
                f"; log key {result.log_key_id} ({_printable(result.log_origin or '')})"
                if result.log_key_id
                else f"; UNSIGNED provenance accepted ({_printable(result.unsigned or '')}),"
                f" tagged {UNSIGNED_PROVENANCE_TAG}"
            )
        )


#: Where `change-key --encrypt` takes the new key's passphrase from when not asked on a terminal.
NEW_PASSPHRASE_ENV = "EVIDENCE_CATALOG_NEW_KEY_PASSPHRASE"


@cli.command(name="change-key")
@_catalog_option
@click.option(
    "--encrypt",
    is_flag=True,
    help=f"Keep the new key encrypted: its passphrase from ${NEW_PASSPHRASE_ENV}, else asked on the terminal.",
)
@_operator_option
@_json_option
def change_key(catalog_path: str, encrypt: bool, operator: str | None, as_json: bool) -> None:
    """Hand the custody log over to a new log key, signed by the key in force (logged as
    key.changed).  For a key that may have leaked, or to start protecting it with a passphrase.
    Needs the current key (its passphrase in $EVIDENCE_CATALOG_KEY_PASSPHRASE, if encrypted).
    The old private key is deleted; its public files stay in keys/retired/.  A team copies the
    new keys/ folder to every machine that writes."""
    passphrase = None
    if encrypt:
        passphrase = os.environ.get(NEW_PASSPHRASE_ENV) or None
        if passphrase is None:
            if not sys.stdin.isatty():
                raise InputError(f"give the new key's passphrase in ${NEW_PASSPHRASE_ENV}", where="--encrypt")
            passphrase = click.prompt("Passphrase of the new key", hide_input=True, confirmation_prompt=True)
            if not passphrase:
                raise InputError("the passphrase must not be empty", where="--encrypt")
    with _open(catalog_path, operator) as catalog:
        change = catalog.change_log_key(passphrase=passphrase)
    if as_json:
        _echo_json(attrs.asdict(change))
    else:
        click.echo(f"key {change.previous_key_id} handed the log to key {change.key_id} (custody event {change.seq})")
        click.echo(change.vkey)


@cli.command(name="checkpoint")
@_catalog_option
@click.option("--timestamp", "stamp", is_flag=True, help="Have it time-stamped by an RFC 3161 TSA (queued if offline).")
@click.option("--tsa", metavar="URL", help="The TSA (default: $EVIDENCE_CATALOG_TSA_URL, or catalog.toml).")
@click.option("--artifact", "artifacts", multiple=True, metavar="SHA256", help="Time-stamp this artifact too.")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Also write the signed note to this file (must not exist)."
)
@_operator_option
@_json_option
def checkpoint_cmd(
    catalog_path: str,
    stamp: bool,
    tsa: str | None,
    artifacts: Sequence[str],
    output: str | None,
    operator: str | None,
    as_json: bool,
) -> None:
    """Print the latest signed checkpoint of the custody log (a C2SP signed note), signing a
    new one when the latest does not cover the whole log.  Keep it elsewhere (send it to a
    partner, print it, `--output` it to a drive you keep apart): `verify --checkpoint FILE`
    later shows whether the log still extends it -- the only way to find a log cut short, or a
    whole catalog folder put back to an older copy.

    With --timestamp, the checkpoint (and each --artifact) is sent to an RFC 3161 Time-Stamp
    Authority with every request still queued; when it cannot be reached the requests stay
    queued (exit code 1) for the next --timestamp."""
    result = None
    with _open(catalog_path, operator) as catalog:
        if stamp:
            result = catalog.timestamp(url=tsa, artifacts=list(artifacts))
        elif tsa or artifacts:
            raise InputError("--tsa and --artifact go with --timestamp", where="checkpoint")
        made = catalog.checkpoint()
        name, public = catalog.log_key.public()
    if output is not None:
        _write_new_file(Path(output), made.note.encode("utf-8"))
        click.echo(f"checkpoint of {made.size} event(s) written to {display_path(output)}", err=True)
    if result is not None:
        for line in result.granted:
            click.echo(f"time-stamped: {line}", err=True)
        for line in result.failed:
            click.echo(f"refused by the TSA: {_printable(line)}", err=True)
        if result.pending:
            click.echo(
                f"{result.pending} time-stamp request(s) queued ({_printable(result.offline or 'not sent')}); "
                "run `checkpoint --timestamp` again to send them",
                err=True,
            )
    if as_json:
        _echo_json(
            {
                "tree_size": made.size,
                "root_hash": made.root,
                "note": made.note,
                "signed_at": format_timestamp(made.at),
                "vkey": vkey(name, public),
            }
        )
    else:
        click.echo(made.note, nl=False)
    if result is not None and (result.pending or result.failed):
        raise SystemExit(EXIT_PROBLEMS)


@cli.command()
@_catalog_option
@click.option("--remove", is_flag=True, help="Remove what is left over and older than an hour (logged).")
@_operator_option
@_json_option
def fsck(catalog_path: str, remove: bool, operator: str | None, as_json: bool) -> None:
    """List what interrupted work left in the catalog folder that no record claims: orphaned
    blobs and unfinished temporary files (and quarantined damaged copies, which are kept).

    Exit code 1 when something is left over (after --remove: something too young to remove).
    """
    with _open(catalog_path, operator) as catalog:
        report = catalog.fsck(remove=remove)
    removed = {e.path for e in report.removed}
    if as_json:
        _echo_json(attrs.asdict(report) | {"clean": report.clean})
    else:
        for label, entries in (("orphaned blob", report.orphaned_blobs), ("temporary", report.temporary)):
            for entry in entries:
                state = "removed" if entry.path in removed else f"{entry.age_seconds / 60:.0f} min old"
                click.echo(f"{label:<14} {_printable(entry.path)}  {entry.size} B  {state}")
        for entry in report.quarantined:
            click.echo(f"{'quarantined':<14} {_printable(entry.path)}  {entry.size} B  kept")
        click.echo("clean" if report.clean else "left over: see above (--remove removes what is older than an hour)")
    if not report.clean:
        raise SystemExit(EXIT_PROBLEMS)


@cli.command()
@click.argument("name", type=click.Choice(sorted(SCHEMA_FILES)))
def schema(name: str) -> None:
    """Print a published JSON Schema."""
    _echo_json(load_schema(name))


# -- entry point ------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, DatabaseError):
        if getattr(exc.orig, "sqlstate", None):  # a database server's answer (PostgreSQL)
            reason = _printable(str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else repr(exc.orig))
            return f"catalog database server: {reason}"
        return f"catalog database cannot be read ({exc.orig}): it may be corrupt, or its disk full or unreadable"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{display_path(exc.filename)}: {exc.strerror or exc}"
    return _printable(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit code (used by the console script)."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="evidence-catalog", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except IntegrityError as exc:
        click.echo(f"error: {_one_line(exc)}", err=True)
        return EXIT_PROBLEMS
    except (EvidenceError, DatabaseError, OSError) as exc:
        click.echo(f"error: {_one_line(exc)}", err=True)
        return EXIT_USAGE
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except Exception:  # noqa: BLE001 -- a bug: say so, keep the details for the report
        click.echo("internal error in evidence-catalog (please report it with the lines below):", err=True)
        click.echo(traceback.format_exc(), err=True)
        return EXIT_INTERNAL
    return EXIT_OK


def _write_new_file(path: Path, data: bytes) -> None:
    """Write *data* to a file that must not exist yet, durably; nothing is left when it fails."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise InputError("already exists; choose a new file name", where=display_path(path)) from None
    except OSError as exc:
        raise InputError(f"cannot be written ({exc.strerror})", where=display_path(path)) from exc
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise StorageError(f"cannot be written ({exc.strerror})", where=display_path(path)) from exc


def run() -> None:
    """Console-script wrapper that exits with :func:`main`'s code.

    Like other Unix tools, the command ends quietly when the reader of its output goes away
    (``evidence-catalog log | head``): the shell then reports 141.
    """
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
