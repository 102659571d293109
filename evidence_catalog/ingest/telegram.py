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
from evidence_catalog.ingest.checks import JSONLimitError, may_hold_non_text, read_json, shown, text_problem
from evidence_catalog.ingest.digest import hashtags, mentions, report_identity
from evidence_catalog.serialize import unstructure


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
    if isinstance(value, list):  # only text is joined: never the printed form of other values
        return "".join(
            part if isinstance(part, str) else part["text"]
            for part in value
            if isinstance(part, str) or (isinstance(part, dict) and isinstance(part.get("text"), str))
        )
    return ""


def _time(message: dict[str, Any]) -> dt.datetime | None:
    unix = message.get("date_unixtime")
    if isinstance(unix, str) and unix.isascii() and unix.isdigit() and len(unix) <= 12:
        try:
            return dt.datetime.fromtimestamp(int(unix), dt.UTC)
        except (OverflowError, OSError, ValueError):  # past year 9999: not a time
            return None
    return None  # "date" alone is the exporting computer's local time, zone unknown: not guessed


def parse_telegram(
    text: str, *, export_dir: Path, where: str, skipped: list[tuple[int, str]] | None = None
) -> tuple[list[TelegramMessage], tuple[tuple[int, str], ...]]:
    """The messages of a channel export and the warnings met; :class:`InputError` for an export
    that cannot be ingested whole.  A message whose media file is missing or outside the export
    folder is an error too, or, when a *skipped* list is given (``--keep-going``), is left out
    whole (its text too, so that ingesting the mended export later adds it) and named there."""
    try:
        export = read_json(text)
    except JSONLimitError as exc:
        raise InputError(f"cannot be read: {exc}; nothing was ingested", where=where) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"is not JSON (line {exc.lineno}: {exc.msg})", where=where) from exc
    if not isinstance(export, dict) or not isinstance(export.get("messages"), list):
        raise InputError("is not a Telegram Desktop export (no 'messages' list)", where=where)
    chat_id = _id(export.get("id")) or "unknown"
    chat_name = _name(export.get("name"))
    root = export_dir.resolve()
    found: list[TelegramMessage] = []
    warnings: list[tuple[int, str]] = []
    check = may_hold_non_text(text)
    for message in export["messages"]:
        if not isinstance(message, dict) or message.get("type") != "message":
            continue  # service messages (joins, pins) state nothing
        number = message.get("id")
        if _id(number) is None:  # a list or an object is no message id
            kind = {list: "a list", dict: "an object", bool: "true or false", str: "blank", float: "a fraction"}.get(
                type(number)
            )
            reason = "a message has no id" if number is None else f"a message's id is not a number or text ({kind})"
            if skipped is None:
                raise InputError(f"{reason}; nothing was ingested", where=where)
            skipped.append((0, f"{reason}; left out"))
            continue
        label = f"message {shown(str(number))}"
        # Where a warning or a left-out message is listed (and logged): its id, if a number
        # JSON carries exactly.
        line = number if isinstance(number, int) and not isinstance(number, bool) and 0 <= number < 2**53 else 0
        body = _text(message.get("text"))
        media: list[Path] = []
        for key in ("photo", "file"):
            name = message.get(key)
            if not isinstance(name, str) or not name:
                continue
            if name.startswith("(File not included"):
                warnings.append((line, f"{label}: its {key} was not exported"))
                continue
            path, problem = _media_file(name, export_dir, root)
            if path is None:
                if skipped is None:
                    raise InputError(f"{label}: {problem}; nothing was ingested", where=where)
                skipped.append((line, f"{label}: {problem}; left out"))
                break
            media.append(path)
        else:
            item = _message(message, number, label, body, media, chat_id, chat_name)
            not_text = text_problem(unstructure(item.report)) if check else None
            if not_text is not None:
                if skipped is None:
                    raise InputError(f"{label}: its {not_text}; nothing was ingested", where=where)
                skipped.append((line, f"{label}: its {not_text}; left out"))
                continue
            found.append(item)
    if not found:
        raise InputError("holds no messages", where=where)
    return found, tuple(warnings)


def _media_file(name: str, export_dir: Path, root: Path) -> tuple[Path | None, str]:
    """The file a media path of the export names (resolved), or ``None`` and why it cannot be
    stored: a name that is not text (a lone surrogate, a NUL), one that leaves the export
    folder, a file that is missing."""
    shown_name = shown(name)
    if text_problem(name) is not None:
        return None, f"media path {shown_name!r} is not a valid file name"
    try:
        path = (export_dir / name).resolve()
    except (OSError, ValueError) as exc:  # a name too long, a loop of links
        return None, f"media path {shown_name!r} cannot be opened ({exc})"
    if os.path.isabs(name) or not path.is_relative_to(root):
        return None, f"media path {shown_name!r} leaves the export folder"
    try:
        return (path, "") if path.is_file() else (None, f"media file {shown_name!r} is missing")
    except OSError as exc:
        return None, f"media file {shown_name!r} cannot be opened ({exc.strerror or exc})"


def _id(value: Any) -> str | None:
    """An id of the export as text: a whole number or non-blank text, else ``None``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value.strip() else None


def _name(value: Any) -> str | None:
    """A name of the export: non-blank text, else ``None``."""
    return value if isinstance(value, str) and value.strip() else None


def _message(
    message: dict[str, Any], number: Any, label: str, body: str, media: list[Path], chat_id: str, chat_name: str | None
) -> TelegramMessage:
    """One message as a report, with its media files."""
    author = _name(message.get("from")) or chat_name
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
        if _name(message.get("forwarded_from"))
        else None,
        identity=report_identity(platform="telegram", post_id=f"{chat_id}/{number}", feed=None, author=None, text=body),
    )
    title = body.split("\n", 1)[0] or f"{chat_name or 'Telegram'} {label}"
    return TelegramMessage(report=report, title=title, where=f"Telegram export {label}", media=tuple(media))
