"""A WARC packaged as a WACZ (Web Archive Collection Zipped, version 1.1.1), the file
ReplayWeb.page opens and pywb and other web archives import.

The index (``indexes/index.cdx.gz``, CDXJ in gzip blocks, and its ``indexes/index.idx``) is made
by py-wacz's own indexer (``wacz.waczindexer.WACZIndexer``, as ``wacz create`` makes it); the
rest is written here rather than by ``wacz create`` because that command stamps every zip
entry and the ``created`` field with the current time and names pages by random ids.  Here:

* the pages list (``pages/pages.jsonl``) is given, not guessed: the captured page is the entry
  point, its ``ts`` the time it was fetched;
* zip entries are in a fixed order (``datapackage.json`` first, stored uncompressed, so that the
  file is known for a WACZ by its first bytes; then the others by name), each dated *created*
  (the capture's start), with fixed permissions; ``created`` in ``datapackage.json`` is that
  time too.  The same WARC, pages and times make the same bytes.  What differs between two
  captures of the same thing is in the WARC: record ids (random UUIDs) and dates;
* ``datapackage.json`` says what was withheld from the WARC (``withheld``, also in its
  ``description``), and names the software.

``wacz validate`` accepts the result (tested).
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from attrs import frozen

__all__ = ["MEDIA_TYPE", "WACZ_VERSION", "Page", "contents", "package"]

#: The media type of a WACZ file.
MEDIA_TYPE = "application/wacz"
#: The version of the WACZ specification written.
WACZ_VERSION = "1.1.1"
#: Where the WARC goes in the zip.
ARCHIVE_DIR = "archive/"
_BLOCK = 1024 * 1024
#: Index lines per gzip block of ``index.cdx.gz`` (``wacz create``'s, ArchiveWeb.page's).
INDEX_BLOCK_LINES = 1024


@frozen
class Page:
    """An entry of the WACZ's pages list: a page a person opens the archive at."""

    id: str
    url: str
    #: When it was fetched: its response record's ``WARC-Date``.
    ts: str
    title: str


def _hash_file(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as stream:
        while block := stream.read(_BLOCK):
            hasher.update(block)
            size += len(block)
    return f"sha256:{hasher.hexdigest()}", size


def _resource(path: str, digest: str, size: int) -> dict[str, object]:
    return {"name": os.path.basename(path).lower(), "path": path, "hash": digest, "bytes": size}


#: Records whose bodies the indexer never reads (its page and text detection are off): it is
#: told they are empty rather than copying each to a temporary file (a media response is most
#: of a WARC).  Request bodies (for POST lookups) and ``warcinfo`` are still read (a brotli-encoded
#: request body decoded here: warcio's brotli decoder fails, see :class:`_Brotli`).
_BODIES_UNREAD = frozenset({"response", "resource", "revisit"})


class _BodiesUnread:
    """warcio's record iterator over a WARC, each response's body shown empty to the indexer.

    Only what the indexer reads through ``content_stream()`` changes: each record's offset,
    length and ``recordDigest`` come from the file as it is (the iterator still reads every
    byte to find the next record), and its status, media type and payload digest from its
    headers.  ``tests/test_web_archive.py`` holds the index equal to py-wacz's own."""

    def __init__(self, records: Any) -> None:
        self._records = records

    def __iter__(self) -> Iterator[Any]:
        for record in self._records:
            if record.rec_type in _BODIES_UNREAD:
                record.content_stream = _empty_stream
            elif _brotli_encoded(record, strip=False):
                record.content_stream = functools.partial(_request_body, record)
            yield record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)


def _empty_stream() -> IO[bytes]:
    return io.BytesIO()


def _brotli_encoded(record: Any, *, strip: bool) -> bool:
    """Whether *record*'s body is in ``Content-Encoding: br`` that :class:`_Brotli` decodes
    (warcio's test of the header, or with *strip* the one of :func:`contents`)."""
    if record.http_headers is None:
        return False
    encoding = (record.http_headers.get_header("Content-Encoding") or "").lower()
    return (encoding.strip() if strip else encoding) == "br" and _Brotli.usable()


def _dechunked(record: Any) -> IO[bytes]:
    """*record*'s body with its HTTP chunks joined (warcio's test of ``Transfer-Encoding``)."""
    if record.http_headers.get_header("Transfer-Encoding") == "chunked":
        from warcio.bufferedreaders import ChunkedDataReader

        return ChunkedDataReader(record.raw_stream)  # type: ignore[no-any-return]
    return record.raw_stream  # type: ignore[no-any-return]


def _request_body(record: Any) -> IO[bytes]:
    """A brotli-encoded request body, decoded, as far as the indexer reads it: its announced
    length (else 8192 bytes), where its POST lookup key comes from; what is not brotli is
    read as decoded up to there (warcio gives up on a body it fails on half-way too)."""
    length = (record.http_headers.get_header("Content-Length") or "").strip()
    return io.BufferedReader(_Brotli(_dechunked(record), limit=int(length) if length.isdigit() else 8192, strict=False))


class _Brotli(io.RawIOBase):
    """A brotli-encoded body decoded as it is read, a block at a time: a few hundred bytes of
    brotli can decode to gigabytes.  warcio's own brotli decoder fails with the ``brotli``
    package (it sets an attribute its decompressor does not have); its ``process`` with an
    output limit is used here.  A body that is not brotli raises ``ValueError`` when *strict*,
    else ends there; the decoded body ends after *limit* bytes when given."""

    def __init__(self, raw: IO[bytes], *, limit: int | None = None, strict: bool = True) -> None:
        import brotli

        self._raw = raw
        self._decoder = brotli.Decompressor()
        self._error = brotli.error
        self._left = limit
        self._strict = strict
        self._pending = b""
        self._at = 0

    @staticmethod
    def usable() -> bool:
        """Whether the ``brotli`` package with an output limit is installed."""
        try:
            import brotli
        except ImportError:
            return False
        return hasattr(brotli.Decompressor, "can_accept_more_data")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._at == len(self._pending):
            if self._left == 0 or self._decoder.is_finished():
                return 0
            data = self._raw.read(_BLOCK) if self._decoder.can_accept_more_data() else b""
            if not data and self._decoder.can_accept_more_data():  # cut short: as far as it goes
                return 0
            try:
                self._pending, self._at = self._decoder.process(data, output_buffer_limit=_BLOCK), 0
            except self._error as exc:
                if self._strict:
                    raise ValueError(f"a body that is not brotli, as its Content-Encoding says: {exc}") from exc
                self._left = 0
                return 0
        size = min(len(buffer), len(self._pending) - self._at)
        if self._left is not None:
            size = min(size, self._left)
            self._left -= size
        buffer[:size] = self._pending[self._at : self._at + size]
        self._at += size
        return size


class _Discarded(io.TextIOBase):
    """Text written nowhere."""

    def write(self, text: str) -> int:
        return len(text)


class _QuietSys:
    """What cdxj-indexer's parser of request bodies sees as ``sys`` (the one name it uses it
    for): a body whose Content-Type says JSON but that is not JSON it writes to standard error
    whole -- a form's password, a session token, a user's message, on the terminal of whoever
    captures the page.  The index is the same; the body is in the WARC, where it belongs."""

    stderr = _Discarded()


_QUIET_SYS = _QuietSys()


def _quiet_amf_parse(data: bytes) -> str | None:
    """cdxj-indexer's ``amf_parse`` without its prints: a body labelled AMF that does not decode
    had its traceback written to standard error and the decoder's complaint (quoting the body's
    bytes) to standard output, where a command's JSON goes.  The same query string, or None."""
    from urllib.parse import urlencode

    from cdxj_indexer.amf import Amf
    from pyamf.remoting import decode  # type: ignore[import-untyped]

    try:
        return urlencode({"request": Amf.get_representation(decode(io.BytesIO(data)))})
    except Exception:  # noqa: BLE001  (what cdxj-indexer catches: the body is then not in the query)
        return None


def _lenient(query_extract: Callable[..., Any]) -> Callable[..., Any]:
    """cdxj-indexer's ``query_extract`` that indexes a multipart body it cannot parse as it
    indexes one without a boundary (its bytes, base64-encoded), instead of raising: a page can
    post such a body, and the error failed the whole capture."""
    from multipart import MultipartError  # type: ignore[import-untyped]

    def extract(mime: str | None, length: Any, stream: Any, url: str) -> Any:
        start = stream.tell()
        try:
            return query_extract(mime, length, stream, url)
        except MultipartError:
            stream.seek(start)
            return query_extract("application/octet-stream", length, stream, url)

    return extract


_PATCH_LOCK = threading.Lock()
_patched = False


def _quiet_indexer() -> None:
    """Give cdxj-indexer's parser of request bodies, once per process, a ``sys`` whose standard
    error discards, an AMF parser that prints nothing, and multipart parsing that does not fail
    the index (see :class:`_QuietSys`, :func:`_quiet_amf_parse`, :func:`_lenient`)."""
    global _patched
    from cdxj_indexer import postquery

    with _PATCH_LOCK:
        if not _patched:
            postquery.sys = _QUIET_SYS  # type: ignore[attr-defined]
            postquery.amf_parse = _quiet_amf_parse
            postquery.query_extract = _lenient(postquery.query_extract)
            _patched = True


def _index(warc: Path, cdx: Path, *, read_bodies: bool = False) -> bytes:
    """py-wacz's CDXJ index of *warc*: its gzip blocks written to *cdx*, the ``.idx`` returned.
    The indexer does not copy response bodies, which it never reads, unless *read_bodies*."""
    from wacz.waczindexer import WACZIndexer  # not wacz.main: it loads frictionless, for validation

    _quiet_indexer()

    class Indexer(WACZIndexer):  # type: ignore[misc]
        def _create_record_iter(self, input_: Any) -> Any:
            records = super()._create_record_iter(input_)
            return records if read_bodies else _BodiesUnread(records)

    idx = io.BytesIO()
    text = io.TextIOWrapper(idx, "utf-8", write_through=True)
    with open(cdx, "wb") as data:
        indexer = Indexer(
            text,
            [str(warc)],
            sort=True,
            post_append=True,
            compress=data,
            lines=INDEX_BLOCK_LINES,
            digest_records=True,
            fields="referrer,req.http:cookie",
            data_out_name="index.cdx.gz",
            hash_type="sha256",
            main_url=None,
            detect_pages=False,
            passed_pages_dict={},
            extract_text=False,
        )
        indexer.process_all()
    text.flush()
    return idx.getvalue()


def _pages_jsonl(pages: Sequence[Page]) -> bytes:
    lines = [{"format": "json-pages-1.0", "id": "pages", "title": "Pages"}]
    lines += [{"id": p.id, "url": p.url, "ts": p.ts, "title": p.title} for p in pages]
    return "".join(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n" for line in lines).encode("utf-8")


def package(
    warc: Path,
    out: Path,
    *,
    pages: Sequence[Page],
    created: dt.datetime,
    title: str,
    description: str,
    software: str,
    withheld: str,
    warc_digest: tuple[str, int] | None = None,
) -> None:
    """Write the WACZ *out* (a new file) holding the WARC file *warc*, indexed, with *pages* as
    its list of pages (the first is its main page) and *created* as its date.  *warc_digest*,
    the WARC's ``sha256:<hex>`` and size when its writer computed them, saves reading it again."""
    from wacz.util import get_py_wacz_version

    created = created.astimezone(dt.UTC)
    stamp = max(created, dt.datetime(1980, 1, 1, tzinfo=dt.UTC)).timetuple()[:6]
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        cdx = Path(scratch) / "index.cdx.gz"
        idx = _index(warc, cdx)
        small = {"indexes/index.idx": idx, "pages/pages.jsonl": _pages_jsonl(pages)}
        large = {f"{ARCHIVE_DIR}{warc.name}": warc, "indexes/index.cdx.gz": cdx}
        known = {f"{ARCHIVE_DIR}{warc.name}": warc_digest} if warc_digest is not None else {}
        resources = [_resource(path, *(known.get(path) or _hash_file(source))) for path, source in large.items()]
        resources += [
            _resource(path, f"sha256:{hashlib.sha256(data).hexdigest()}", len(data)) for path, data in small.items()
        ]
        resources.sort(key=lambda r: str(r["path"]))
        datapackage: dict[str, object] = {
            "profile": "data-package",
            "title": title,
            "description": f"{description} Withheld: {withheld}.",
            "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "wacz_version": WACZ_VERSION,
            "software": f"{software}, py-wacz {get_py_wacz_version()}",
            "withheld": withheld,
            "resources": resources,
        }
        if pages:
            datapackage["mainPageURL"] = pages[0].url
            datapackage["mainPageDate"] = pages[0].ts
        package_bytes = json.dumps(datapackage, indent=2, ensure_ascii=False).encode("utf-8")
        digest = {"path": "datapackage.json", "hash": f"sha256:{hashlib.sha256(package_bytes).hexdigest()}"}
        digest_bytes = json.dumps(digest, indent=2).encode("utf-8")

        def entry(name: str, size: int, compress: bool) -> zipfile.ZipInfo:
            info = zipfile.ZipInfo(name, stamp)
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            info.file_size = size
            return info

        with zipfile.ZipFile(out, "x", allowZip64=True) as zf:
            zf.writestr(entry("datapackage.json", len(package_bytes), False), package_bytes)
            zf.writestr(entry("datapackage-digest.json", len(digest_bytes), False), digest_bytes)
            for name in sorted([*large, *small]):
                if name in small:
                    zf.writestr(entry(name, len(small[name]), True), small[name])
                    continue
                source = large[name]
                with open(source, "rb") as src, zf.open(entry(name, source.stat().st_size, False), "w") as dst:
                    shutil.copyfileobj(src, dst, _BLOCK)


def contents(stream: IO[bytes]) -> Iterator[bytes]:
    """What a reader of the WACZ *stream* (seekable) sees, block by block, for a search of its
    text: every entry decompressed, and of each WARC record its headers and its body as a
    browser shows it (chunks joined, ``Content-Encoding`` undone).  A WARC's records are gzip
    members, and a page or an API's answer is often gzip- or brotli-encoded as well: none of
    their text is in the file's own bytes.  Entries and records are separated by a NUL byte.
    Raises ``zipfile.BadZipFile``, ``OSError``, ``EOFError`` or ``ValueError`` (a ``zlib.error``
    is one) when it cannot be read."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.bufferedreaders import BufferedReader

    # What is decoded here: brotli by _Brotli whenever the package is there, whatever warcio
    # found when it was first imported (it adds "br" only if brotli imported then).
    decodable = {"", "identity", *BufferedReader.get_supported_decompressors(), *(["br"] if _Brotli.usable() else [])}
    with zipfile.ZipFile(stream) as zf:
        for info in zf.infolist():
            with zf.open(info) as member:
                if info.filename.startswith(ARCHIVE_DIR) and ".warc" in info.filename:
                    for record in ArchiveIterator(member, no_record_parse=False):
                        yield b"\0" + record.rec_headers.to_bytes()
                        if record.http_headers is not None:
                            yield record.http_headers.to_bytes()
                            encoding = (record.http_headers.get_header("Content-Encoding") or "").strip().lower()
                            if encoding not in decodable:  # read as it is, its text would be missed
                                raise ValueError(f"a body in {encoding!r}, which cannot be decoded here")
                        if _brotli_encoded(record, strip=True):
                            body: IO[bytes] = io.BufferedReader(_Brotli(_dechunked(record)), _BLOCK)
                        else:
                            body = record.content_stream()
                        while block := body.read(_BLOCK):
                            yield block
                    continue
                source = gzip.GzipFile(fileobj=member) if info.filename.endswith(".gz") else member
                yield b"\0"
                while block := source.read(_BLOCK):
                    yield block
