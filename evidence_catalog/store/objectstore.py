"""Content-addressed, write-once blob store in object storage (S3 and S3-compatible servers,
through fsspec and s3fs).

Same layout and promises as the local store (:mod:`evidence_catalog.store.blobstore`):
``<prefix>/sha256/ab/cd/abcd…``.  Object stores have no rename and no hard link, so a blob is
placed in three steps: the bytes are uploaded to a temporary key (``<prefix>/tmp/<uuid>.part``)
while they are hashed; the uploaded object is read back and hashed again (what the store holds,
not what we sent, is what gets a name); then it is copied server-side under its content address,
unless an intact copy is there already -- an object under a content address is never written
over (only a damaged one is replaced, after being copied to ``quarantine/``).  A process killed
at any point leaves at most a ``tmp/*.part`` object or an unfinished multipart upload under
``tmp/`` (``fsck`` lists and removes both), never an object under an address its bytes do not
match.

Two writers storing the same new bytes at the same moment may both copy them into place; both
copies are the verified bytes of that address, so what is stored is the same either way.

Credentials are never part of the catalog: s3fs finds them as every AWS tool does
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws/credentials``, an
instance role).  The endpoint of an S3-compatible server (MinIO, Ceph, Garage, a cloud's S3
API) is a catalog setting or ``$AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from evidence_catalog.errors import InputError, StorageError
from evidence_catalog.hashing import ProgressCallback, Readable, hash_stream
from evidence_catalog.model import Digests
from evidence_catalog.store.blobstore import StoredBlob, StoreEntry, compare_blob

if TYPE_CHECKING:
    from evidence_catalog.findings import Finding

#: Bytes per uploaded part and per read request.
PART_SIZE = 16 * 1024 * 1024
#: Locks among which addresses being placed are shared (two unrelated blobs rarely wait).
_PLACING_LOCKS = 64


def parse_blobs_url(url: str, *, where: str = "blobs") -> tuple[str, str]:
    """``(protocol, bucket/prefix)`` of an object-store URL such as ``s3://bucket/prefix``."""
    protocol, sep, rest = url.partition("://")
    rest = rest.strip("/")
    if not sep or not protocol or not rest:
        raise InputError("not an object-store URL: use s3://bucket or s3://bucket/prefix", where=where)
    if protocol not in ("s3", "s3a"):
        raise InputError(f"unsupported blob store {protocol!r}: use s3://bucket/prefix", where=where)
    if "@" in rest.split("/", 1)[0]:
        # A key in the URL would be written into catalog.toml and shown in messages.
        raise InputError(
            "the URL must not hold an access key or secret: give them the AWS way (environment"
            " variables AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, a role)",
            where=where,
        )
    if any(part in ("", ".", "..") for part in rest.split("/")):
        raise InputError("the bucket and prefix must not contain empty, '.' or '..' parts", where=where)
    return ("s3" if protocol == "s3a" else protocol), rest


def check_endpoint_url(url: str, *, where: str = "blobs_endpoint_url") -> str:
    """An S3 endpoint must be an ``http(s)://host[:port]`` URL; :class:`InputError` if not."""
    import urllib.parse

    try:
        parsed = urllib.parse.urlsplit(url)
        parsed.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise InputError(f"not an endpoint URL ({exc})", where=where) from exc
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InputError("not an endpoint URL: use http(s)://host[:port]", where=where)
    if parsed.username is not None or parsed.password is not None:
        raise InputError(
            "the endpoint URL must not hold a user name or password: give the keys the AWS way"
            " (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials)",
            where=where,
        )
    return url


class ObjectBlobStore:
    """Write-once storage of bytes under their SHA-256 in an object store."""

    def __init__(
        self,
        url: str,
        algorithms: Sequence[str] = ("sha256",),
        *,
        endpoint_url: str | None = None,
        storage_options: dict[str, Any] | None = None,
        where: str = "blobs",
        endpoint_where: str = "blobs_endpoint_url",
    ) -> None:
        """*where* and *endpoint_where* name the settings *url* and *endpoint_url* came from,
        for error messages."""
        protocol, self.root = parse_blobs_url(url, where=where)
        self.url = f"{protocol}://{self.root}"
        #: Damaged copies moved aside by this object, not yet said by the custody log
        #: (:class:`~evidence_catalog.store.blobs.BlobStorage`).
        self.moved: list[tuple[str, str]] = []
        self.algorithms = tuple(algorithms)
        options: dict[str, Any] = dict(storage_options or {})
        if protocol == "s3":
            try:
                import s3fs  # noqa: F401  (only to give a clear message when it is missing)
            except ImportError as exc:
                raise InputError(
                    "an S3 blob store needs s3fs: pip install 'evidence-catalog[s3]'", where=self.url
                ) from exc
            if endpoint_url is not None:
                check_endpoint_url(endpoint_url, where=endpoint_where)
            endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            if endpoint:
                options.setdefault("client_kwargs", {}).setdefault("endpoint_url", endpoint)
            # Another process may have stored or removed objects a moment ago: never answer
            # from a cached listing.
            options.setdefault("use_listings_cache", False)
        import fsspec

        self.fs = fsspec.filesystem(protocol, skip_instance_cache=True, **options)
        self.label = self.url
        #: Locks that keep this process's threads from placing one address at once (two analyses
        #: of one picture would each find no object and both write it); an address takes the
        #: lock its SHA-256 falls on.  (Other processes can still do so.)
        self._placing = tuple(threading.Lock() for _ in range(_PLACING_LOCKS))

    #: Reading is bound by the network's round trips: several readers per CPU.
    readers_per_cpu = 4

    @property
    def location(self) -> str:
        """Where the store is, for messages."""
        return self.url

    def local_path(self, sha256: str) -> Path | None:
        """``None``: the bytes are in object storage, not in a file here."""
        return None

    def key_for(self, sha256: str) -> str:
        """The object key of the blob with this SHA-256 (whether or not it exists)."""
        return f"{self.root}/sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def exists(self, sha256: str) -> bool:
        """Tell whether the blob is stored."""
        try:
            return bool(self.fs.exists(self.key_for(sha256)))
        except Exception as exc:
            raise StorageError(f"cannot reach the blob store ({_reason(exc)})", where=self.url) from exc

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored blob for reading (``FileNotFoundError`` when it is not there); a read
        that fails later (the connection lost midway) is a :class:`StorageError` too."""
        try:
            stored = self._read_object(self.key_for(sha256))
        except FileNotFoundError:
            raise
        except Exception as exc:  # fsspec back-ends raise their own types
            raise StorageError(f"cannot read from the blob store ({_reason(exc)})", where=self.url) from exc
        return cast(BinaryIO, _ObjectReader(stored, self.url))

    def _read_object(self, key: str) -> Any:
        """The object *key* opened for reading from the start to the end, a part at a time (no
        read-ahead cache: every byte read is what the store holds now)."""
        return self.fs.open(key, "rb", block_size=PART_SIZE, cache_type="none")

    def sync(self) -> None:
        """Nothing to do: an object is durable once its upload completes."""

    def check_writable(self) -> None:
        """Write and remove an empty object under ``tmp/``: a missing bucket, missing
        credentials or a key without write permission is a :class:`StorageError` now (at
        ``init``) rather than at the first add."""
        probe = f"{self.root}/tmp/{uuid.uuid4().hex}.part"
        try:
            self.fs.pipe_file(probe, b"")
        except Exception as exc:  # fsspec back-ends raise their own types
            reason = _reason(exc)
            raise StorageError(f"the blob store cannot be written ({reason})", where=self.url) from exc
        self._remove_quietly(probe)

    def put_stream(
        self, stream: Readable, *, progress: ProgressCallback | None = None, defer_sync: bool = False
    ) -> StoredBlob:
        """Upload *stream*, hashing it on the way; place it under its SHA-256 once what the
        store holds has been read back and found to be those bytes; deduplicate by SHA-256
        (*defer_sync* changes nothing here)."""
        del defer_sync
        tmp_key = f"{self.root}/tmp/{uuid.uuid4().hex}.part"
        try:
            writer = self.fs.open(tmp_key, "wb", block_size=PART_SIZE)
            try:
                digests, size = hash_stream(stream, self.algorithms, on_block=writer.write, progress=progress)
                writer.close()  # completes the upload: the object exists from here on
            except BaseException:
                _discard(writer)
                raise
            self._check_object(tmp_key, digests, size, what="the uploaded bytes")
            quarantined, created = self._place(tmp_key, digests, size)
        except (StorageError, InputError):
            raise
        except OSError as exc:
            raise StorageError(_describe(exc), where=self.url) from exc
        except Exception as exc:
            raise StorageError(_describe(exc), where=self.url) from exc
        finally:
            self._remove_quietly(tmp_key)
        return StoredBlob(digests=digests, size=size, created=created, quarantined=quarantined)

    def adopt_file(self, path: Path, *, progress: ProgressCallback | None = None) -> StoredBlob:
        """Store a finished local file (a capture's download): uploaded like any stream; the
        caller removes the local file."""
        try:
            with open(path, "rb", buffering=0) as stream:
                return self.put_stream(stream, progress=progress)
        except OSError as exc:
            raise StorageError(_describe(exc), where=str(path)) from exc

    def _check_object(self, key: str, digests: Digests, size: int, *, what: str) -> None:
        """Read *key* back and compare it with what was sent."""
        with self._read_object(key) as stored:
            found, found_size = hash_stream(stored, ("sha256",))
        if found_size != size or found.sha256 != digests.sha256:
            raise StorageError(
                f"{what} do not match what was sent ({found_size} bytes, SHA-256 {found.sha256}; "
                f"sent {size} bytes, SHA-256 {digests.sha256}); nothing was stored",
                where=self.url,
            )

    def _place(self, tmp_key: str, digests: Digests, size: int) -> tuple[str | None, bool]:
        with self._placing[int(digests.sha256[:8], 16) % _PLACING_LOCKS]:
            return self._place_alone(tmp_key, digests, size)

    def _place_alone(self, tmp_key: str, digests: Digests, size: int) -> tuple[str | None, bool]:
        final = self.key_for(digests.sha256)
        quarantined = None
        state = self._state_of(final, digests.sha256, size)
        if state == "intact":
            # Left as it is: never written over, not even with the same bytes (a write-once
            # bucket policy would refuse it; a versioned bucket would keep another version).
            # Should fsck --remove take it as an orphan before the record that claims it is
            # committed, that commit finds it gone and fails (the catalog checks under its
            # write lock, under which fsck deletes).
            return None, False
        if state == "damaged":
            # A copy that no longer has its address's bytes is copied aside (kept: it is itself
            # evidence of what happened); then the good bytes in hand take its place in one
            # server-side copy (an object is replaced whole or not at all: should the copy
            # fail, the damaged object is still there and still quarantined, never nothing).
            moved = f"{self.root}/quarantine/{digests.sha256}.{uuid.uuid4().hex}"
            self.fs.copy(final, moved)
            quarantined = moved.removeprefix(f"{self.root}/")
            self.moved.append((digests.sha256, quarantined))  # to be logged, whatever happens next
        self.fs.copy(tmp_key, final)
        info = self.fs.info(final)
        if int(info.get("size", -1)) != size:
            if quarantined is None:  # this call made it: no other bytes under the address
                self._remove_quietly(final)
            raise StorageError(
                f"the copy under {digests.sha256} has {info.get('size')} bytes, not {size}; nothing was stored",
                where=self.url,
            )
        return quarantined, True

    def _state_of(self, key: str, sha256: str, size: int) -> str:
        """``missing``, ``intact`` (the bytes its address says) or ``damaged``: read and hashed,
        never judged by a listing (an object removed a moment ago is missing, not intact)."""
        try:
            with self._read_object(key) as stored:
                found, found_size = hash_stream(stored, ("sha256",))
        except FileNotFoundError:
            return "missing"
        return "intact" if found.sha256 == sha256 and found_size == size else "damaged"

    def _remove_quietly(self, key: str) -> None:
        with contextlib.suppress(Exception):  # already gone, or unreachable: fsck lists what is left
            self.fs.rm(key)

    def verify(
        self, sha256: str, expected: Digests, size: int, *, progress: ProgressCallback | None = None
    ) -> list[Finding]:
        """Re-hash a stored blob; return what does not match the recorded digests and size."""
        algorithms = tuple(expected.as_dict())
        try:
            with self._read_object(self.key_for(sha256)) as stored:
                found, found_size = hash_stream(stored, algorithms, progress=progress)
        except FileNotFoundError:
            from evidence_catalog.findings import BlobMissing

            return [BlobMissing(sha256=sha256)]
        except Exception as exc:  # noqa: BLE001  (fsspec back-ends raise their own types)
            from evidence_catalog.findings import BlobUnreadable

            return [BlobUnreadable(sha256=sha256, reason=_reason(exc))]
        return compare_blob(sha256, expected, size, found, found_size)

    @contextmanager
    def local_copy(self, sha256: str) -> Iterator[Path]:
        """A temporary local file holding the blob's bytes (removed afterwards)."""
        try:
            fd, name = tempfile.mkstemp(prefix="evidence-catalog-", suffix=".blob")
        except OSError as exc:
            raise StorageError(f"cannot make a local copy of {sha256} ({exc.strerror})", where=self.url) from exc
        try:
            try:
                with open(fd, "wb") as local, self.open(sha256) as stored:
                    while block := stored.read(PART_SIZE):
                        local.write(block)
            except FileNotFoundError as exc:
                raise StorageError(f"{sha256} is not in the blob store", where=self.url) from exc
            except OSError as exc:  # the local disk (full?)
                raise StorageError(f"cannot make a local copy of {sha256} ({exc.strerror})", where=self.url) from exc
            yield Path(name)
        finally:
            os.unlink(name)

    def remove(self, sha256: str) -> None:
        """Remove a blob that no record claims (an import that failed after storing it)."""
        self._remove_quietly(self.key_for(sha256))

    # -- housekeeping listings (fsck) -----------------------------------------------------

    def _entries(self, folder: str, now: float, *, blobs: bool = False) -> Iterator[StoreEntry]:
        try:
            found = self.fs.find(f"{self.root}/{folder}", detail=True)
        except FileNotFoundError:
            return
        except Exception as exc:  # fsspec back-ends raise their own types
            raise StorageError(f"cannot list the blob store ({_reason(exc)})", where=self.url) from exc
        for key, info in sorted(found.items()):
            if info.get("type") == "directory":
                continue
            modified = info.get("LastModified") or info.get("mtime") or info.get("created")
            if isinstance(modified, dt.datetime):
                when = modified.timestamp() if modified.tzinfo else modified.replace(tzinfo=dt.UTC).timestamp()
            elif isinstance(modified, int | float):
                when = float(modified)
            else:
                when = now
            name = key.rsplit("/", 1)[-1]
            yield StoreEntry(
                path=f"{self.url.split('://')[0]}://{key}",
                size=int(info.get("size") or 0),
                age_seconds=max(0.0, now - when),
                sha256=name if blobs else None,
            )

    def stored(self, now: float) -> Iterator[StoreEntry]:
        """Every blob in the store, in address order."""
        yield from self._entries("sha256", now, blobs=True)

    def temporary(self, now: float) -> Iterator[StoreEntry]:
        """Unfinished uploads a killed process left: ``tmp/*.part`` objects, and multipart
        uploads under ``tmp/`` never completed (their parts are stored, and billed, but no
        listing of objects shows them; the entry's path ends ``#upload=<UploadId>``)."""
        yield from self._entries("tmp", now)
        yield from self._multipart_uploads(now)

    def _multipart_uploads(self, now: float) -> Iterator[StoreEntry]:
        bucket, _, prefix = f"{self.root}/tmp/".partition("/")
        marker: dict[str, str] = {}
        protocol = self.url.split("://")[0]
        while True:
            try:
                page = self.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix, **marker)
            except Exception as exc:  # fsspec back-ends raise their own types
                raise StorageError(f"cannot list the blob store ({_reason(exc)})", where=self.url) from exc
            for upload in page.get("Uploads", []):
                key, upload_id = upload["Key"], upload["UploadId"]
                started = upload.get("Initiated")
                when = started.timestamp() if isinstance(started, dt.datetime) else now
                yield StoreEntry(
                    path=f"{protocol}://{bucket}/{key}{_UPLOAD_MARK}{upload_id}",
                    size=self._parts_size(bucket, key, upload_id),
                    age_seconds=max(0.0, now - when),
                )
            if not page.get("IsTruncated"):
                return
            marker = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}

    def _parts_size(self, bucket: str, key: str, upload_id: str) -> int:
        """The bytes an unfinished multipart upload holds (0 when they cannot be listed)."""
        try:
            page = self.fs.call_s3("list_parts", Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:  # noqa: BLE001  (the size is for the listing only)
            return 0
        return sum(int(part.get("Size", 0)) for part in page.get("Parts", []))

    def quarantined(self, now: float) -> Iterator[StoreEntry]:
        """Damaged copies moved aside (kept: they are evidence of the damage)."""
        yield from self._entries("quarantine", now)

    def delete(self, entry: StoreEntry) -> None:
        """Delete a blob or temporary object :meth:`stored` or :meth:`temporary` listed (an
        unfinished multipart upload is aborted)."""
        path, mark, upload_id = entry.path.split("://", 1)[1].partition(_UPLOAD_MARK)
        try:
            if mark:
                bucket, _, key = path.partition("/")
                self.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
            else:
                self.fs.rm(path)
        except FileNotFoundError:
            return
        except Exception as exc:  # fsspec back-ends raise their own types
            raise StorageError(f"cannot delete from the blob store ({_reason(exc)})", where=self.url) from exc


class _ObjectReader(io.RawIOBase):
    """A stored object opened for reading, whose failures are raised as :class:`StorageError`
    (fsspec back-ends raise their own types: botocore's, aiohttp's)."""

    def __init__(self, stored: Any, url: str) -> None:
        super().__init__()
        self._stored = stored
        self._url = url

    def _failed(self, exc: Exception) -> StorageError:
        return StorageError(f"cannot read from the blob store ({_reason(exc)})", where=self._url)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._stored.read(len(buffer))
        except Exception as exc:
            raise self._failed(exc) from exc
        view = memoryview(buffer).cast("B")
        view[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self._stored.read(size))
        except Exception as exc:
            raise self._failed(exc) from exc

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        try:
            return int(self._stored.seek(offset, whence))
        except Exception as exc:
            raise self._failed(exc) from exc

    def tell(self) -> int:
        return int(self._stored.tell())

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._stored.close()
        super().close()


#: How :meth:`ObjectBlobStore.temporary` marks an unfinished multipart upload in an entry's path.
_UPLOAD_MARK = "#upload="


def _discard(writer: Any) -> None:
    """Abandon an unfinished upload (a multipart upload is aborted; nothing becomes visible)."""
    try:
        if hasattr(writer, "discard"):
            writer.discard()
        writer.closed = True
    except Exception:  # noqa: BLE001  (best effort: fsck finds what is left)
        pass


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return f"cannot write to the blob store ({_reason(exc)}); nothing was stored"
    return f"storing failed ({_reason(exc)}); nothing was stored"
