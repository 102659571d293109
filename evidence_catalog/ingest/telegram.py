"""Telegram Desktop channel exports: ``result.json`` and the media files it names.

Each message becomes a report (identity ``telegram:<chat id>/<message id>``); its photo or file,
referenced by a path relative to the export folder, is stored as an artifact on the same record.
A media path that leaves the export folder is refused; a media file that the export names but
that is missing is an error (nothing of the export is ingested); media Telegram did not export
("File not included ...") is a warning.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from attrs import frozen

from evidence_catalog import model
from evidence_catalog.errors import InputError
from evidence_catalog.ingest.digest import hashtags, mentions, report_identity


@frozen
class TelegramMessage:
    """A message as a report, with the media files it carries (absolute paths)."""

    report: model.Report
    title: str
    where: str
    media: tuple[Path, ...] = ()


def looks_like_telegram(raw: bytes) -> bool:
    """A cheap test used to pick the format: a JSON object with ``messages`` and a chat ``id``."""
    head = raw[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{") and b'"messages"' in raw[: 1 << 20] and (b'"type"' in head or b'"id"' in head)


def _text(value: Any) -> str:
    """A message's text: a string, or a list of strings and entity objects with their text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in value if part)
    return ""


def _time(message: dict[str, Any]) -> dt.datetime | None:
    unix = message.get("date_unixtime")
    if isinstance(unix, str) and unix.isdigit():
        return dt.datetime.fromtimestamp(int(unix), dt.UTC)
    return None  # "date" alone is the exporting computer's local time, zone unknown: not guessed


def parse_telegram(
    text: str, *, export_dir: Path, where: str, skipped: list[tuple[int, str]] | None = None
) -> tuple[list[TelegramMessage], tuple[tuple[int, str], ...]]:
    """The messages of a channel export and the warnings met; :class:`InputError` for an export
    that cannot be ingested whole.  A message whose media file is missing or outside the export
    folder is an error too, or, when a *skipped* list is given (``--keep-going``), is left out
    whole (its text too, so that ingesting the mended export later adds it) and named there."""
    try:
        export = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"is not JSON (line {exc.lineno}: {exc.msg})", where=where) from exc
    if not isinstance(export, dict) or not isinstance(export.get("messages"), list):
        raise InputError("is not a Telegram Desktop export (no 'messages' list)", where=where)
    chat_id = str(export.get("id", "unknown"))
    chat_name = export.get("name") if isinstance(export.get("name"), str) else None
    root = export_dir.resolve()
    found: list[TelegramMessage] = []
    warnings: list[tuple[int, str]] = []
    for message in export["messages"]:
        if not isinstance(message, dict) or message.get("type") != "message":
            continue  # service messages (joins, pins) state nothing
        number = message.get("id")
        label = f"message {number}"
        body = _text(message.get("text"))
        media: list[Path] = []
        for key in ("photo", "file"):
            name = message.get(key)
            if not isinstance(name, str) or not name:
                continue
            if name.startswith("(File not included"):
                warnings.append((int(number) if isinstance(number, int) else 0, f"{label}: its {key} was not exported"))
                continue
            path = (export_dir / name).resolve()
            problem = (
                f"media path {name!r} leaves the export folder"
                if os.path.isabs(name) or not path.is_relative_to(root)
                else None
                if path.is_file()
                else f"media file {name!r} is missing"
            )
            if problem is not None:
                if skipped is None:
                    raise InputError(f"{label}: {problem}; nothing was ingested", where=where)
                skipped.append((int(number) if isinstance(number, int) else 0, f"{label}: {problem}; left out"))
                break
            media.append(path)
        else:
            found.append(_message(message, number, label, body, media, chat_id, chat_name))
    if not found:
        raise InputError("holds no messages", where=where)
    return found, tuple(warnings)


def _message(
    message: dict[str, Any], number: Any, label: str, body: str, media: list[Path], chat_id: str, chat_name: str | None
) -> TelegramMessage:
    """One message as a report, with its media files."""
    author = message.get("from") if isinstance(message.get("from"), str) else chat_name
    report = model.Report(
        id=model.new_id(),
        source=model.Source(
            platform="Telegram",
            feed_name=chat_name,
            account_id=message.get("from_id") if isinstance(message.get("from_id"), str) else None,
        ),
        text=body,
        author=author,
        published_at=_time(message),
        post_id=str(number),
        url=None,
        url_known=False,
        mentions=mentions(body),
        hashtags=hashtags(body),
        repost=model.Repost(reposted_by=chat_name or chat_id, original_author=message["forwarded_from"])
        if isinstance(message.get("forwarded_from"), str) and message["forwarded_from"]
        else None,
        identity=report_identity(platform="telegram", post_id=f"{chat_id}/{number}", feed=None, author=None, text=body),
    )
    title = body.split("\n", 1)[0] or f"{chat_name or 'Telegram'} {label}"
    return TelegramMessage(report=report, title=title, where=f"Telegram export {label}", media=tuple(media))
