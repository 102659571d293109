"""Commands that bring evidence in: ``add`` (files), ``capture`` (online media with yt-dlp)
and ``ingest`` (reports from digests, feeds and exports)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from evidence_catalog.cli.app import EXIT_PROBLEMS, cli
from evidence_catalog.cli.options import catalog_option, library_values, open_catalog, operator_option, quiet_option
from evidence_catalog.cli.output import echo_quarantined, in_option_words, printable
from evidence_catalog.cli.progress import bytes_progress, capture_progress, shows_progress
from evidence_catalog.errors import InputError
from evidence_catalog.paths import display_path

if TYPE_CHECKING:
    from evidence_catalog.results import AnalysisResult, CaptureResult


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(readable=False))
@catalog_option
@click.option("--recursive", "-r", is_flag=True, help="Add the files inside directories.")
@click.option("--note", help="A note to keep with the record.")
@click.option("--source-url", help="Where the file came from, as stated by the operator.")
@click.option("--tag", "tags", multiple=True, help="Tag for the record (repeatable).")
@click.option("--record", "record_id", help="Add to this existing record instead of a new one.")
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1000,  # the library's default (operations.adding.BATCH_FILES), not imported here
    show_default=True,
    help="Most files committed per transaction (fewer once they hold 256 MiB or took 2 s);"
    " 1 commits and syncs each file on its own, much slower for many small files.",
)
@click.option(
    "--no-analyze", is_flag=True, help="Do not analyse the images and videos now (`analyze` can do it later)."
)
@operator_option
@quiet_option
def add(
    paths: Sequence[str],
    catalog_path: str,
    recursive: bool,
    note: str | None,
    source_url: str | None,
    tags: Sequence[str],
    record_id: str | None,
    batch: int,
    no_analyze: bool,
    operator: str | None,
    quiet: bool,
) -> None:
    """Add files to the catalog and print the id of the record each one is on.

    Each line is: record id, SHA-256, what happened, path, printed once the file's batch is
    committed.  Identical bytes already in the catalog are not stored again; their record
    gains a new acquisition.  An interrupted add keeps every committed batch; adding the same
    files again completes it.
    """
    with open_catalog(catalog_path, operator) as catalog:
        files = catalog.collect_files(paths, recursive=recursive)
        if not files:
            raise InputError("no files to add (the directories given are empty)", where=display_path(paths[0]))
        # The bar's total: every file's size, read only where a bar is drawn.
        total = sum(os.stat(f).st_size for f in files) if shows_progress(quiet=quiet) else None

        def report(result: Any) -> None:
            status = "new" if result.new_record else "added" if result.new_on_record else "already catalogued"
            click.echo(f"{result.record_id}\t{result.sha256}\t{status}\t{display_path(result.path)}")
            if result.quarantined:
                echo_quarantined([(result.sha256, result.quarantined)])

        # The bar is drawn from the first bytes stored: an add of many files forks its worker
        # before then (a process drawing a bar runs a thread, and forks no worker).
        with bytes_progress(total, "adding", quiet=quiet, deferred=True) as progress:
            catalog.add(
                files,
                record_id=record_id,
                note=note,
                source_url=source_url,
                tags=tags,
                progress=progress,
                on_added=report,
                batch=batch,
                analyze=not no_analyze,
                on_analyzed=echo_analysis,
            )


def echo_analysis(result: AnalysisResult) -> None:
    """Say on standard error what the analysis of a file just added found worth a look: the
    problems it met and Content Credentials that failed (the add's own lines stay as they were)."""
    for other in result.looks_like:
        click.echo(
            f"note: {result.sha256} looks like what record {other} holds (`similar {result.sha256}`; "
            "`relate` records what a person judges)",
            err=True,
        )
    if result.credentials in ("invalid", "unreadable"):
        click.echo(f"note: {result.sha256} carries Content Credentials that are {result.credentials}", err=True)
    for error in result.errors:
        click.echo(f"note: the analysis of {result.sha256} met a problem: {printable(error)}", err=True)
    echo_quarantined(result.quarantined)


def _read_url_file(path: str) -> list[str]:
    """URLs from a file, one per line (blank lines and ``#`` comments skipped); each is checked
    here, so that a bad line stops the batch before anything is fetched."""
    from evidence_catalog.operations.common import check_url

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


def _size_option(text: str | None, where: str) -> int | None:
    from evidence_catalog.capture import parse_size

    return None if text is None else parse_size(text, where)


def _echo_capture(result: CaptureResult) -> bool:
    """Print one capture's line (record, SHA-256, status, URL) and its error or warning; return
    whether it succeeded."""
    url = printable(result.url)
    if not result.ok:
        click.echo(f"-\t-\tfailed\t{url}")
        click.echo(f"error: {url}: {printable(result.error or 'failed')}", err=True)
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
    echo_quarantined(result.quarantined)
    if result.not_kept:
        click.echo(f"warning: {url}: {printable(result.not_kept)}", err=True)
    return True


@cli.command()
@click.argument("urls", metavar="[URL]...", nargs=-1)
@catalog_option
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
    "--no-archive",
    is_flag=True,
    help="Do not record the HTTP exchanges into a WARC/WACZ web archive stored with the record.",
)
@click.option(
    "--skip-captured",
    is_flag=True,
    help="Do not fetch URLs captured successfully before (resume an interrupted batch).",
)
@click.option(
    "--no-analyze", is_flag=True, help="Do not analyse the images and videos now (`analyze` can do it later)."
)
@click.option(
    "--page",
    "as_page",
    is_flag=True,
    help="Capture the URLs as web pages in Chromium (screenshot, rendered HTML, PDF, text, WACZ), not media.",
)
@click.option(
    "--page-time-limit",
    type=float,
    default=30.0,
    show_default=True,
    help="With --page: seconds a page has to load; later, it is captured as it is (a partial capture).",
)
@operator_option
@quiet_option
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
    no_archive: bool,
    skip_captured: bool,
    no_analyze: bool,
    as_page: bool,
    page_time_limit: float,
    operator: str | None,
    quiet: bool,
) -> None:
    """Capture online media (videos, images, posts) with yt-dlp, with full provenance; with
    --page, capture web pages in Chromium.

    Each line is: record id, SHA-256 of the main media file, what happened, URL.  The media as
    served, yt-dlp's info.json, thumbnails, subtitles, the description and the page are kept,
    and a WACZ web archive of every HTTP exchange the capture made (unless --no-archive).
    A URL that fails does not stop the others: its line says "failed", the reason goes to
    standard error, the attempt is in the custody log, and the exit code is 1.

    With --page, each URL is loaded in the system's Chromium (headless, a fresh profile,
    downloads refused, pop-ups closed) and its full-page screenshot (the main file), rendered
    HTML, PDF print, text and a WACZ of every request the page made are kept.  A page still
    loading after --page-time-limit seconds is captured as it is, and said to be partial.
    """
    from evidence_catalog.capture import CaptureOptions
    from evidence_catalog.operations.common import check_url

    wanted = [check_url(url) for url in urls]
    if url_file is not None:
        wanted += _read_url_file(url_file)
    if not wanted:
        raise InputError("give at least one URL, or --from-file FILE", where="url")
    if as_page:
        media_only = {
            "--format": format_spec,
            "--cookies": cookies_file,
            "--proxy": proxy,
            "--rate-limit": rate_limit,
            "--max-filesize": max_filesize,
            "--no-ffmpeg": no_ffmpeg or None,
            "--no-archive": no_archive or None,
            "--skip-captured": skip_captured or None,
        }
        given = [name for name, value in media_only.items() if value is not None]
        if given:
            raise InputError(f"{', '.join(given)} cannot be used with --page (media capture only)", where="--page")
        _capture_pages(catalog_path, operator, wanted, record_id, tags, note, page_time_limit, quiet=quiet)
        return
    options = CaptureOptions(
        format=format_spec,
        cookies_file=None if cookies_file is None else Path(cookies_file),
        proxy=proxy,
        rate_limit=_size_option(rate_limit, "rate limit"),
        max_filesize=_size_option(max_filesize, "max filesize"),
        socket_timeout=timeout,
        retries=retries,
        ffmpeg=False if no_ffmpeg else None,
        archive=not no_archive,
    )
    failed = skipped = 0
    with open_catalog(catalog_path, operator) as catalog, capture_progress(quiet=quiet) as (progress, clear):

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
            analyze=not no_analyze,
            on_analyzed=echo_analysis,
        )
    if not quiet:
        done = len(wanted) - failed - skipped
        summary = f"captured {done} of {len(wanted)} URL(s)"
        summary += f"; {skipped} skipped (captured before)" if skipped else ""
        summary += f"; {failed} failed" if failed else ""
        click.echo(summary, err=True)
    if failed:
        raise SystemExit(EXIT_PROBLEMS)


def _capture_pages(
    catalog_path: str,
    operator: str | None,
    urls: Sequence[str],
    record_id: str | None,
    tags: Sequence[str],
    note: str | None,
    time_limit: float,
    *,
    quiet: bool,
) -> None:
    from evidence_catalog.capture.page import PageOptions, chromium_path

    options = PageOptions(time_limit=time_limit)
    chromium_path()  # one line and how to install it, before the catalog is opened
    failed = 0
    with open_catalog(catalog_path, operator) as catalog:
        for url in urls:
            result = catalog.capture_page(url, record_id=record_id, options=options, tags=tags, note=note)
            failed += not _echo_capture(result)
    if not quiet:
        summary = f"captured {len(urls) - failed} of {len(urls)} page(s)"
        summary += f"; {failed} failed" if failed else ""
        click.echo(summary, err=True)
    if failed:
        raise SystemExit(EXIT_PROBLEMS)


@cli.command()
@click.argument("source", metavar="PATH_OR_URL")
@catalog_option
@click.option(
    "--format",
    "fmt",
    type=library_values("ingest.formats", "INGEST_FORMATS"),
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
@click.option(
    "--no-analyze", is_flag=True, help="Do not analyse the images and videos now (`analyze` can do it later)."
)
@operator_option
@quiet_option
def ingest(
    source: str,
    catalog_path: str,
    fmt: str | None,
    tags: Sequence[str],
    note: str | None,
    keep_going: bool,
    capture_media: bool,
    timeout: float,
    no_analyze: bool,
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
    from evidence_catalog.capture import CaptureOptions

    options = CaptureOptions(socket_timeout=timeout)
    with open_catalog(catalog_path, operator) as catalog, capture_progress(quiet=quiet) as (progress, clear):
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
            analyze=not no_analyze,
            on_analyzed=echo_analysis,
        )
        clear()
    for line, message in result.warnings:
        at = f", line {line}" if result.format == "digest" and line else ""
        click.echo(f"warning: {printable(result.path)}{at}: {printable(in_option_words(message)[0])}", err=True)
    for _, message in result.skipped:
        click.echo(f"skipped: {printable(result.path)}: {printable(message)}", err=True)
    echo_quarantined(result.quarantined)
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
