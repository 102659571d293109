"""Which format an input is, and the reports it states: the ingest formats, found from the
content when not given, each read by its own reader.

Nothing here touches a catalog: an input's bytes go in, reports (with their identity, titles and
where each was in the input) and the input's warnings come out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from evidence_catalog import model
from evidence_catalog.errors import InputError
from evidence_catalog.ingest.digest import item_report, parse_digest, report_identity
from evidence_catalog.ingest.feed import looks_like_feed, parse_feed
from evidence_catalog.ingest.telegram import looks_like_telegram, parse_telegram
from evidence_catalog.ingest.twarc import looks_like_twarc, parse_twarc

IngestFormat = Literal["digest", "rss", "twarc", "telegram"]
#: Inputs :meth:`Catalog.ingest` reads ("rss" covers RSS 0.9x-2.0, RSS 1.0/RDF and Atom; "twarc"
#: is twarc2's JSON Lines of X API v2 responses).
INGEST_FORMATS: tuple[str, ...] = ("digest", "rss", "twarc", "telegram")


def detect_format(raw: bytes) -> IngestFormat:
    """The format of an input found from its content: a feed, twarc2 tweets or a Telegram Desktop
    export, each known by a cheap test of its start, else a digest (the plain text that is
    checked last, by reading it)."""
    if looks_like_feed(raw):
        return "rss"
    if looks_like_twarc(raw):
        return "twarc"
    if looks_like_telegram(raw):
        return "telegram"
    return "digest"


#: A report as read from an input: the report, a title for its record, where it was in the
#: input, the media files it names, and ``unstructure(report)`` where the reader made it already
#: (else ``None``).
PreparedReport = tuple[model.Report, str, str, tuple[Path, ...], dict[str, Any] | None]


def read_reports(
    raw: bytes, format: str, where: str, folder: Path, skipped: list[tuple[int, str]] | None
) -> tuple[list[PreparedReport], tuple[tuple[int, str], ...]]:
    """The reports an input states (see :data:`PreparedReport`), and the input's warnings.
    Reports carry their identity; the caller sets the document's SHA-256."""
    if not raw:
        raise InputError("is empty", where=where)
    if format == "rss":
        feed = parse_feed(raw, where=where)
        return [(e.report, e.title, e.where, (), e.document) for e in feed.entries], feed.warnings
    if format == "twarc":
        tweets, warnings = parse_twarc(input_text(raw, where), where=where, skipped=skipped)
        return [(*tweet, (), None) for tweet in tweets], warnings
    if format == "telegram":
        messages, warnings = parse_telegram(input_text(raw, where), export_dir=folder, where=where, skipped=skipped)
        return [(m.report, m.title, m.where, m.media, None) for m in messages], warnings
    digest = parse_digest(input_text(raw, where))
    if not digest.items:
        raise InputError("no feed items found (a digest starts with a 'Feed Name (Platform)' line)", where=where)
    prepared: list[PreparedReport] = []
    for item in digest.items:
        identity = report_identity(
            platform=item.platform,
            post_id=None,
            feed=item.feed_name,
            author=item.repost_of or item.feed_name,
            text=item.text,
        )
        report = item_report(item, report_id=model.new_id(), document_sha256=None, identity=identity)
        where = f"digest lines {item.first_line}-{item.last_line}: " + (
            "title and description repeat the same text, kept once"
            if item.repeated
            else "text not repeated as the format has it (see the ingest's warnings)"
        )
        prepared.append((report, item.text, where, (), None))
    return prepared, digest.warnings


def input_text(raw: bytes, where: str) -> str:
    """An input's bytes as text: UTF-8 only, said plainly when it is not (nothing is guessed)."""
    if not raw:
        raise InputError("is empty", where=where)
    if b"\x00" in raw:
        raise InputError("is not text (it holds binary data)", where=where)
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"is not UTF-8 text (byte {exc.start}); convert it first, e.g. iconv -f latin1 -t utf-8",
            where=where,
        ) from exc
