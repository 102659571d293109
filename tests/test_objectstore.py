"""Blobs in object storage: ``ObjectBlobStore`` against a real S3-compatible server (moto's
server mode on 127.0.0.1), and a catalog whose blobs live there, end to end.

The fixtures here (a server, a bucket per test, and backends that are either a local
``BlobStore`` or an ``ObjectBlobStore``) are shared with ``test_blobstore.py``, which runs the
blob-store contract against both.  No test reaches the internet: every store is given the local
server as its endpoint, and ``$AWS_ENDPOINT_URL`` -- what a store without one would use -- points
at a closed port on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import attrs
import bagit
import boto3
import pytest
from moto.server import ThreadedMotoServer

from evidence_catalog import Catalog
from evidence_catalog.config import CONFIG_FILE, CatalogConfig
from evidence_catalog.custody import Action
from evidence_catalog.errors import EvidenceError, InputError, IntegrityError, StorageError
from evidence_catalog.findings import BlobMissing, BlobUnreadable, DigestMismatch, SizeMismatch
from evidence_catalog.model import Digests
from evidence_catalog.operations import common
from evidence_catalog.store import objectstore
from evidence_catalog.store.blobstore import BlobStore
from evidence_catalog.store.objectstore import PART_SIZE, ObjectBlobStore, parse_blobs_url

from .conftest import CliResult, FixedClock

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Never written anywhere by the library: the catalog keeps URLs, never credentials.
SECRET = "moto-secret-" + "5b0e1d7c9a"
KEY_ID = "AKIAEVIDENCETEST0001"

RunCli = Callable[..., CliResult]


# -- the server, credentials and buckets ---------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto) on 127.0.0.1, on a port the OS picked."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session", autouse=True)
def _botocore_models_parsed_once() -> Iterator[None]:
    """Each new store makes a new S3 client, and each new client reads and parses botocore's
    JSON service models again (most of a second on a busy machine).  botocore already shares
    what one loader parsed between the clients of one session; here every loader shares it, so
    that the tests spend their time on the store, not on JSON.  Nothing else changes."""
    from botocore.loaders import Loader

    parsed: dict[tuple[Any, ...], Any] = {}

    def shared(name: str) -> Callable[..., Any]:
        read = getattr(Loader, name)

        def once(self: Loader, *args: Any, **kwargs: Any) -> Any:
            key = (name, *args, *sorted(kwargs.items()))
            if key not in parsed:
                parsed[key] = read(self, *args, **kwargs)
            return parsed[key]

        return once

    with pytest.MonkeyPatch.context() as patch:
        for name in ("load_service_model", "load_data_with_path", "list_available_services", "list_api_versions"):
            patch.setattr(Loader, name, shared(name))
        yield


@pytest.fixture(scope="session")
def closed_endpoint() -> Iterator[str]:
    """An endpoint on 127.0.0.1 that refuses every connection: a port held by a socket that is
    bound but never listens (so nothing else can take it meanwhile)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def set_aws_env(patch: pytest.MonkeyPatch, home: Path, closed_endpoint: str) -> None:
    """Credentials from the environment, as an operator's shell has them; nothing from this
    machine's own AWS settings; and no way out to AWS itself."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL_S3",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        patch.delenv(name, raising=False)
    patch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    patch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    patch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # A store that forgot its configured endpoint fails here instead of going to AWS.
    patch.setenv("AWS_ENDPOINT_URL", closed_endpoint)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, closed_endpoint: str) -> None:
    set_aws_env(monkeypatch, tmp_path_factory.mktemp("aws-home"), closed_endpoint)


@pytest.fixture(scope="session")
def s3(s3_endpoint: str) -> Any:
    """A boto3 client of the test server: how the tests look at (and damage) objects directly.
    (Its own credentials, given here: making a client takes a while, so there is one.)"""
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )


def new_bucket(s3: Any) -> str:
    """A new, versioned bucket (versions show whether an object was ever replaced)."""
    name = f"evidence-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def bucket(s3: Any, aws_env: None) -> str:
    """A bucket of this test's own."""
    return new_bucket(s3)


def fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """One attempt per request (botocore otherwise retries a refused connection for ~20 s)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")


def address(sha256: str) -> str:
    """Where a blob lives relative to the store's root, in both stores."""
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


# -- one interface over both stores, for the contract tests -----------------------------------


class Backend(Protocol):
    name: str

    def store(self, algorithms: tuple[str, ...] = ...) -> BlobStore | ObjectBlobStore: ...
    def read(self, relative: str) -> bytes | None: ...
    def write(self, relative: str, data: bytes) -> None: ...
    def delete(self, relative: str) -> None: ...
    def names(self, folder: str) -> list[str]: ...
    def versions(self, relative: str) -> list[Any]: ...
    def version_bytes(self, relative: str) -> list[bytes]: ...
    def unfinished_uploads(self) -> list[str]: ...


class LocalBackend:
    """A ``BlobStore`` in a folder; objects are files under it."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def store(self, algorithms: tuple[str, ...] = ("sha256",)) -> BlobStore:
        return BlobStore(self.root, algorithms)

    def read(self, relative: str) -> bytes | None:
        path = self.root / relative
        return path.read_bytes() if path.is_file() else None

    def write(self, relative: str, data: bytes) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)  # stored blobs are read-only
        path.write_bytes(data)

    def delete(self, relative: str) -> None:
        (self.root / relative).unlink()

    def names(self, folder: str) -> list[str]:
        top = self.root / folder
        if not top.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in top.rglob("*") if not p.is_dir())

    def versions(self, relative: str) -> list[Any]:
        """What identifies the file now there (replacing it would change this)."""
        path = self.root / relative
        if not path.exists():
            return []
        info = path.stat()
        return [info.st_ino]

    def version_bytes(self, relative: str) -> list[bytes]:
        """The bytes of every version ever under the name (a file system keeps one)."""
        found = self.read(relative)
        return [] if found is None else [found]

    def unfinished_uploads(self) -> list[str]:
        return []


class S3Backend:
    """An ``ObjectBlobStore`` under a prefix of a versioned bucket on the test server."""

    name = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str, endpoint: str) -> None:
        self.client, self.bucket, self.prefix, self.endpoint = client, bucket, prefix, endpoint
        self.url = f"s3://{bucket}/{prefix}"
        self.stores: dict[tuple[str, ...], ObjectBlobStore] = {}

    def store(self, algorithms: tuple[str, ...] = ("sha256",)) -> ObjectBlobStore:
        """A store of this prefix (one per set of algorithms: a new one connects anew, which
        takes a while)."""
        key = tuple(algorithms)
        if key not in self.stores:
            self.stores[key] = ObjectBlobStore(self.url, algorithms, endpoint_url=self.endpoint)
        return self.stores[key]

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}"

    def read(self, relative: str) -> bytes | None:
        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=self.key(relative))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return body

    def write(self, relative: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(relative), Body=data)

    def delete(self, relative: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(relative))

    def names(self, folder: str) -> list[str]:
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.key(folder) + "/"
        ):
            found += [item["Key"].removeprefix(self.prefix + "/") for item in page.get("Contents", [])]
        return sorted(found)

    def versions(self, relative: str) -> list[Any]:
        """Every version ever written under the key (a replaced object leaves its old version)."""
        key = self.key(relative)
        listing = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        return [v["VersionId"] for v in listing.get("Versions", []) if v["Key"] == key]

    def version_bytes(self, relative: str) -> list[bytes]:
        """The bytes of every version ever written under the key."""
        key = self.key(relative)
        return [
            self.client.get_object(Bucket=self.bucket, Key=key, VersionId=version)["Body"].read()
            for version in self.versions(relative)
        ]

    def unfinished_uploads(self) -> list[str]:
        """Multipart uploads begun and neither completed nor aborted (they cost money, unseen)."""
        listing = self.client.list_multipart_uploads(Bucket=self.bucket)
        return [u["Key"] for u in listing.get("Uploads", [])]


@pytest.fixture
def s3_backend(s3: Any, bucket: str, s3_endpoint: str) -> S3Backend:
    return S3Backend(s3, bucket, "team/blobs", s3_endpoint)


def pick_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The backend a ``backend`` fixture parametrized with ``["local", "s3"]`` asks for."""
    if request.param == "local":
        return LocalBackend(tmp_path / "blobs")
    backend: Backend = request.getfixturevalue("s3_backend")
    return backend


class FailingStream:
    """Gives some bytes, then fails like a dying disk or network."""

    def __init__(self, size: int, error: BaseException | None = None) -> None:
        self.left = size
        self.error = error if error is not None else OSError(5, "Input/output error")

    def readinto(self, buffer: memoryview) -> int:
        if self.left:
            n = min(len(buffer), self.left)
            buffer[:n] = b"p" * n
            self.left -= n
            return n
        raise self.error


# -- the store on its own ----------------------------------------------------------------------


def test_objects_go_under_the_prefix_with_nothing_else_left(s3_backend: S3Backend) -> None:
    store = s3_backend.store(("md5",))
    blob = store.put_stream(io.BytesIO(b"evidence"))
    sha = hashlib.sha256(b"evidence").hexdigest()
    assert (blob.sha256, blob.size, blob.created, blob.quarantined) == (sha, 8, True, None)
    assert blob.digests.md5 == hashlib.md5(b"evidence").hexdigest()
    assert store.key_for(sha) == f"{s3_backend.bucket}/team/blobs/{address(sha)}"
    listing = s3_backend.client.list_objects_v2(Bucket=s3_backend.bucket)
    assert [o["Key"] for o in listing["Contents"]] == [f"team/blobs/{address(sha)}"]
    assert s3_backend.unfinished_uploads() == []
    assert store.exists(sha) and not store.exists(hashlib.sha256(b"other").hexdigest())
    assert store.location == store.label == s3_backend.url


def test_the_bytes_read_back_are_checked_before_they_get_a_name(
    s3_backend: S3Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the store holds, not what was sent, is what gets an address: an upload the server
    keeps differently (here: changed between upload and read-back) is refused."""
    store = s3_backend.store()
    check = store._check_object

    def corrupt_then_check(key: str, *args: Any, **kwargs: Any) -> None:
        s3_backend.client.put_object(Bucket=s3_backend.bucket, Key=key.split("/", 1)[1], Body=b"not what was sent")
        check(key, *args, **kwargs)

    monkeypatch.setattr(store, "_check_object", corrupt_then_check)
    with pytest.raises(StorageError, match="do not match what was sent") as raised:
        store.put_stream(io.BytesIO(b"the original bytes"))
    assert raised.value.where == s3_backend.url
    assert "nothing was stored" in raised.value.message
    assert s3_backend.names("sha256") == [] and s3_backend.names("tmp") == []


def test_an_intact_copy_is_never_written_over_not_even_with_the_same_bytes(s3_backend: S3Backend, s3: Any) -> None:
    """Storing bytes that are there already leaves the object as it is: a write-once bucket
    policy would refuse a second write, a versioned bucket would keep one version per put."""
    s3.put_bucket_versioning(Bucket=s3_backend.bucket, VersioningConfiguration={"Status": "Enabled"})
    store = s3_backend.store()
    blobs = [store.put_stream(io.BytesIO(b"bytes put three times")) for _ in range(3)]
    assert [b.created for b in blobs] == [True, False, False]
    key = f"{s3_backend.prefix}/{address(blobs[0].sha256)}"
    versions = s3.list_object_versions(Bucket=s3_backend.bucket, Prefix=key).get("Versions", [])
    assert len(versions) == 1


def test_a_copy_that_vanishes_before_its_record_is_committed_fails_the_add(
    s3_catalog: Catalog, s3_backend: S3Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process deletes the stored copy (``fsck --remove`` of what was an old orphan) after
    this add found it intact: the add must fail, never commit a record claiming nothing."""
    source = tmp_path / "again.bin"
    source.write_bytes(b"bytes put again")
    sha256 = hashlib.sha256(b"bytes put again").hexdigest()
    s3_catalog.blobs.put_stream(io.BytesIO(b"bytes put again"))  # an orphan: no record claims it
    describe = common.describe

    def described_then_deleted_by_another_process(ctx: Any, blob: Any) -> Any:
        artifact = describe(ctx, blob)
        s3_backend.delete(address(blob.sha256))
        return artifact

    monkeypatch.setattr(common, "describe", described_then_deleted_by_another_process)
    with pytest.raises(StorageError, match="removed before they could be catalogued"):
        s3_catalog.add([source])
    monkeypatch.undo()
    assert s3_catalog.records_with_artifact(sha256) == []
    [result] = s3_catalog.add([source])  # run again: stored anew and catalogued
    assert s3_backend.read(address(result.sha256)) == b"bytes put again"
    assert s3_catalog.verify().ok


def test_the_local_copy_is_the_stored_bytes_and_is_removed_afterwards(
    s3_backend: S3Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    store = s3_backend.store()
    blob = store.put_stream(io.BytesIO(b"bytes to look at"))
    with store.local_copy(blob.sha256) as path:
        assert path.read_bytes() == b"bytes to look at"
        assert path.parent == scratch
    assert not path.exists() and not any(scratch.iterdir())
    with (
        pytest.raises(StorageError, match="is not in the blob store"),
        store.local_copy(hashlib.sha256(b"absent").hexdigest()),
    ):
        pass
    assert not any(scratch.iterdir())


def test_adopting_a_file_uploads_it_and_leaves_the_file_to_the_caller(s3_backend: S3Backend, tmp_path: Path) -> None:
    download = tmp_path / "download.bin"
    download.write_bytes(b"a capture's download")
    store = s3_backend.store()
    blob = store.adopt_file(download)
    assert blob.created and blob.sha256 == hashlib.sha256(b"a capture's download").hexdigest()
    assert s3_backend.read(address(blob.sha256)) == b"a capture's download"
    assert download.exists()
    with pytest.raises(StorageError) as raised:
        store.adopt_file(tmp_path / "gone.bin")
    assert raised.value.where == str(tmp_path / "gone.bin")


def test_listings_give_urls_sizes_and_ages_and_delete_removes(s3_backend: S3Backend) -> None:
    store = s3_backend.store()
    blob = store.put_stream(io.BytesIO(b"kept blob"))
    s3_backend.write("tmp/left-by-a-killed-upload.part", b"half")
    s3_backend.write("quarantine/abc.123", b"damaged")
    now = time.time()
    [stored] = store.stored(now)
    assert stored.path == f"{s3_backend.url}/{address(blob.sha256)}"
    assert (stored.size, stored.sha256) == (9, blob.sha256)
    [part] = store.temporary(now)
    assert (part.path, part.size, part.sha256) == (f"{s3_backend.url}/tmp/left-by-a-killed-upload.part", 4, None)
    [moved] = store.quarantined(now)
    assert (moved.path, moved.size) == (f"{s3_backend.url}/quarantine/abc.123", 7)
    for entry in (stored, part, moved):
        assert 0 <= entry.age_seconds < 120
    later = now + 7200
    assert [e.age_seconds for e in store.temporary(later)] == pytest.approx([part.age_seconds + 7200], abs=1)
    store.delete(part)
    assert s3_backend.names("tmp") == [] and list(store.temporary(time.time())) == []


def test_another_prefix_in_the_same_bucket_is_another_store(s3_backend: S3Backend) -> None:
    one = s3_backend.store()
    two = ObjectBlobStore(f"s3://{s3_backend.bucket}/team/blobs-2", endpoint_url=s3_backend.endpoint)
    blob = one.put_stream(io.BytesIO(b"only in one"))
    two.put_stream(io.BytesIO(b"only in two"))
    assert [e.sha256 for e in one.stored(time.time())] == [blob.sha256]
    assert not two.exists(blob.sha256)


def test_without_an_endpoint_setting_aws_endpoint_url_s3_is_used_before_aws_endpoint_url(
    s3_backend: S3Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(``$AWS_ENDPOINT_URL`` points at a closed port in every test here; the setting, given
    everywhere else, wins over both.)"""
    fail_fast(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_backend.endpoint)
    store = ObjectBlobStore(s3_backend.url)
    blob = store.put_stream(io.BytesIO(b"via AWS_ENDPOINT_URL_S3"))
    assert s3_backend.names("sha256") == [address(blob.sha256)]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", "s3://bucket"),
        ("s3://bucket/team/blobs/", "s3://bucket/team/blobs"),
        ("s3a://bucket/x", "s3://bucket/x"),
    ],
)
def test_store_urls_are_normalised(aws_env: None, url: str, expected: str) -> None:
    assert ObjectBlobStore(url).url == expected


@pytest.mark.parametrize(
    "url",
    ["s3://", "s3:///", "bucket/prefix", "ftp://x", "file:///tmp/x", "s3://bucket/../x", "s3://bucket//x", "s3://./x"],
)
def test_bad_store_urls_are_refused(url: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_blobs_url(url)
    assert raised.value.where == "blobs"  # the parameter; the command line names its option --blobs


def test_missing_credentials_and_a_missing_bucket_are_clear_storage_errors(
    s3_backend: S3Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_fast(monkeypatch)
    missing = ObjectBlobStore(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/x", endpoint_url=s3_backend.endpoint)
    with pytest.raises(StorageError, match=r"bucket does not exist.*nothing was stored") as raised:
        missing.put_stream(io.BytesIO(b"x"))
    assert raised.value.where == missing.url
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match=r"credentials.*nothing was stored"):
        s3_backend.store().put_stream(io.BytesIO(b"x"))
    assert s3_backend.names("sha256") == []


# -- an unreachable server ---------------------------------------------------------------------


@pytest.fixture
def unreachable(aws_env: None, closed_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> ObjectBlobStore:
    fail_fast(monkeypatch)
    return ObjectBlobStore("s3://evidence/team", endpoint_url=closed_endpoint)


SOME_SHA = hashlib.sha256(b"anything").hexdigest()


def test_an_unreachable_server_is_a_storage_error_naming_the_store(unreachable: ObjectBlobStore) -> None:
    with pytest.raises(StorageError) as raised:
        unreachable.put_stream(io.BytesIO(b"evidence"))
    assert raised.value.where == "s3://evidence/team"
    assert "Could not connect" in raised.value.message and raised.value.message.endswith("nothing was stored")
    with pytest.raises(StorageError, match="cannot reach the blob store") as raised:
        unreachable.exists(SOME_SHA)
    assert raised.value.where == "s3://evidence/team"
    [finding] = unreachable.verify(SOME_SHA, Digests(sha256=SOME_SHA), 8)
    assert isinstance(finding, BlobUnreadable) and finding.sha256 == SOME_SHA
    assert "Could not connect" in finding.reason
    unreachable.remove(SOME_SHA)  # removing what cannot be reached is left to fsck, quietly


UNREACHABLE_READS: dict[str, Callable[[ObjectBlobStore], object]] = {
    "stored": lambda store: list(store.stored(time.time())),
    "temporary": lambda store: list(store.temporary(time.time())),
    "quarantined": lambda store: list(store.quarantined(time.time())),
    "open": lambda store: store.open(SOME_SHA).read(),
}


@pytest.mark.parametrize("operation", list(UNREACHABLE_READS))
def test_reading_from_an_unreachable_server_is_a_storage_error(unreachable: ObjectBlobStore, operation: str) -> None:
    with pytest.raises(StorageError) as raised:
        UNREACHABLE_READS[operation](unreachable)
    assert raised.value.where == "s3://evidence/team"


# -- a catalog whose blobs are in object storage -------------------------------------------------


@pytest.fixture
def s3_catalog(s3_backend: S3Backend, tmp_path: Path) -> Iterator[Catalog]:
    with Catalog.init(
        tmp_path / "s3-catalog", blobs=s3_backend.url, blobs_endpoint_url=s3_backend.endpoint, clock=FixedClock()
    ) as catalog:
        yield catalog


def test_a_catalog_keeps_only_urls_and_its_blobs_in_the_bucket(
    s3_catalog: Catalog, s3_backend: S3Backend, tmp_path: Path
) -> None:
    folder = s3_catalog.path
    assert not (folder / "blobs").exists()
    assert isinstance(s3_catalog.blobs, ObjectBlobStore) and s3_catalog.blobs.location == s3_backend.url
    settings = (folder / "catalog.toml").read_text()
    assert f'url = "{s3_backend.url}"' in settings and f'endpoint_url = "{s3_backend.endpoint}"' in settings
    (tmp_path / "statement.bin").write_bytes(b"\x00\x01 a witness statement")
    [added] = s3_catalog.add([tmp_path / "statement.bin"])
    assert s3_backend.read(address(added.sha256)) == b"\x00\x01 a witness statement"
    assert s3_backend.names("tmp") == []
    with pytest.raises(InputError, match=r"object storage; read them with open_artifact\(\)") as raised:
        s3_catalog.artifact_path(added.sha256)
    assert raised.value.where == s3_backend.url
    with s3_catalog.open_artifact(added.sha256) as stream:
        assert stream.read() == b"\x00\x01 a witness statement"
    s3_catalog.close()
    for path in folder.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes() and KEY_ID.encode() not in path.read_bytes(), path
    with Catalog.open(folder) as reopened:  # the endpoint is a catalog setting: found again
        assert isinstance(reopened.blobs, ObjectBlobStore)
        assert reopened.verify(record_event=False).ok
        assert reopened.open_artifact(added.sha256).read() == b"\x00\x01 a witness statement"


def test_files_added_to_s3_are_described_from_the_stored_copy_just_as_locally(
    s3_catalog: Catalog,
    catalog: Catalog,
    s3_backend: S3Backend,
    jpeg_file: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    files = [
        EXAMPLES / "damaged-building.jpg",
        EXAMPLES / "witness-statement.txt",
        EXAMPLES / "field-report.pdf",
        jpeg_file(make="FieldCam", model="X2", gps=(-33.8688, 151.2093, -4.0)),
        jpeg_file(gps=None, taken=None, offset=None, colour=(1, 2, 3)),
    ]
    on_s3 = s3_catalog.add(files, analyze=False)  # the files' own descriptions (analysed: further down)
    locally = catalog.add(files, analyze=False)
    assert [a.sha256 for a in on_s3] == [a.sha256 for a in locally]
    assert all(a.new_bytes for a in on_s3)
    for remote, local in zip(on_s3, locally, strict=True):
        remote_record = s3_catalog.record(remote.record_id)
        local_record = catalog.record(local.record_id)
        assert remote_record.artifacts[0].artifact == local_record.artifacts[0].artifact
        assert s3_catalog.open_artifact(remote.sha256).read() == Path(remote.path).read_bytes()
    field_cam = s3_catalog.record(on_s3[3].record_id).artifacts[0].artifact
    assert field_cam.media_type == "image/jpeg"
    assert field_cam.metadata is not None and field_cam.metadata.exif is not None
    assert (field_cam.metadata.exif.make, field_cam.metadata.exif.model) == ("FieldCam", "X2")
    assert field_cam.metadata.exif.gps is not None and field_cam.metadata.exif.gps.latitude == pytest.approx(-33.8688)
    assert not any(scratch.iterdir())  # the local copies metadata was read from are gone
    assert sorted(s3_backend.names("sha256")) == sorted(address(a.sha256) for a in on_s3)
    assert s3_backend.names("tmp") == [] and s3_backend.unfinished_uploads() == []
    report = s3_catalog.verify()
    assert report.ok and report.artifacts_checked == len(files)
    assert report.bytes_checked == sum(Path(f).stat().st_size for f in files)
    again = s3_catalog.add([files[0]], analyze=False)[0]
    assert not again.new_bytes and again.record_id == on_s3[0].record_id
    assert set(s3_backend.version_bytes(address(again.sha256))) == {Path(files[0]).read_bytes()}  # never other bytes


def test_an_analysis_on_s3_stores_what_it_derived_in_the_bucket_and_leaves_no_local_copy(
    s3_catalog: Catalog, s3_backend: S3Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_media import make_video
    from .test_perceptual import picture

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    photo, clip = tmp_path / "street.jpg", make_video(tmp_path / "clip.mp4", size=(160, 120), frames=50)
    picture(11).save(photo, "JPEG")
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    added = s3_catalog.add([photo, clip])
    held = {e.artifact.sha256 for a in added for e in s3_catalog.record(a.record_id).artifacts}
    assert len(held) >= 2 + 2 + 2  # each file, its analysis; the video's keyframe(s) and contact sheet
    assert sorted(s3_backend.names("sha256")) == sorted(address(sha) for sha in held)
    assert not any(scratch.iterdir())  # the local copies the analysers read are gone
    report = s3_catalog.verify(deep=True)
    assert report.ok and report.analyses_rechecked == 2, report.findings
    assert not any(scratch.iterdir())
    assert s3_catalog.similar(added[0].sha256) == ()  # indexed (an artifact not analysed is refused), alone


def test_a_bag_exported_from_s3_validates_and_imports_into_another_prefix(
    s3_catalog: Catalog,
    s3_backend: S3Backend,
    jpeg_file: Callable[..., Path],
    tmp_path: Path,
) -> None:
    files = [EXAMPLES / "damaged-building.jpg", EXAMPLES / "radio-intercept.wav", jpeg_file(make="BagCam")]
    added = s3_catalog.add(files)
    held = {e.artifact.sha256 for a in added for e in s3_catalog.record(a.record_id).artifacts}
    assert len(held) == 2 * len(files)  # an analysis document each (C2PA is looked for in sound too)
    result = s3_catalog.export(tmp_path / "bag", format="bagit", sha512=True)
    assert result.artifacts == len(held)
    bag = bagit.Bag(str(tmp_path / "bag"))
    bag.validate()  # raises on any problem
    assert set(bag.algorithms) == {"sha256", "sha512"}
    payload = {path.read_bytes() for path in (tmp_path / "bag" / "data").rglob("*") if path.is_file()}
    assert {f.read_bytes() for f in map(Path, files)} <= payload

    other_url = f"s3://{s3_backend.bucket}/partner/blobs"
    with Catalog.init(tmp_path / "partner", blobs=other_url, blobs_endpoint_url=s3_backend.endpoint) as partner:
        imported = partner.import_records(tmp_path / "bag")
        assert set(imported.records_added) == {a.record_id for a in added}
        assert imported.artifacts_stored == len(held)
        for item in added:
            assert partner.record(item.record_id) == s3_catalog.record(item.record_id)
            assert partner.open_artifact(item.sha256).read() == Path(item.path).read_bytes()
        report = partner.verify(deep=True)  # the analyses made again from the partner's bucket
        assert report.ok and report.analyses_rechecked == len(files), report.findings
        assert not (partner.path / "blobs").exists()
        listing = s3_backend.client.list_objects_v2(Bucket=s3_backend.bucket, Prefix="partner/blobs/")
        assert sorted(o["Key"] for o in listing["Contents"]) == sorted(f"partner/blobs/{address(s)}" for s in held)
        assert partner.fsck().clean
        again = partner.import_records(tmp_path / "bag")  # the same bag twice adds nothing
        assert again.records_added == () and again.artifacts_stored == 0


def test_tampered_objects_are_found_by_verify_and_restored_by_adding_the_good_bytes(
    s3_catalog: Catalog, s3_backend: S3Backend, tmp_path: Path
) -> None:
    originals = {"other bytes": EXAMPLES / "damaged-building.jpg", "truncated": EXAMPLES / "field-report.pdf"}
    originals["deleted"] = tmp_path / "deleted.txt"
    originals["deleted"].write_text("bytes someone deletes from the bucket")
    added = dict(zip(originals, s3_catalog.add(originals.values()), strict=True))
    good = {damage: path.read_bytes() for damage, path in originals.items()}
    bad = {"other bytes": bytes(len(good["other bytes"])), "truncated": good["truncated"][:100]}
    for damage, data in bad.items():
        s3_backend.write(address(added[damage].sha256), data)
    s3_backend.delete(address(added["deleted"].sha256))

    report = s3_catalog.verify()
    assert not report.ok
    for damage, data in bad.items():
        sha = added[damage].sha256
        found = hashlib.sha256(data).hexdigest()
        assert DigestMismatch(sha256=sha, algorithm="sha256", expected=sha, found=found) in report.findings
    sha = added["truncated"].sha256
    assert SizeMismatch(sha256=sha, expected=len(good["truncated"]), found=100) in report.findings
    assert BlobMissing(sha256=added["deleted"].sha256) in report.findings
    assert len(report.findings) == 4  # the damage, once: an analysis of damaged bytes is not made again
    assert all(any(a.sha256 in str(f) for a in added.values()) for f in report.findings)
    assert any(n.kind == "analysis_not_rechecked" and added["other bytes"].sha256 in str(n) for n in report.notices), (
        report.notices
    )
    with pytest.raises(EvidenceError, match="SHA-256 is now"):
        s3_catalog.export(tmp_path / "bag", format="bagit")
    assert not (tmp_path / "bag").exists()

    restored = dict(zip(originals, s3_catalog.add(originals.values()), strict=True))
    for damage, result in restored.items():
        assert result.record_id == added[damage].record_id and result.new_bytes
        assert s3_backend.read(address(result.sha256)) == good[damage]
    assert restored["deleted"].quarantined is None
    moved = s3_backend.names("quarantine")
    assert sorted(moved) == sorted(str(restored[d].quarantined) for d in bad)
    for damage, data in bad.items():
        place = restored[damage].quarantined
        assert place is not None and place.startswith(f"quarantine/{added[damage].sha256}.")
        assert s3_backend.read(place) == data  # the damaged copy is kept: it is evidence too
        event = s3_catalog.history(added[damage].record_id)[-1]
        assert event.details["damaged_copy_quarantined"] == place
    assert sorted(e.path for e in s3_catalog.fsck().quarantined) == sorted(f"{s3_backend.url}/{m}" for m in moved)
    assert s3_catalog.verify().ok


def test_exporting_with_a_missing_object_says_what_is_wrong(s3_catalog: Catalog, s3_backend: S3Backend) -> None:
    [added] = s3_catalog.add([EXAMPLES / "witness-statement.txt"])
    s3_backend.delete(address(added.sha256))
    with pytest.raises(EvidenceError) as raised:
        s3_catalog.export(s3_catalog.path.parent / "bag", format="bagit")
    assert "nothing was written" in str(raised.value)
    assert "(None)" not in str(raised.value)
    assert not (s3_catalog.path.parent / "bag").exists()


@pytest.mark.parametrize("redact", [False, True], ids=["bag", "redacted bag"])
def test_an_object_larger_than_catalogued_is_refused_after_one_byte_more(
    s3_catalog: Catalog, s3_backend: S3Backend, monkeypatch: pytest.MonkeyPatch, redact: bool
) -> None:
    """An object put in a blob's place may be huge: the export reads one byte beyond the
    catalogued size, not the whole object, before it says so (as a local store's size check
    refuses such a file before copying it).  A redacted export that withholds a text first
    searches every artifact's bytes for it: that search stops there too."""
    [added] = s3_catalog.add([EXAMPLES / "witness-statement.txt"])
    if redact:
        s3_catalog.flag(added.record_id, "personal_data", "names a witness", fields=["title"])
    size = (EXAMPLES / "witness-statement.txt").stat().st_size
    s3_backend.write(address(added.sha256), bytes(8 * 1024 * 1024))
    read: list[int] = []
    readinto, read_bytes = objectstore._ObjectReader.readinto, objectstore._ObjectReader.read

    def counted(self: Any, buffer: Any) -> int:
        n = readinto(self, buffer)
        read.append(n)
        return n

    def counted_read(self: Any, size: int = -1) -> bytes:
        data = read_bytes(self, size)
        read.append(len(data))
        return data

    monkeypatch.setattr(objectstore._ObjectReader, "readinto", counted)
    monkeypatch.setattr(objectstore._ObjectReader, "read", counted_read)
    with pytest.raises(IntegrityError, match=f"holds more than the {size} bytes catalogued") as raised:
        s3_catalog.export(s3_catalog.path.parent / "bag", format="bagit", redact=redact)
    assert raised.value.where == f"artifact {added.sha256}"
    assert 0 < sum(read) <= size + 1
    assert not (s3_catalog.path.parent / "bag").exists()


def test_the_same_bytes_stored_again_leave_one_version_of_the_object(
    s3_catalog: Catalog, s3_backend: S3Backend, tmp_path: Path
) -> None:
    """An intact copy is left as it is (a write-once bucket would refuse a second write)."""
    store = s3_backend.store()
    data = b"the same evidence, stored three times"
    sha = hashlib.sha256(data).hexdigest()
    created = [store.put_stream(io.BytesIO(data)).created for _ in range(3)]
    assert created == [True, False, False]
    (tmp_path / "copy.bin").write_bytes(data)
    [added] = s3_catalog.add([tmp_path / "copy.bin"])
    assert added.sha256 == sha and not added.new_bytes
    assert len(s3_backend.versions(address(sha))) == 1  # the bucket is versioned: never written again
    assert s3_backend.names("tmp") == [] and s3_backend.unfinished_uploads() == []


def test_a_damaged_copy_is_never_replaced_by_nothing(
    s3_catalog: Catalog, s3_backend: S3Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding the good bytes again replaces a damaged copy: when the server-side copy of the
    good bytes into place fails (the connection lost), the damaged copy is still there (and
    quarantined), never nothing."""
    good = b"the good evidence bytes"
    damaged = b"bit-rotted copy of them"
    (tmp_path / "good.bin").write_bytes(good)
    [added] = s3_catalog.add([tmp_path / "good.bin"])
    s3_backend.write(address(added.sha256), damaged)
    assert isinstance(s3_catalog.blobs, ObjectBlobStore)
    fs = s3_catalog.blobs.fs
    copy = fs.copy
    copies: list[tuple[str, str]] = []

    def second_copy_fails(source: str, target: str, *args: Any, **kwargs: Any) -> Any:
        copies.append((source, target))
        if len(copies) == 2:
            raise ConnectionError("Connection reset by peer")
        return copy(source, target, *args, **kwargs)

    monkeypatch.setattr(fs, "copy", second_copy_fails)
    with pytest.raises(StorageError):
        s3_catalog.add([tmp_path / "good.bin"])
    monkeypatch.undo()
    assert [c[1].split("/")[-2] for c in copies] == ["quarantine", added.sha256[2:4]]
    assert s3_backend.read(address(added.sha256)) == damaged  # still an object, never nothing
    [quarantined] = s3_backend.names("quarantine")
    assert s3_backend.read(quarantined) == damaged  # and kept aside
    assert s3_backend.names("tmp") == []
    report = s3_catalog.verify(record_event=False)
    assert [type(f) for f in report.findings] == [DigestMismatch]  # damaged, not missing

    [again] = s3_catalog.add([tmp_path / "good.bin"])  # the network back: repaired
    assert again.new_bytes and again.quarantined is not None
    assert s3_backend.read(address(added.sha256)) == good
    assert s3_catalog.verify(record_event=False).ok


# -- fsck on object storage ----------------------------------------------------------------------


def test_fsck_lists_and_removes_leftovers_in_the_bucket_and_nothing_claimed(
    s3_catalog: Catalog, s3_backend: S3Backend, tmp_path: Path
) -> None:
    (tmp_path / "kept.txt").write_text("claimed by a record")
    [kept] = s3_catalog.add([tmp_path / "kept.txt"])
    orphan = b"stored by an import killed before its commit"
    orphan_sha = hashlib.sha256(orphan).hexdigest()
    claimed_later = b"stored first, committed later"
    claimed_sha = hashlib.sha256(claimed_later).hexdigest()
    for data in (orphan, claimed_later):
        s3_backend.write(address(hashlib.sha256(data).hexdigest()), data)
    s3_backend.write("tmp/0123abcd.part", b"half an upload")
    s3_backend.write(f"quarantine/{kept.sha256}.feed", b"a damaged copy")
    events_before = len(s3_catalog.history())
    url = s3_backend.url

    listed = s3_catalog.fsck()
    assert not listed.clean
    assert [(e.path, e.size, e.sha256) for e in listed.orphaned_blobs] == sorted(
        [
            (f"{url}/{address(orphan_sha)}", len(orphan), orphan_sha),
            (f"{url}/{address(claimed_sha)}", len(claimed_later), claimed_sha),
        ]
    )
    [part] = listed.temporary
    assert (part.path, part.size, part.sha256) == (f"{url}/tmp/0123abcd.part", 14, None)
    assert [q.path for q in listed.quarantined] == [f"{url}/quarantine/{kept.sha256}.feed"]
    for entry in (*listed.orphaned_blobs, part, *listed.quarantined):
        assert 0 <= entry.age_seconds < 120
    assert len(s3_catalog.history()) == events_before  # listing changes nothing

    young = s3_catalog.fsck(remove=True)  # the default grace period: all of it is too young
    assert young.removed == () and len(s3_catalog.history()) == events_before

    (tmp_path / "same.bin").write_bytes(claimed_later)
    [claimed] = s3_catalog.add([tmp_path / "same.bin"])  # a record claims those bytes now
    assert claimed.sha256 == claimed_sha and not claimed.new_bytes  # the intact copy was taken as it is

    report = s3_catalog.fsck(remove=True, grace_seconds=0)
    orphaned = f"{url}/{address(orphan_sha)}"
    assert {e.path for e in report.removed} == {orphaned, part.path}
    assert report.clean
    assert s3_backend.names("tmp") == []
    assert s3_backend.names("sha256") == sorted([address(kept.sha256), address(claimed_sha)])  # claimed: kept
    assert s3_backend.names("quarantine") == [f"quarantine/{kept.sha256}.feed"]  # kept as evidence
    last = s3_catalog.history()[-1]
    assert last.action == Action.CATALOG_FSCK
    logged: list[dict[str, Any]] = [
        {"path": orphaned, "size": len(orphan), "sha256": orphan_sha},
        {"path": part.path, "size": 14, "sha256": None},
    ]
    assert sorted(last.details["removed"], key=lambda r: str(r["path"])) == sorted(logged, key=lambda r: str(r["path"]))
    assert s3_catalog.fsck().clean
    assert s3_catalog.verify(record_event=False).ok


_STALLED_UPLOAD = """
import sys, time
from evidence_catalog.store.objectstore import ObjectBlobStore

class Stalls:
    '''Gives some bytes, then never any more (the process is killed while it waits).'''
    left = int(sys.argv[3])
    def readinto(self, buffer):
        if self.left <= 0:
            time.sleep(600)
        n = min(len(buffer), self.left)
        buffer[:n] = b"k" * n
        self.left -= n
        return n

ObjectBlobStore(sys.argv[1], endpoint_url=sys.argv[2]).put_stream(Stalls())
"""


@pytest.mark.slow
def test_an_upload_killed_midway_is_listed_and_aborted_by_fsck(s3_catalog: Catalog, s3_backend: S3Backend) -> None:
    """A process storing more than one part (16 MiB) is killed after its first part: the
    unfinished multipart upload holds those bytes (billed, and in no listing of objects)."""
    client, name = s3_backend.client, s3_backend.bucket
    uploader = subprocess.Popen(
        [sys.executable, "-c", _STALLED_UPLOAD, s3_backend.url, s3_backend.endpoint, str(PART_SIZE + 1024 * 1024)]
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # until the first part is stored
            uploads = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
            if uploads and client.list_parts(Bucket=name, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]).get(
                "Parts"
            ):
                break
            assert uploader.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        uploader.send_signal(signal.SIGKILL)
        uploader.wait()
    [upload] = uploads
    assert upload["Key"].startswith(f"{s3_backend.prefix}/tmp/")
    assert s3_backend.names("tmp") == []  # nothing a listing of objects shows

    listed = s3_catalog.fsck()
    assert not listed.clean
    [entry] = listed.temporary
    assert entry.path == f"s3://{name}/{upload['Key']}#upload={upload['UploadId']}"
    assert entry.size == PART_SIZE and entry.sha256 is None

    report = s3_catalog.fsck(remove=True, grace_seconds=0)
    assert [e.path for e in report.removed] == [entry.path]
    assert s3_backend.unfinished_uploads() == []
    last = s3_catalog.history()[-1]
    assert last.action == Action.CATALOG_FSCK and [r["path"] for r in last.details["removed"]] == [entry.path]
    assert s3_catalog.fsck().clean


# -- the catalog when the server cannot be reached ---------------------------------------------


@pytest.fixture(scope="module")
def cut_off_catalog(
    s3: Any, s3_endpoint: str, closed_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """A catalog holding one artifact whose settings now point at a closed port (the server
    down, or the network gone): its folder and the artifact's SHA-256.  Made once: the tests
    only fail to reach it."""
    folder = tmp_path_factory.mktemp("cut-off")
    with pytest.MonkeyPatch.context() as patch:
        set_aws_env(patch, folder, closed_endpoint)
        url = f"s3://{new_bucket(s3)}/team"
        with Catalog.init(folder / "catalog", blobs=url, blobs_endpoint_url=s3_endpoint) as catalog:
            (folder / "f.txt").write_text("held in the bucket")
            [added] = catalog.add([folder / "f.txt"])
    settings = folder / "catalog" / "catalog.toml"
    settings.write_text(settings.read_text().replace(s3_endpoint, closed_endpoint))
    return folder / "catalog", added.sha256


def test_a_catalog_cut_off_from_its_bucket_reports_instead_of_failing(
    cut_off_catalog: tuple[Path, str],
    aws_env: None,
    tmp_path: Path,
    run_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fail_fast(monkeypatch)
    folder, sha = cut_off_catalog
    (tmp_path / "new.txt").write_text("to be added")
    with Catalog.open(folder) as catalog:
        events = len(catalog.history())
        with pytest.raises(StorageError, match="Could not connect") as raised:
            catalog.add([tmp_path / "new.txt"])
        assert raised.value.where == catalog.blobs.location
        assert len(catalog.history()) == events  # nothing recorded
        report = catalog.verify(record_event=False)
        [finding] = report.findings
        assert isinstance(finding, BlobUnreadable) and finding.sha256 == sha
    added = run_cli("add", tmp_path / "new.txt", "--catalog", folder)
    assert added.code == 2 and "Traceback" not in added.err
    assert added.err.startswith("error: s3://") and len(added.err.strip().splitlines()) == 1
    verified = run_cli("verify", "--catalog", folder)
    assert verified.code == 1 and "stored bytes cannot be read" in verified.out + verified.err


@pytest.mark.parametrize("operation", ["fsck", "export", "open_artifact", "cli fsck"])
def test_reading_a_cut_off_bucket_is_a_storage_error(
    cut_off_catalog: tuple[Path, str],
    aws_env: None,
    tmp_path: Path,
    run_cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    operation: str,
) -> None:
    fail_fast(monkeypatch)
    folder, sha = cut_off_catalog
    if operation == "cli fsck":
        result = run_cli("fsck", "--catalog", folder)
        assert result.code == 2 and "Traceback" not in result.err
        assert result.err.startswith("error: s3://") and len(result.err.strip().splitlines()) == 1
        return
    reads: dict[str, Callable[[Catalog], object]] = {
        "fsck": lambda catalog: catalog.fsck(),
        "export": lambda catalog: catalog.export(tmp_path / "bag", format="bagit"),
        "open_artifact": lambda catalog: catalog.open_artifact(sha).read(),
    }
    with Catalog.open(folder) as catalog, pytest.raises(StorageError) as raised:
        reads[operation](catalog)
    assert "s3://" in str(raised.value)


def test_a_read_cut_off_midway_is_a_storage_error(
    aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server goes away while an artifact is being read (a server of this test's own)."""
    fail_fast(monkeypatch)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    stopped = False
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        name = f"evidence-{uuid.uuid4().hex[:20]}"
        client.create_bucket(Bucket=name)
        data = os.urandom(256 * 1024)
        (tmp_path / "video.bin").write_bytes(data)
        with Catalog.init(tmp_path / "catalog", blobs=f"s3://{name}/team", blobs_endpoint_url=endpoint) as catalog:
            [added] = catalog.add([tmp_path / "video.bin"])
            with catalog.open_artifact(added.sha256) as stored:
                assert stored.read(1000) == data[:1000]
                server.stop()
                stopped = True
                with pytest.raises(StorageError) as raised:
                    stored.read()
            assert f"s3://{name}/team" in str(raised.value)
    finally:
        if not stopped:
            server.stop()


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--blobs", "s3://"], "--blobs: not an object-store URL"),
        (["--blobs", "ftp://x"], "--blobs: unsupported blob store 'ftp'"),
        (["--blobs", "s3://bucket/../x"], "--blobs: the bucket and prefix must not contain"),
        (["--blobs", "bucket/prefix"], "--blobs: not an object-store URL"),
        (["--blobs-endpoint", "http://127.0.0.1:9"], "--blobs-endpoint: --blobs-endpoint needs --blobs"),
    ],
)
def test_init_refuses_bad_blob_settings_in_one_line(
    run_cli: Callable[..., Any], tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_cli("init", tmp_path / "catalog", *args)
    assert result.code == 2
    assert "Traceback" not in result.err + result.out
    assert result.err.strip().splitlines() == [result.err.strip()]
    assert result.err.startswith(f"error: {message}")
    assert not (tmp_path / "catalog").exists()  # nothing half-made


def test_init_refuses_a_blob_store_that_does_not_outlive_the_process(
    run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    result = run_cli("init", tmp_path / "catalog", "--blobs", "memory://evidence/blobs")
    assert result.code == 2 and result.err.startswith("error: --blobs:")


def test_init_refuses_a_store_it_cannot_write_and_makes_nothing(
    run_cli: Callable[..., Any], s3_backend: S3Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing bucket or missing credentials are found at init, not at the first add."""
    fail_fast(monkeypatch)
    missing = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/team"
    result = run_cli("init", tmp_path / "catalog", "--blobs", missing, "--blobs-endpoint", s3_backend.endpoint)
    assert result.code == 2, result.err
    assert result.err.startswith(f"error: {missing}: the blob store cannot be written (")
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "catalog").exists()
    keys = {name: os.environ[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    for name in keys:
        monkeypatch.delenv(name)
    result = run_cli("init", tmp_path / "catalog", "--blobs", s3_backend.url, "--blobs-endpoint", s3_backend.endpoint)
    assert result.code == 2 and "the blob store cannot be written" in result.err and "credentials" in result.err
    assert not (tmp_path / "catalog").exists()
    for name, value in keys.items():  # the credentials back: init succeeds, its probe not left behind
        monkeypatch.setenv(name, value)
    made = run_cli("init", tmp_path / "catalog", "--blobs", s3_backend.url, "--blobs-endpoint", s3_backend.endpoint)
    assert made.code == 0, made.err
    assert s3_backend.names("tmp") == []


@pytest.mark.parametrize("endpoint", ["not-a-url", "ftp://127.0.0.1:21", ""])
def test_init_refuses_a_bad_blobs_endpoint(run_cli: Callable[..., Any], tmp_path: Path, endpoint: str) -> None:
    result = run_cli("init", tmp_path / "catalog", "--blobs", "s3://evidence/team", "--blobs-endpoint", endpoint)
    assert result.code == 2 and result.err.startswith("error: --blobs-endpoint:")
    assert not (tmp_path / "catalog").exists()


def test_the_command_line_keeps_a_catalogs_blobs_in_s3(
    run_cli: Callable[..., Any], s3_backend: S3Backend, tmp_path: Path
) -> None:
    folder = tmp_path / "catalog"
    made = run_cli("init", folder, "--blobs", s3_backend.url + "/", "--blobs-endpoint", s3_backend.endpoint)
    assert made.code == 0, made.err
    assert f"blobs:    {s3_backend.url}\n" in made.out
    added = run_cli("add", EXAMPLES / "witness-statement.txt", "--catalog", folder)
    assert added.code == 0, added.err
    sha = hashlib.sha256((EXAMPLES / "witness-statement.txt").read_bytes()).hexdigest()
    assert sha in added.out and s3_backend.names("sha256") == [address(sha)]
    assert run_cli("verify", "--catalog", folder).code == 0
    s3_backend.write("tmp/dead.part", b"x")
    leftover = run_cli("fsck", "--catalog", folder)
    assert leftover.code == 1 and f"{s3_backend.url}/tmp/dead.part" in leftover.out
    s3_backend.write(address(sha), b"tampered")
    tampered = run_cli("verify", "--catalog", folder)
    assert tampered.code == 1 and sha in tampered.out + tampered.err


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--blobs", "s3://AKIAEXAMPLE:{secret}@evidence/team"], "--blobs"),
        (["--blobs", "s3a://{secret}@evidence/team"], "--blobs"),
        (
            ["--blobs", "s3://evidence/team", "--blobs-endpoint", "http://minio:{secret}@127.0.0.1:9000"],
            "--blobs-endpoint",
        ),
        (
            ["--blobs", "s3://evidence/team", "--blobs-endpoint", "https://{secret}@minio.example.org"],
            "--blobs-endpoint",
        ),
    ],
)
def test_init_refuses_credentials_in_blob_urls(run_cli: RunCli, tmp_path: Path, args: list[str], option: str) -> None:
    secret = "Secret-" + uuid.uuid4().hex
    result = run_cli("init", tmp_path / "catalog", *(a.format(secret=secret) for a in args))
    assert result.code == 2, result.out
    assert result.err.strip().splitlines() == [result.err.strip()]  # one line
    assert result.err.startswith(f"error: {option}:")
    assert secret not in result.out + result.err
    assert not (tmp_path / "catalog").exists()  # nothing made


# -- a bad [blobs] setting in catalog.toml ------------------------------------------------------


def _set_blobs(folder: Path, url: str, endpoint_url: str | None = None) -> None:
    """Write ``[blobs] url`` (and ``endpoint_url``) into the catalog.toml of a closed catalog."""
    config = attrs.evolve(CatalogConfig.load(folder), blobs_url=url, blobs_endpoint_url=endpoint_url)
    (folder / CONFIG_FILE).write_text(config.to_toml(), encoding="utf-8")


@pytest.mark.parametrize(
    ("blobs", "setting"),
    [
        ({"url": "s3:/bucket"}, "blobs.url"),
        ({"url": "s3://bucket/../x"}, "blobs.url"),
        ({"url": "s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/p"}, "blobs.url"),
        ({"url": "s3://bucket/p", "endpoint_url": "ftp://127.0.0.1:21"}, "blobs.endpoint_url"),
        ({"url": "s3://bucket/p", "endpoint_url": "http://minio:wJalrXUtnFEMI@127.0.0.1:9000"}, "blobs.endpoint_url"),
    ],
)
def test_a_bad_blobs_setting_in_catalog_toml_is_named_as_such(
    catalog: Catalog, run_cli: RunCli, blobs: dict[str, str], setting: str
) -> None:
    catalog.close()
    _set_blobs(catalog.path, blobs["url"], blobs.get("endpoint_url"))
    result = run_cli("list", "--catalog", catalog.path)
    assert result.code == 2, result.out
    assert result.err.strip().splitlines() == [result.err.strip()]  # one line
    assert f"catalog.toml: {setting}:" in result.err
    assert "--blobs" not in result.err and "wJalrXUtnFEMI" not in result.err


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts this process's open files in /proc")
def test_opening_a_catalog_with_a_bad_blobs_setting_leaves_nothing_open(catalog: Catalog) -> None:
    catalog.close()
    _set_blobs(catalog.path, "s3:/bucket")
    for _ in range(2):  # whatever is opened once per process (imports, pools) is opened now
        with pytest.raises(EvidenceError):
            Catalog.open(catalog.path)
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(EvidenceError, match=r"blobs\.url"):
            Catalog.open(catalog.path)
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= before


def test_the_viewer_serves_byte_ranges_and_thumbnails_from_object_storage(
    s3_catalog: Catalog, tmp_path: Path, jpeg_file: Any
) -> None:
    from starlette.testclient import TestClient

    from evidence_catalog.web import make_app

    blob = bytes(range(256)) * 2048  # 512 KiB: several reads
    (tmp_path / "clip.bin").write_bytes(blob)
    [clip] = s3_catalog.add([tmp_path / "clip.bin"])
    [photo] = s3_catalog.add([jpeg_file()])
    folder = s3_catalog.path
    s3_catalog.close()
    with Catalog.open(folder, read_only=True) as viewed:
        client = TestClient(make_app(viewed), base_url="http://127.0.0.1:8000")
        url = f"/records/{clip.record_id}/artifacts/{clip.sha256}"
        assert client.get(url).content == blob
        part = client.get(url, headers={"Range": "bytes=300000-300099"})
        assert part.status_code == 206 and part.content == blob[300000:300100]
        thumbnail = client.get(f"/records/{photo.record_id}/thumbnails/{photo.sha256}")
        assert thumbnail.status_code == 200 and thumbnail.content.startswith(b"\xff\xd8")
        assert client.get(f"/records/{photo.record_id}/check.json").json()["ok"] is True


def test_an_auto_archiver_import_into_object_storage_reads_what_it_needs_from_the_bucket(
    s3_catalog: Catalog,
) -> None:
    """The version auto-archiver's report states, the zone its metadata.json gives the
    platform's time, and its time-stamped hashes are read back from the blob store, whatever it
    is: the bytes read are the bytes kept."""
    import datetime as dt

    from tests.aa_rows import FIXTURE, P

    result = s3_catalog.import_auto_archiver(FIXTURE, analyze=False)
    assert len(result.records_added) == 6 and not result.findings and result.tool_version == "1.2.9"
    clip = next(r for r in s3_catalog.records() if r.acquisitions[0].requested_url == P + "clip.mp4")
    assert ("auto-archiver", "1.2.9") in {(t.name, t.version) for t in clip.acquisitions[0].tools}
    assert clip.acquisitions[0].platform_info is not None
    assert clip.acquisitions[0].platform_info.uploaded_at == dt.datetime(2026, 12, 5, 19, 34, 24, tzinfo=dt.UTC)
    assert s3_catalog.verify().ok


def test_one_file_on_two_records_analysed_at_once_leaves_one_version_of_each_object(
    s3_catalog: Catalog, s3_backend: S3Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two analyses at a time of the same bytes (a picture two posts share) make the same
    document: it is placed once, as one at a time places it (a write-once bucket would refuse
    a second write).  Both threads are held where each looks for the object, if both get there."""
    import threading

    from evidence_catalog.operations import analyzing

    from .test_perceptual import picture

    picture(21).save(tmp_path / "shared.jpg", "JPEG")
    picture(22).save(tmp_path / "other.jpg", "JPEG")
    [first] = s3_catalog.add([tmp_path / "shared.jpg"], analyze=False)
    [other] = s3_catalog.add([tmp_path / "other.jpg"], analyze=False)
    [again] = s3_catalog.add([tmp_path / "shared.jpg"], analyze=False, record_id=other.record_id)
    assert again.sha256 == first.sha256 and again.record_id != first.record_id
    meet = threading.Barrier(2, timeout=1)
    state_of = ObjectBlobStore._state_of

    def together(self: ObjectBlobStore, key: str, sha256: str, size: int) -> str:
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait()
        return state_of(self, key, sha256, size)

    monkeypatch.setattr(ObjectBlobStore, "_state_of", together)
    todo = [(first.record_id, first.sha256), (again.record_id, again.sha256)]
    results = list(analyzing.analysed_in_turn(s3_catalog._ctx, todo))
    assert [r.new for r in results] == [True, True]  # type: ignore[union-attr]
    [document] = {r.document_sha256 for r in results}  # type: ignore[union-attr]
    assert document is not None and len(s3_backend.versions(address(document))) == 1
