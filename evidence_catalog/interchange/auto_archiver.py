"""Reading what bellingcat's auto-archiver leaves behind: its ``csv_db`` database and the files
its ``local_storage`` wrote beside it.  Pure, but for reading the CSV and the one HTML report a
version is read from: nothing here stores or writes.

auto-archiver (1.2.9 read here) appends one row per URL to its CSV with ``csv.DictWriter``: the
columns ``status``, ``metadata`` and ``media``, the last two the Python ``repr()`` of its
``Metadata`` dataclass's fields -- dicts and lists holding ``datetime.datetime(...)`` calls.  They
are read with :func:`literal`, a walk of Python's syntax tree that builds only the few values
auto-archiver writes: nothing in a cell is ever evaluated.  Each media entry names its file by
``_key`` (``./local_archive/<url slug>/<hash>.<ext>``, relative to the folder auto-archiver ran
in, where ``db.csv`` is), its role by ``properties.id`` (``screenshot``, ``pdf``,
``html_source_code``, ``timestamped_hashes`` ...), the hash its ``hash_enricher`` made by
``properties.hash`` (``SHA-256:<64 hex>``, or ``SHA3-512:<128 hex>``), and nests further media
under other properties (``thumbnails``, ``timestamp_authority_files`` -> ``cert_chain``).

A row's RFC 3161 time-stamp tokens are checked against the hashes file they stamp, and that
file against the hashes the row asserts (:func:`token_problem`, :func:`hashes_problem`): a file
changed and its hash in the CSV changed with it is caught there, unless the forger also had a
new token made -- at a later time, which is caught too, or by a TSA of their own, which is not:
the tokens' signatures and certificates are not checked (``openssl ts -verify`` with the TSA's
CA does that).

Everything wrong with a row is a :class:`Finding` that names the row, the field and why; the
caller decides whether the row is refused alone (``keep_going``) or the whole input.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from evidence_catalog import model
from evidence_catalog.errors import InputError
from evidence_catalog.values import is_text

TOOL = "auto-archiver"
#: The columns auto-archiver's csv_db writes (the fields of its ``Metadata`` dataclass).
COLUMNS = ("status", "metadata", "media")
#: What a cell of auto-archiver's never begins with, but a spreadsheet formula does.
FORMULA_STARTS = ("=", "+", "-", "@")
#: The algorithms auto-archiver's hash_enricher writes, by the prefix it gives them, with the
#: ``hashlib`` name and the hex digits of each.
HASH_PREFIXES: Mapping[str, tuple[str, int]] = {"SHA-256": ("sha256", 64), "SHA3-512": ("sha3_512", 128)}
#: auto-archiver's roles (``properties.id``) and what each is to a record here; media without an
#: id (the images and videos it downloaded) are originals.
ROLES: Mapping[str, model.ArtifactRole] = {
    "screenshot": model.ArtifactRole.SCREENSHOT,
    "pdf": model.ArtifactRole.PAGE_PRINT,
    "html_source_code": model.ArtifactRole.RENDERED_PAGE,  # antibot's sb.get_page_source(): the DOM
    "browsertrix": model.ArtifactRole.WEB_ARCHIVE,  # the WACZ of its wacz_extractor_enricher
    "ssl_certificate": model.ArtifactRole.SOURCE_DOCUMENT,
    "cover": model.ArtifactRole.THUMBNAIL,  # generic_extractor's download of yt-dlp's thumbnail
    "metadata_json": model.ArtifactRole.PLATFORM_METADATA,
    "_final_media": model.ArtifactRole.SOURCE_DOCUMENT,
    "timestamped_hashes": model.ArtifactRole.SOURCE_DOCUMENT,
}
#: Roles auto-archiver numbers (``thumbnail_3``, ``browsertrix-screenshot-2``), by their prefix.
PREFIXED_ROLES: tuple[tuple[str, model.ArtifactRole], ...] = (
    ("thumbnail", model.ArtifactRole.THUMBNAIL),
    ("browsertrix-screenshot-", model.ArtifactRole.SCREENSHOT),
)
#: Properties under which auto-archiver nests media, and the role of what is nested there (media
#: nested under any other property are originals: an Instagram carousel's "other media").
NESTED: Mapping[str, model.ArtifactRole] = {
    "thumbnails": model.ArtifactRole.THUMBNAIL,
    "timestamp_authority_files": model.ArtifactRole.SOURCE_DOCUMENT,
    "cert_chain": model.ArtifactRole.SOURCE_DOCUMENT,
    "opentimestamp_files": model.ArtifactRole.SOURCE_DOCUMENT,  # OpenTimestamps proofs (.ots)
}
#: The largest cell read (a row of a few thousand media is far less).
MAX_CELL = 16 * 1024 * 1024
#: Where auto-archiver's html_formatter writes its version (``Made with ... v1.2.9``).
VERSION_MARK = re.compile(rb"bellingcat/auto-archiver</a>\s*v([0-9][0-9A-Za-z.+-]{0,40})\s*</p>")
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


@attrs.frozen
class Finding:
    """Something wrong with one row (``row`` as a spreadsheet numbers it: the header is row 1)
    or with the whole input (``row`` ``None``): the *field* it is in, and why."""

    row: int | None
    field: str
    message: str

    def __str__(self) -> str:
        return f"{'input' if self.row is None else f'row {self.row}'}: {self.field}: {self.message}"


@attrs.frozen
class Media:
    """One media entry of a row, as auto-archiver wrote it."""

    #: Where in the row's ``media`` cell it is (``media[3]``, ``media[0].thumbnails[1]``).
    pointer: str
    #: Its file, as auto-archiver named it (``_key``, else its first URL); ``None`` when it names none.
    key: str | None
    #: auto-archiver's role of it (``properties.id``), if any.
    aa_id: str | None
    #: The role it has on the record: its own, or that of the property it is nested under.
    role: model.ArtifactRole
    mimetype: str | None
    #: auto-archiver's hash of it, verbatim (``SHA-256:...``), if it made one.
    asserted: str | None


@attrs.frozen
class Row:
    """One archived URL as auto-archiver's CSV holds it."""

    number: int
    status: str
    url: str
    title: str | None
    #: When auto-archiver began the item (``_processed_at``), and how long it took, if it says.
    processed_at: dt.datetime
    duration_s: float | None
    #: The time the platform gave the item (``timestamp``), when it gave one with its zone.
    platform_at: dt.datetime | None
    #: That time as the CSV gives it without a zone (``tzinfo=tzlocal()``: the zone of the machine
    #: auto-archiver ran on), to be placed by its ``metadata_json`` (:func:`zoned_timestamp`).
    platform_local: dt.datetime | None
    media: tuple[Media, ...]
    #: The three cells, verbatim.
    cells: tuple[str, str, str]


class _UnreadableError(ValueError):
    """A cell holds something other than the values auto-archiver writes."""


def _tzlocal() -> None:
    """``tzlocal()``: the zone of the machine auto-archiver ran on, which the CSV does not say."""
    return None


def _tzoffset(name: object, offset: object) -> dt.timezone:
    """``tzoffset(name, seconds)``: what dateutil's parser (auto-archiver's ``set_timestamp``)
    gives a time written with its UTC offset (``+01:00``)."""
    if isinstance(offset, dt.timedelta):
        offset = offset.total_seconds()
    if isinstance(offset, bool) or not isinstance(offset, int | float):
        raise TypeError("its offset is no number of seconds")
    return dt.timezone(dt.timedelta(seconds=offset))


_CALLS: Mapping[str, Any] = {
    "datetime.datetime": dt.datetime,
    "datetime.timedelta": dt.timedelta,
    "datetime.timezone": dt.timezone,
    "tzlocal": _tzlocal,
    "tzutc": lambda: dt.UTC,
    "tzoffset": _tzoffset,
}


def literal(text: str) -> Any:
    """The value of a cell auto-archiver wrote with ``repr()``: text, numbers, ``True``/``False``/
    ``None``, lists, tuples, dicts, ``datetime.datetime(...)`` (with ``datetime.timezone.utc``, a
    fixed offset (``tzoffset(...)`` too), or ``tzlocal()``, read as no zone) -- built from the syntax tree, never
    evaluated.  :class:`ValueError` for anything else."""
    if len(text) > MAX_CELL:
        raise _UnreadableError(f"is longer than {MAX_CELL} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise _UnreadableError(f"is not a Python literal as auto-archiver writes them ({_why(exc)})") from None
    try:
        return _value(tree.body)
    except RecursionError:
        raise _UnreadableError("is nested too deeply") from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"{exc.msg}, column {exc.offset}" if exc.offset else str(exc.msg)
    return type(exc).__name__


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float | bool | type(None)):
        if isinstance(node.value, str) and not is_text(node.value):
            raise _UnreadableError(f"holds text with a lone surrogate ({node.value[:60]!r}), which is no Unicode text")
        if isinstance(node.value, str) and "\x00" in node.value:  # PostgreSQL text cannot hold it
            raise _UnreadableError(f"holds a NUL character ({node.value[:60]!r}), which no catalog field can hold")
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        return [_value(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise _UnreadableError("holds a ** expansion")
        keys = [_value(k) for k in node.keys if k is not None]
        if not all(isinstance(k, str | int | float | bool | type(None)) for k in keys):
            raise _UnreadableError("has a dict key that is not a plain value")
        return dict(zip(keys, (_value(v) for v in node.values), strict=True))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _value(node.operand)
        if isinstance(operand, bool) or not isinstance(operand, int | float):
            raise _UnreadableError("has a sign before something that is no number")
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Attribute) and _dotted(node) == "datetime.timezone.utc":
        return dt.UTC
    if isinstance(node, ast.Call):
        name = _dotted(node.func)
        if name is not None and name in _CALLS:
            args = [_value(a) for a in node.args]
            kwargs = {k.arg: _value(k.value) for k in node.keywords if k.arg is not None}
            if len(kwargs) != len(node.keywords):
                raise _UnreadableError("holds a ** expansion")
            try:
                return _CALLS[name](*args, **kwargs)
            except (TypeError, ValueError, OverflowError) as exc:
                raise _UnreadableError(f"holds {name}(...) that cannot be made ({exc})") from None
        raise _UnreadableError(f"calls {(name or 'something')[:60]}(...), which auto-archiver never writes")
    raise _UnreadableError(
        f"holds {type(node).__name__.lower()} {ast.unparse(node)[:60]!r}, which auto-archiver never writes"
    )


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def parse_hash(text: object) -> tuple[str, str]:
    """``(hashlib algorithm, hex)`` of a hash as auto-archiver writes it (``SHA-256:<64 hex>``);
    :class:`ValueError` saying what is wrong: another prefix, hex that is not lower case, or the
    wrong number of digits (a hex number written without its leading zeros is short)."""
    if not isinstance(text, str):
        raise ValueError(f"is {type(text).__name__}, not text")
    prefix, colon, digits = text.partition(":")
    if not colon:
        raise ValueError(f"{text[:80]!r} has no algorithm prefix (auto-archiver writes SHA-256:<hex>)")
    if prefix not in HASH_PREFIXES:
        raise ValueError(
            f"algorithm prefix {prefix[:40]!r} is not one auto-archiver writes ({' or '.join(HASH_PREFIXES)})"
        )
    algorithm, length = HASH_PREFIXES[prefix]
    if not re.fullmatch(r"[0-9a-f]*", digits):
        raise ValueError(f"{prefix} value {digits[:80]!r} is not lower-case hex")
    if len(digits) != length:
        hint = " (a hex number written without its leading zeros?)" if len(digits) < length else ""
        raise ValueError(f"{prefix} value has {len(digits)} hex digits, not {length}{hint}")
    return algorithm, digits


def format_hash(algorithm: str, digest: str) -> str:
    """A hash as auto-archiver writes it: ``format_hash("sha256", hex)`` is ``SHA-256:<hex>``."""
    prefix = next(p for p, (name, _) in HASH_PREFIXES.items() if name == algorithm)
    return f"{prefix}:{digest}"


def url_problem(url: object) -> str | None:
    """Why *url* is not the URL of something archived from the web (``None`` when it is): not
    text, empty, holding spaces or control characters, not http(s), or without a host."""
    if not isinstance(url, str):
        return f"is {type(url).__name__}, not a URL"
    if not url:
        return "is empty"
    if _CONTROL.search(url):
        return f"{url[:80]!r} holds spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- a port that is no number raises
    except ValueError as exc:
        return f"{url[:80]!r} is not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        what = f"a {parts.scheme}: URL" if parts.scheme else "not an absolute URL"
        return f"{url[:80]!r} is {what}, not http(s)"
    if not parts.hostname:
        return f"{url[:80]!r} names no host"
    return None


def key_problem(key: str) -> str | None:
    """Why the file name *key* (``_key``) is not a path inside auto-archiver's folder."""
    if not key:
        return "is empty"
    if "\x00" in key:
        return "holds a NUL character"
    if "://" in key:
        return f"{key[:80]!r} is stored elsewhere (a URL), not in this folder"
    if key.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", key):
        return f"{key[:80]!r} is an absolute path (only paths inside the folder are read)"
    if ".." in re.split(r"[/\\]", key):
        return f"{key[:80]!r} leaves the folder (..)"
    return None


def resolve(folder: Path, key: str) -> Path:
    """The file *key* names in *folder* (the folder of the CSV); :class:`ValueError` when it is
    not a path inside it (see :func:`key_problem`), leads out of it through a symbolic link, or
    is not a regular file."""
    problem = key_problem(key)
    if problem is not None:
        raise ValueError(problem)
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, key))
    if os.path.commonpath([root, path]) != root:
        raise ValueError(f"{key[:80]!r} leads out of the folder through a symbolic link")
    if not os.path.lexists(path):
        raise ValueError(f"{key[:80]!r}: no such file")
    if not os.path.isfile(path):
        raise ValueError(f"{key[:80]!r} is not a regular file")
    return Path(path)


def database_of(source: Path) -> Path:
    """The CSV database of *source*: itself, or ``db.csv`` in the folder given."""
    if source.is_dir():
        found = source / "db.csv"
        if not found.is_file():
            raise InputError(
                "holds no db.csv (give the CSV file auto-archiver's csv_db wrote, in the folder it ran in)",
                where=str(source),
            )
        return found
    if not source.is_file():
        raise InputError("no such file or folder", where=str(source))
    return source


def read_rows(database: Path) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """``(row number, cells, None)`` for each row of the CSV after its header (checked to be
    auto-archiver's), or ``(row number, None, why)`` where the CSV itself cannot be read on."""
    try:
        # A byte order mark is what a spreadsheet program saving "CSV UTF-8" puts first: read past it.
        text = database.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"is not UTF-8 text (byte {exc.start}); auto-archiver writes UTF-8", where=str(database)
        ) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", where=str(database)) from None
    if csv.field_size_limit() < MAX_CELL:
        csv.field_size_limit(MAX_CELL)
    reader = csv.reader(text.splitlines(keepends=True) if "\r" in text else text.split("\n"))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"is not CSV ({exc})", where=str(database)) from None
    if header is None or [h.strip() for h in header][:3] != list(COLUMNS):
        raise InputError(
            "is not an auto-archiver database: its header is not status,metadata,media", where=str(database)
        )
    number = 1
    while True:
        number += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield number, None, f"cannot be read as CSV ({exc}); the rows after it are not read"
            return
        if cells:
            yield number, cells, None
        else:
            number -= 1  # a blank line (the file's last newline) is no row


def parse_row(number: int, cells: Sequence[str]) -> tuple[Row | None, list[Finding]]:
    """The row, or ``None`` and what is wrong with it: a formula cell, a wrong number of cells, a
    cell that is not what auto-archiver writes, a status that is not a success, a URL that is
    not one, a missing or unreadable time, a hash in another form."""
    findings: list[Finding] = []

    def bad(field: str, message: str) -> tuple[None, list[Finding]]:
        findings.append(Finding(number, field, message))
        return None, findings

    for name, cell in zip(COLUMNS, cells, strict=False):
        if cell.startswith(FORMULA_STARTS):
            findings.append(
                Finding(
                    number, name, f"begins with {cell[0]!r}: a spreadsheet formula, which auto-archiver never writes"
                )
            )
    if findings:
        return None, findings
    if len(cells) != len(COLUMNS):
        return bad("row", f"has {len(cells)} cell(s), not the 3 auto-archiver writes (status, metadata, media)")
    status, metadata_text, media_text = cells
    values: list[Any] = []
    for name, cell, kind in (("metadata", metadata_text, dict), ("media", media_text, list)):
        try:
            value = literal(cell)
        except _UnreadableError as exc:
            return bad(name, str(exc))
        if not isinstance(value, kind):
            return bad(name, f"is {type(value).__name__}, not the {kind.__name__} auto-archiver writes")
        values.append(value)
    metadata, media_list = values
    if not ("success" in status or status == "antibot"):
        return bad("status", f"{status[:80]!r}: auto-archiver did not archive this URL (its status is no success)")
    url = metadata.get("url")
    problem = url_problem(url)
    if problem is not None or not isinstance(url, str):
        return bad("metadata.url", problem or "is not text")
    processed = metadata.get("_processed_at")
    if not isinstance(processed, dt.datetime) or processed.tzinfo is None:
        return bad("metadata._processed_at", "is not a time with its zone (auto-archiver writes one in UTC)")
    processed = _utc(processed)
    if processed is None:
        return bad("metadata._processed_at", "is a time out of range (in UTC, before year 1 or after 9999)")
    title = metadata.get("title")
    if title is not None and not isinstance(title, str):
        return bad("metadata.title", f"is {type(title).__name__}, not text")
    duration = metadata.get("archive_duration_seconds")
    if isinstance(duration, bool) or not isinstance(duration, int | float) or not 0 <= duration <= 10**7:
        duration = None
    elif _utc(processed, dt.timedelta(seconds=duration)) is None:
        return bad("metadata.archive_duration_seconds", "ends after the year 9999")
    platform = metadata.get("timestamp")
    local = platform if isinstance(platform, dt.datetime) and platform.tzinfo is None else None
    if not isinstance(platform, dt.datetime) or platform.tzinfo is None:
        platform = None  # kept verbatim in the row's cells; a time without a zone is no time
    elif (platform := _utc(platform)) is None:
        return bad("metadata.timestamp", "is a time out of range (in UTC, before year 1 or after 9999)")
    media: list[Media] = []
    for index, entry in enumerate(media_list):
        _walk(number, f"media[{index}]", entry, None, media, findings)
    if findings:
        return None, findings
    if not media:
        return bad("media", "names no file: nothing was archived to import")
    row = Row(
        number=number,
        status=status,
        url=url,
        title=title if title else None,
        processed_at=processed,
        duration_s=None if duration is None else float(duration),
        platform_at=platform,
        platform_local=local,
        media=tuple(media),
        cells=(status, metadata_text, media_text),
    )
    return row, findings


def _utc(when: dt.datetime, later: dt.timedelta = dt.timedelta(0)) -> dt.datetime | None:
    """*when* (plus *later*) in UTC; ``None`` when that is out of :mod:`datetime`'s range."""
    try:
        return when.astimezone(dt.UTC) + later
    except OverflowError:
        return None


def _walk(
    number: int,
    pointer: str,
    entry: object,
    nested_role: model.ArtifactRole | None,
    found: list[Media],
    findings: list[Finding],
) -> None:
    """Add the media entry at *pointer* and those nested in its properties to *found*."""
    if not isinstance(entry, dict):
        findings.append(Finding(number, pointer, f"is {type(entry).__name__}, not a media entry"))
        return
    properties = entry.get("properties") or {}
    if not isinstance(properties, dict):
        findings.append(Finding(number, f"{pointer}.properties", "is not a dict"))
        return
    key = entry.get("_key")
    urls = entry.get("urls")
    if not key and isinstance(urls, list) and urls and isinstance(urls[0], str):
        key = urls[0]
    if not isinstance(key, str) or not key:
        findings.append(Finding(number, f"{pointer}._key", "names no stored file"))
        key = None
    elif (problem := key_problem(key)) is not None:
        findings.append(Finding(number, f"{pointer}._key", problem))
    aa_id = properties.get("id")
    aa_id = aa_id if isinstance(aa_id, str) else None
    asserted = properties.get("hash")
    if asserted is not None:
        try:
            parse_hash(asserted)
        except ValueError as exc:
            findings.append(Finding(number, f"{pointer}.properties.hash", str(exc)))
    mimetype = entry.get("_mimetype")
    role = nested_role or model.ArtifactRole.ORIGINAL
    if aa_id is not None:
        role = ROLES.get(aa_id, next((r for prefix, r in PREFIXED_ROLES if aa_id.startswith(prefix)), role))
    found.append(
        Media(
            pointer=pointer,
            key=key,
            aa_id=aa_id,
            role=role,
            mimetype=mimetype if isinstance(mimetype, str) else None,
            asserted=asserted if isinstance(asserted, str) else None,
        )
    )
    # As auto-archiver's own Media.all_inner_media: any property holding a media entry, or a list
    # of them, nests media that its storage stored too (thumbnails, time-stamp tokens, an
    # Instagram carousel's "other media", OpenTimestamps proofs ...).
    for name, value in properties.items():
        children = value if isinstance(value, list) else [value]
        if children and all(_is_media_entry(child) for child in children):
            role = NESTED.get(name, model.ArtifactRole.ORIGINAL)
            for index, child in enumerate(children):
                inner = f"{pointer}.{name}[{index}]" if isinstance(value, list) else f"{pointer}.{name}"
                _walk(number, inner, child, role, found, findings)


def _is_media_entry(value: object) -> bool:
    """Whether *value* is a media entry as auto-archiver writes one (``Media`` as a dict)."""
    return isinstance(value, dict) and "properties" in value and ("_key" in value or "urls" in value)


#: The largest metadata_json document read for a time's zone.
MAX_METADATA_JSON = 16 * 1024 * 1024
#: How much of its HTML report is searched for auto-archiver's version.
REPORT_HEAD = 4 * 1024 * 1024


def zoned_timestamp(data: bytes, local: dt.datetime) -> dt.datetime | None:
    """The platform time *local* (as the CSV gives it, without its zone) in UTC, as the row's
    ``metadata_json`` document (its bytes *data*, the first :data:`MAX_METADATA_JSON` and one)
    states it: auto-archiver's json_enricher writes the same time with the offset it had on the
    machine it ran on (``"2026-12-05 19:34:24+00:00"``).  ``None`` unless that document gives
    this very wall-clock time with an offset."""
    try:
        document = json.loads(data) if len(data) <= MAX_METADATA_JSON else None
    except (ValueError, RecursionError):
        return None
    metadata = document.get("metadata") if isinstance(document, dict) else None
    text = metadata.get("timestamp") if isinstance(metadata, dict) else None
    try:
        stated = dt.datetime.fromisoformat(text) if isinstance(text, str) and len(text) <= 64 else None
    except ValueError:
        return None
    if stated is None or stated.tzinfo is None or stated.replace(tzinfo=None) != local:
        return None
    return _utc(stated)


def read_version(head: bytes) -> str | None:
    """The version auto-archiver's html_formatter wrote into its report, from the report's
    first :data:`REPORT_HEAD` bytes *head* (``None`` when it names none)."""
    found = VERSION_MARK.findall(head)
    return found[-1].decode("ascii") if found else None


#: The largest hashes file or timestamp token read (auto-archiver's are a few KiB).
MAX_STAMPED = 1024 * 1024
#: How far a token's time may lie outside the item's archiving (clocks of the TSA and of the
#: machine auto-archiver ran on disagree): a token made a day later stamps other bytes' making.
STAMP_SLACK = dt.timedelta(days=1)
_TOKEN = re.compile(r"(media\[\d+\])\.timestamp_authority_files\[\d+\]")
_DIGESTS = {"sha256": "sha256", "sha512": "sha512", "sha384": "sha384", "sha3_512": "sha3_512"}


def stamped_parent(media: Media) -> str | None:
    """The pointer of the hashes file a timestamp token of auto-archiver's stamps (it nests the
    token under that file's ``timestamp_authority_files``); ``None`` for other media."""
    found = _TOKEN.fullmatch(media.pointer)
    return found.group(1) if found else None


def hashes_problem(row: Row, hashes: Media, text: bytes) -> str | None:
    """Why *text*, the ``timestamped_hashes`` file of *row*, is not what auto-archiver's
    timestamping_enricher writes: the hashes it asserted of the row's media listed before it,
    one a line (``None`` when it is).  Compared as sets: auto-archiver drops media it holds
    twice after it has listed them."""
    index = int(hashes.pointer.removeprefix("media[").rstrip("]"))
    expected = {
        parse_hash(m.asserted)[1]
        for m in row.media
        if m.asserted and re.fullmatch(r"media\[(\d+)\]", m.pointer) and int(m.pointer[6:-1]) < index
    }
    if len(text) > MAX_STAMPED:
        return f"is {len(text)} bytes, far more than the hashes auto-archiver lists"
    if set(text.decode("ascii", "replace").split("\n")) != expected:
        return (
            "does not list the hashes the row asserts of its media, one a line: "
            "the row or this file was changed after auto-archiver wrote them"
        )
    return None


def token_problem(row: Row, token: bytes, stamped: bytes) -> str | None:
    """Why *token*, an RFC 3161 time-stamp token of auto-archiver's, does not stamp *stamped*
    (the hashes file it is nested under) while *row* was archived (``None`` when it does).
    Its signature and the TSA's certificate are not checked here (``openssl ts -verify`` does,
    given the TSA's CA); what is checked is that it names these bytes and this time."""
    from asn1crypto import cms, tsp

    if len(token) > MAX_STAMPED:
        return f"is {len(token)} bytes, not a time-stamp token"
    try:
        content = cms.ContentInfo.load(token)
        encap = content["content"]["encap_content_info"]
        if content["content_type"].native != "signed_data" or encap["content_type"].native != "tst_info":
            return "is not an RFC 3161 time-stamp token (no TSTInfo)"
        info = tsp.TSTInfo.load(bytes(encap["content"].contents))
        algorithm = info["message_imprint"]["hash_algorithm"]["algorithm"].native
        imprint = bytes(info["message_imprint"]["hashed_message"].native)
        when = info["gen_time"].native
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        return f"is not an RFC 3161 time-stamp token ({str(exc)[:80]})"
    if algorithm not in _DIGESTS:
        return f"stamps a {str(algorithm)[:40]} digest, which is not read here"
    if hashlib.new(_DIGESTS[algorithm], stamped).digest() != imprint:
        return "does not stamp the hashes file it comes with: one of them was changed after the time-stamp"
    ended = row.processed_at + dt.timedelta(seconds=row.duration_s or 0)
    if (
        not isinstance(when, dt.datetime)
        or when.tzinfo is None
        or not (row.processed_at - STAMP_SLACK <= when <= ended + STAMP_SLACK)
    ):
        return f"was made at {when}, not while the row was archived ({row.processed_at:%Y-%m-%d %H:%M:%S} UTC)"
    return None
