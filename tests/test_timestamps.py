"""RFC 3161 trusted time-stamps: requests and tokens (evidence_catalog.timestamp), the queue kept
in the catalog (``Catalog.timestamp``), what ``verify`` finds, what an export bag carries, and
``checkpoint --timestamp`` on the command line -- with real catalogs, a real TSA on 127.0.0.1
(``openssl ts -reply``, tests/tsa_server.py) and a hostile one written here."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from asn1crypto import cms, core, tsp

from evidence_catalog import Catalog, timestamp
from evidence_catalog.catalog import TSA_ENV
from evidence_catalog.errors import InputError, NetworkError, NotFoundError
from evidence_catalog.findings import TimestampMismatch
from evidence_catalog.timestamp import MAX_RESPONSE_BYTES, TimestampError
from tests.conftest import run_sql
from tests.tsa_server import LocalTSA

OPERATOR = "Field Analyst <field@example.org>"
ADDED = "timestamp.added"


# -- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTSA]:
    with LocalTSA() as server:
        yield server


@pytest.fixture
def live_tsa(tsa: LocalTSA) -> Iterator[LocalTSA]:
    """The module's TSA, up at the start of the test and again after it."""
    tsa.down = False
    yield tsa
    tsa.down = False


def http_response(body: bytes, status: str = "200 OK", content_type: str = "application/timestamp-reply") -> bytes:
    head = (
        f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class HostileTSA:
    """An HTTP server on 127.0.0.1 that answers each POST with whatever ``answer(body)`` gives:
    the raw bytes written back on the connection (status line and headers included)."""

    def __init__(self) -> None:
        self.answer: Callable[[bytes], bytes] = lambda body: http_response(b"")
        self.bodies: list[bytes] = []
        self.content_types: list[str | None] = []
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hostile.bodies.append(body)
                hostile.content_types.append(self.headers.get("Content-Type"))
                raw = hostile.answer(body)
                self.close_connection = True
                try:
                    self.wfile.write(raw)
                    self.wfile.flush()
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/tsa"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[HostileTSA]:
    server = HostileTSA()
    yield server
    server.close()


@pytest.fixture
def hostile(hostile_server: HostileTSA) -> HostileTSA:
    hostile_server.bodies.clear()
    hostile_server.content_types.clear()
    hostile_server.answer = lambda body: http_response(b"")
    return hostile_server


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsa"


def post(url: str, body: bytes) -> bytes:
    """POST a time-stamp query, return the raw response body."""
    sent = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/timestamp-query"}
    )
    with urllib.request.urlopen(sent, timeout=30) as answer:
        return bytes(answer.read())


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """TimeStampResp as RFC 3161 section 2.4.2 has it: the token is OPTIONAL (and absent unless
    granted).  asn1crypto's own class makes it required, so it cannot build a refusal."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def status_only(status: str, text: str | None = None) -> bytes:
    """A DER TimeStampResp with this status and no token (what a TSA sends when it refuses)."""
    info: dict[str, Any] = {"status": status}
    if text is not None:
        info["status_string"] = [text]
    return bytes(_TimeStampResp({"status": info}).dump())


def openssl_rejection(tsa: LocalTSA) -> bytes:
    """A genuine refusal by openssl ts -reply: a SHA-1 request, which this TSA does not accept."""
    body = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha1"}, "hashed_message": hashlib.sha1(b"x").digest()},
            "nonce": 5,
            "cert_req": True,
        }
    ).dump()
    return post(tsa.url, body)


def real_response(tsa: LocalTSA, digest: bytes, nonce: int | None = None) -> bytes:
    """A genuine TimeStampResp of the LocalTSA for *digest* (with this nonce)."""
    body, _ = timestamp.request(digest, nonce=nonce)
    return post(tsa.url, body)


# -- catalogs and helpers ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_tsa_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TSA_ENV, raising=False)


@pytest.fixture
def cat(tmp_path: Path) -> Iterator[Catalog]:
    """A real catalog with two files in it."""
    with Catalog.init(tmp_path / "catalog", operator=OPERATOR) as made:
        for name, text in (("a.txt", "first file"), ("b.txt", "second file, é 😀")):
            (tmp_path / name).write_text(text, encoding="utf-8")
        made.add([tmp_path / "a.txt", tmp_path / "b.txt"])
        yield made


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stamp_events(catalog: Catalog) -> list[Any]:
    return [e for e in catalog.history() if e.action == ADDED]


def token_rows(catalog: Catalog, status: str | None = None) -> list[Any]:
    with catalog.db.read() as session:
        return catalog.db.timestamps(session, status)


def checkpoint_note(catalog: Catalog, checkpoint_id: int) -> str:
    with catalog.db.read() as session:
        rows = catalog.db.checkpoints(session)
    (note,) = [r.note for r in rows if r.id == checkpoint_id]
    return note


def latest_checkpoint_id(catalog: Catalog) -> int:
    with catalog.db.read() as session:
        latest = catalog.db.latest_checkpoint(session)
    assert latest is not None and latest.id is not None
    return latest.id


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60)


def verify_digest(tsa: LocalTSA, token: Path, sha256_hex: str) -> subprocess.CompletedProcess[str]:
    """``openssl ts -verify -digest`` of a token, with only the TSA's CA (the token carries the
    TSA's certificate, since the request asked for it)."""
    return openssl("ts", "-verify", "-digest", sha256_hex, "-in", token, "-token_in", "-CAfile", tsa.ca_file)


def sql(catalog_dir: Path, statement: str, **params: object) -> None:
    run_sql(catalog_dir, statement, params)


# -- requests, responses and tokens (pure) -----------------------------------------------------


def test_a_request_is_a_timestampreq_that_openssl_reads_back(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"what is stamped").digest()
    body, nonce = timestamp.request(digest, nonce=0x1234_5678_9ABC_DEF0)
    assert nonce == 0x1234_5678_9ABC_DEF0
    query = tmp_path / "req.tsq"
    query.write_bytes(body)
    shown = openssl("ts", "-query", "-in", query, "-text")
    assert shown.returncode == 0, shown.stderr
    assert "Version: 1" in shown.stdout
    assert "Hash Algorithm: sha256" in shown.stdout
    assert "nonce: 0x123456789abcdef0" in shown.stdout.lower()
    assert "Certificate required: yes" in shown.stdout
    dumped = re.findall(r"^\s+[0-9a-f]{4} - (.{47})", shown.stdout, flags=re.MULTILINE)
    assert bytes.fromhex("".join(dumped).replace("-", "").replace(" ", "")) == digest
    parsed = tsp.TimeStampReq.load(body)
    assert parsed["version"].native == "v1"
    assert parsed["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert parsed["message_imprint"]["hashed_message"].native == digest
    assert parsed["nonce"].native == nonce
    assert parsed["cert_req"].native is True


def test_a_request_without_a_nonce_gets_a_fresh_random_one() -> None:
    digest = bytes(32)
    nonces = {timestamp.request(digest)[1] for _ in range(5)}
    assert len(nonces) == 5
    for nonce in nonces:
        assert 0 <= nonce < 2**63
    body, nonce = timestamp.request(digest)
    assert tsp.TimeStampReq.load(body)["nonce"].native == nonce


@pytest.mark.parametrize(
    "digest",
    [
        b"",
        bytes(31),
        bytes(33),
        hashlib.sha1(b"x").digest(),
        hashlib.sha512(b"x").digest(),
        hashlib.sha256(b"x").hexdigest().encode("ascii"),
    ],
    ids=["empty", "31-bytes", "33-bytes", "sha1", "sha512", "hex-text"],
)
def test_a_request_refuses_a_digest_that_is_not_32_bytes(digest: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        timestamp.request(digest)


def test_stamp_returns_a_token_openssl_verifies_over_the_data(live_tsa: LocalTSA, tmp_path: Path) -> None:
    data = b"bytes the TSA sees only as a digest"
    token = timestamp.stamp(live_tsa.url, data, timeout=30)
    info = timestamp.token_info(token)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.policy == "1.2.3.4.1"
    assert info.nonce is not None
    (tmp_path / "t.tsr").write_bytes(token)
    (tmp_path / "data").write_bytes(data)
    checked = live_tsa.verify(tmp_path / "t.tsr", tmp_path / "data")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Verification: OK" in checked.stdout


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/tsa", "file:///etc/passwd", "127.0.0.1/tsa"])
def test_stamp_digest_reaches_a_tsa_only_over_http(url: str) -> None:
    with pytest.raises(NetworkError, match="http"):
        timestamp.stamp_digest(url, bytes(32))


def test_token_from_response_accepts_only_the_digest_and_nonce_asked_for(live_tsa: LocalTSA) -> None:
    digest = hashlib.sha256(b"asked for").digest()
    response = real_response(live_tsa, digest, nonce=41)
    token = timestamp.token_from_response(response, digest, 41)
    assert timestamp.token_info(token).sha256 == digest.hex()
    assert timestamp.token_info(token).nonce == 41
    assert timestamp.token_from_response(response, digest, None) == token  # no nonce sent: none checked
    with pytest.raises(TimestampError, match="nonce"):
        timestamp.token_from_response(response, digest, 42)
    with pytest.raises(TimestampError, match="another digest"):
        timestamp.token_from_response(response, hashlib.sha256(b"other").digest(), 41)


@pytest.mark.parametrize(
    "response",
    [
        b"",
        b"\x00garbage\xff" * 10,
        status_only("rejection"),
        status_only("waiting"),
        status_only("granted"),
        status_only("rejection", "bad request"),
    ],
    ids=["empty", "garbage", "rejection", "waiting", "granted-without-token", "rejection-with-text"],
)
def test_token_from_response_refuses_what_is_not_a_granted_stamp(response: bytes) -> None:
    with pytest.raises(TimestampError):
        timestamp.token_from_response(response, bytes(32), 1)


def test_token_from_response_refuses_garbage_as_no_response() -> None:
    with pytest.raises(TimestampError, match="not a time-stamp response"):
        timestamp.token_from_response(b"\x00garbage\xff" * 10, bytes(32), 1)


REFUSALS: dict[str, tuple[Callable[[LocalTSA], bytes], str]] = {
    "openssl-rejection": (lambda tsa: openssl_rejection(tsa), r"the TSA refused \(rejection: .*not supported"),
    "rejection": (lambda tsa: status_only("rejection"), r"the TSA refused \(rejection\)"),
    "rejection-with-text": (
        lambda tsa: status_only("rejection", "unsupported policy"),
        r"the TSA refused \(rejection: unsupported policy\)",
    ),
    "waiting": (lambda tsa: status_only("waiting"), r"the TSA refused \(waiting\)"),
    "granted-without-token": (lambda tsa: status_only("granted"), "granted, but sent no token"),
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_a_refusal_says_the_tsas_status_and_text(kind: str, tsa: LocalTSA) -> None:
    make, message = REFUSALS[kind]
    with pytest.raises(TimestampError, match=message):
        timestamp.token_from_response(make(tsa), bytes(32), 1)


@pytest.mark.parametrize("token", [b"", b"not DER at all", status_only("granted"), bytes(32)])
def test_token_info_refuses_what_is_not_a_token(token: bytes) -> None:
    with pytest.raises(TimestampError):
        timestamp.token_info(token)


# -- granted stamps in a catalog ---------------------------------------------------------------


def test_a_granted_checkpoint_token_verifies_with_openssl_over_the_checkpoints_note(
    cat: Catalog, live_tsa: LocalTSA, tmp_path: Path
) -> None:
    checkpoint_id = latest_checkpoint_id(cat)
    expected_note = cat.checkpoint().note
    before = datetime_now()
    result = cat.timestamp(url=live_tsa.url)
    assert result.granted == (f"checkpoint {checkpoint_id}",)
    assert result.failed == () and result.pending == 0 and result.offline is None
    assert result.checkpoint == expected_note

    (event,) = stamp_events(cat)
    details = event.details
    assert event.subject == "catalog"
    assert details["stamps"] == "checkpoint"
    assert details["checkpoint_id"] == checkpoint_id
    assert details["tsa_url"] == live_tsa.url
    note = checkpoint_note(cat, details["checkpoint_id"])
    assert note == expected_note
    assert details["sha256"] == hashlib.sha256(note.encode("utf-8")).hexdigest()

    token = base64.b64decode(details["token"], validate=True)
    token_file, note_file = tmp_path / "token.tsr", tmp_path / "checkpoint.note"
    token_file.write_bytes(token)
    note_file.write_bytes(note.encode("utf-8"))
    checked = live_tsa.verify(token_file, note_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Verification: OK" in checked.stdout

    info = timestamp.token_info(token)
    assert info.sha256 == hashlib.sha256(note.encode("utf-8")).hexdigest()
    assert info.policy == "1.2.3.4.1" == details["policy"]
    assert str(info.serial) == details["serial"]
    assert info.gen_time.tzinfo is not None
    assert before - dt.timedelta(minutes=1) <= info.gen_time <= datetime_now() + dt.timedelta(minutes=1)

    # The row in the queue is granted, with the same token; the log moved on past the stamp.
    (row,) = token_rows(cat)
    assert (row.status, row.subject_kind, row.subject, row.token) == (
        "granted", "checkpoint", str(checkpoint_id), details["token"],
    )  # fmt: skip
    assert latest_checkpoint_id(cat) > checkpoint_id
    assert cat.verify(record_event=False).ok


def datetime_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_an_artifact_time_stamp_stamps_its_sha256(cat: Catalog, live_tsa: LocalTSA, tmp_path: Path) -> None:
    sha = sha_of(tmp_path / "a.txt")
    result = cat.timestamp(url=live_tsa.url, artifacts=[sha])
    assert f"artifact {sha}" in result.granted
    assert len(result.granted) == 2 and result.pending == 0
    (event,) = [e for e in stamp_events(cat) if e.details["stamps"] == "artifact"]
    assert event.subject == sha
    assert event.details["sha256"] == sha and event.details["checkpoint_id"] is None
    token = base64.b64decode(event.details["token"], validate=True)
    assert timestamp.token_info(token).sha256 == sha
    token_file = tmp_path / "artifact.tsr"
    token_file.write_bytes(token)
    checked = verify_digest(live_tsa, token_file, sha)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Verification: OK" in checked.stdout
    # ... and over the artifact's stored bytes.
    checked = live_tsa.verify(token_file, cat.artifact_path(sha))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # another digest does not verify
    wrong = verify_digest(live_tsa, token_file, sha_of(tmp_path / "b.txt"))
    assert wrong.returncode != 0


def test_a_granted_stamp_is_not_asked_for_again(cat: Catalog, live_tsa: LocalTSA, tmp_path: Path) -> None:
    sha = sha_of(tmp_path / "a.txt")
    first = cat.timestamp(url=live_tsa.url, artifacts=[sha])
    assert f"artifact {sha}" in first.granted
    asked = live_tsa.requests
    second = cat.timestamp(url=live_tsa.url, artifacts=[sha])
    # Only the new checkpoint (the log grew by the stamps' events) is sent; the artifact is not.
    assert len(second.granted) == 1 and second.granted[0].startswith("checkpoint ")
    assert live_tsa.requests == asked + 1
    assert [e.details["stamps"] for e in stamp_events(cat)].count("artifact") == 1
    assert cat.verify(record_event=False).ok


def test_the_checkpoint_stamped_is_the_latest_covering_the_whole_log(
    cat: Catalog, live_tsa: LocalTSA, tmp_path: Path
) -> None:
    cat.timestamp(url=live_tsa.url)
    (tmp_path / "c.txt").write_text("third", encoding="utf-8")
    cat.add([tmp_path / "c.txt"])
    size = len(cat.history())
    result = cat.timestamp(url=live_tsa.url)
    (stamped,) = result.granted
    note = checkpoint_note(cat, int(stamped.split()[1]))
    assert note == result.checkpoint
    assert note.splitlines()[1] == str(size)


def test_unknown_artifacts_are_refused_before_anything_is_queued(cat: Catalog, live_tsa: LocalTSA) -> None:
    for bad in ["0" * 64, "not-a-digest", hashlib.sha256(b"never added").hexdigest().upper()]:
        with pytest.raises(NotFoundError):
            cat.timestamp(url=live_tsa.url, artifacts=[bad])
    assert token_rows(cat) == []
    assert stamp_events(cat) == []


# -- the queue: offline, then sent -------------------------------------------------------------


def test_requests_are_queued_while_the_tsa_is_down_and_sent_when_it_is_back(
    cat: Catalog, live_tsa: LocalTSA, tmp_path: Path
) -> None:
    checkpoint_id = latest_checkpoint_id(cat)
    sha = sha_of(tmp_path / "b.txt")
    live_tsa.down = True
    result = cat.timestamp(url=live_tsa.url, artifacts=[sha])
    assert result.granted == () and result.failed == ()
    assert result.pending == 2
    assert result.offline is not None and "HTTP 503" in result.offline
    assert stamp_events(cat) == []
    assert {(r.subject_kind, r.status) for r in token_rows(cat)} == {("checkpoint", "pending"), ("artifact", "pending")}
    first, second = token_rows(cat)
    assert first.subject_kind == "checkpoint" and "HTTP 503" in (first.error or "")
    assert second.error is None  # not sent: sending stops at the first that cannot be reached
    assert latest_checkpoint_id(cat) == checkpoint_id  # nothing was logged, so no new checkpoint
    assert cat.verify(record_event=False).ok

    live_tsa.down = False
    again = cat.timestamp(url=live_tsa.url)
    assert f"checkpoint {checkpoint_id}" in again.granted
    assert f"artifact {sha}" in again.granted
    assert again.pending == 0 and again.offline is None and again.failed == ()
    stamped = {(e.details["stamps"], e.details["checkpoint_id"]) for e in stamp_events(cat)}
    assert ("checkpoint", checkpoint_id) in stamped and ("artifact", None) in stamped
    assert token_rows(cat, "pending") == []
    assert cat.verify(record_event=False).ok


def test_asking_twice_for_the_same_checkpoint_queues_it_once(cat: Catalog, live_tsa: LocalTSA) -> None:
    live_tsa.down = True
    first = cat.timestamp(url=live_tsa.url)
    second = cat.timestamp(url=live_tsa.url)
    assert first.pending == second.pending == 1
    rows = token_rows(cat)
    assert len(rows) == 1 and rows[0].status == "pending"
    live_tsa.down = False
    third = cat.timestamp(url=live_tsa.url)
    assert third.granted == (f"checkpoint {rows[0].subject}",)
    assert len(stamp_events(cat)) == 1


def test_an_unreachable_tsa_queues_the_request(cat: Catalog) -> None:
    url = closed_port_url()
    result = cat.timestamp(url=url, timeout=5)
    assert result.granted == () and result.failed == ()
    assert result.pending == 1
    assert result.offline is not None and "cannot be reached" in result.offline
    assert stamp_events(cat) == []
    (row,) = token_rows(cat)
    assert row.status == "pending" and row.tsa_url == url


def test_sending_stops_at_the_first_unreachable_request(cat: Catalog, hostile: HostileTSA, tmp_path: Path) -> None:
    hostile.answer = lambda body: http_response(b"busy", status="503 Service Unavailable")
    shas = [sha_of(tmp_path / "a.txt"), sha_of(tmp_path / "b.txt")]
    result = cat.timestamp(url=hostile.url, artifacts=shas, timeout=5)
    assert result.pending == 3 and "HTTP 503" in (result.offline or "")
    assert len(hostile.bodies) == 1  # the others were not tried
    assert hostile.content_types == ["application/timestamp-query"]


def test_a_request_queued_for_an_unreachable_url_does_not_block_a_working_tsa(cat: Catalog, live_tsa: LocalTSA) -> None:
    checkpoint_id = latest_checkpoint_id(cat)
    queued = cat.timestamp(url=closed_port_url(), timeout=5)
    assert queued.pending == 1
    result = cat.timestamp(url=live_tsa.url, timeout=5)
    assert f"checkpoint {checkpoint_id}" in result.granted
    assert result.pending == 0


def test_an_http_error_from_the_tsa_queues_the_request(cat: Catalog, hostile: HostileTSA) -> None:
    hostile.answer = lambda body: http_response(b"oops", status="500 Internal Server Error")
    result = cat.timestamp(url=hostile.url, timeout=5)
    assert result.pending == 1 and "HTTP 500" in (result.offline or "")
    assert result.failed == () and stamp_events(cat) == []


# -- which TSA ---------------------------------------------------------------------------------


def test_without_a_tsa_url_anywhere_it_is_an_input_error(cat: Catalog) -> None:
    with pytest.raises(InputError, match="Time-Stamp Authority"):
        cat.timestamp()
    assert token_rows(cat) == []


def test_the_environment_variable_names_the_tsa(
    cat: Catalog, live_tsa: LocalTSA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TSA_ENV, live_tsa.url)
    result = cat.timestamp()
    assert len(result.granted) == 1 and result.pending == 0
    assert stamp_events(cat)[0].details["tsa_url"] == live_tsa.url


def write_tsa_into_toml(directory: Path, url: str) -> None:
    config = directory / "catalog.toml"
    config.write_text(config.read_text(encoding="utf-8") + f'\n[timestamp]\nurl = "{url}"\n', encoding="utf-8")


def test_catalog_toml_names_the_tsa(tmp_path: Path, live_tsa: LocalTSA) -> None:
    directory = tmp_path / "catalog"
    Catalog.init(directory, operator=OPERATOR).close()
    write_tsa_into_toml(directory, live_tsa.url)
    with Catalog.open(directory) as reopened:
        assert reopened.config.tsa_url == live_tsa.url
        result = reopened.timestamp()
        assert len(result.granted) == 1 and result.pending == 0
        assert stamp_events(reopened)[0].details["tsa_url"] == live_tsa.url


def test_the_argument_comes_before_the_environment_which_comes_before_catalog_toml(
    tmp_path: Path, live_tsa: LocalTSA, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "catalog"
    Catalog.init(directory, operator=OPERATOR).close()
    write_tsa_into_toml(directory, closed_port_url())
    with Catalog.open(directory) as reopened:
        monkeypatch.setenv(TSA_ENV, live_tsa.url)
        assert len(reopened.timestamp(timeout=5).granted) == 1  # the environment, not the file
        monkeypatch.setenv(TSA_ENV, closed_port_url())
        assert len(reopened.timestamp(url=live_tsa.url, timeout=5).granted) == 1  # the argument
        assert {e.details["tsa_url"] for e in stamp_events(reopened)} == {live_tsa.url}


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/tsa", "file:///tmp/tsa", "127.0.0.1:8080/tsa", "http://", "http://a b/"]
)
def test_a_tsa_url_that_is_not_http_is_refused(cat: Catalog, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError):
        cat.timestamp(url=url)
    monkeypatch.setenv(TSA_ENV, url)
    with pytest.raises(InputError):
        cat.timestamp()
    assert token_rows(cat) == []


def test_a_non_http_url_in_catalog_toml_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "catalog"
    Catalog.init(directory, operator=OPERATOR).close()
    write_tsa_into_toml(directory, "file:///etc/passwd")
    with Catalog.open(directory) as reopened:
        with pytest.raises(InputError):
            reopened.timestamp()
        assert token_rows(reopened) == []


# -- hostile answers ---------------------------------------------------------------------------


def _garbage(tsa: LocalTSA, body: bytes) -> bytes:
    return http_response(b"\x30\x82\xff\xff this is no DER" * 20)


def _rejection(tsa: LocalTSA, body: bytes) -> bytes:
    return http_response(status_only("rejection"))


def _openssl_rejection(tsa: LocalTSA, body: bytes) -> bytes:
    return http_response(openssl_rejection(tsa))


def _granted_without_token(tsa: LocalTSA, body: bytes) -> bytes:
    return http_response(status_only("granted"))


def _other_digest(tsa: LocalTSA, body: bytes) -> bytes:
    # A genuine, granted response -- for other data.
    return http_response(real_response(tsa, hashlib.sha256(b"some other data").digest()))


def _other_nonce(tsa: LocalTSA, body: bytes) -> bytes:
    # A genuine, granted response for the very digest asked for -- but another request's nonce
    # (a replayed answer).
    asked = tsp.TimeStampReq.load(body)
    digest = asked["message_imprint"]["hashed_message"].native
    return http_response(real_response(tsa, digest, nonce=asked["nonce"].native + 1))


def _oversized(tsa: LocalTSA, body: bytes) -> bytes:
    return http_response(b"\x00" * (MAX_RESPONSE_BYTES + 1))


def _oversized_genuine(tsa: LocalTSA, body: bytes) -> bytes:
    # The genuine answer, with more than a MiB of padding after it.
    asked = tsp.TimeStampReq.load(body)
    genuine = real_response(tsa, asked["message_imprint"]["hashed_message"].native, asked["nonce"].native)
    return http_response(genuine + b"\x00" * MAX_RESPONSE_BYTES)


#: What each answer is, and what the refusal must say (None: the wording is checked by
#: test_a_refusal_says_the_tsas_status_and_text).
HOSTILE: dict[str, tuple[Callable[[LocalTSA, bytes], bytes], str | None]] = {
    "garbage": (_garbage, "not a time-stamp response"),
    "rejection": (_rejection, None),
    "openssl-rejection": (_openssl_rejection, None),
    "granted-without-token": (_granted_without_token, None),
    "other-digest": (_other_digest, "another digest"),
    "other-nonce": (_other_nonce, "nonce"),
    "oversized": (_oversized, "larger"),
    "oversized-genuine": (_oversized_genuine, "larger"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_answer_is_refused_and_nothing_is_logged(
    kind: str, cat: Catalog, hostile: HostileTSA, live_tsa: LocalTSA
) -> None:
    make, message = HOSTILE[kind]
    hostile.answer = lambda body: make(live_tsa, body)
    checkpoint_id = latest_checkpoint_id(cat)
    events = len(cat.history())
    result = cat.timestamp(url=hostile.url, timeout=10)
    assert result.granted == () and result.pending == 0 and result.offline is None
    (failure,) = result.failed
    assert failure.startswith(f"checkpoint {checkpoint_id}: ")
    assert message is None or message in failure
    assert stamp_events(cat) == [] and len(cat.history()) == events
    (row,) = token_rows(cat)
    assert row.status == "failed" and row.token is None and row.error and row.error in failure
    assert cat.verify(record_event=False).ok
    # A refused request is asked for again next time, and a genuine TSA grants it.
    retried = cat.timestamp(url=live_tsa.url)
    assert retried.granted == (f"checkpoint {checkpoint_id}",)
    assert cat.verify(record_event=False).ok


def _bad_chunked(tsa: LocalTSA, body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz-not-a-size\r\n\r\n"


def _not_http(tsa: LocalTSA, body: bytes) -> bytes:
    return b"SSH-2.0-OpenSSH_9.0 this is not an HTTP server\r\n\r\n"


@pytest.mark.parametrize("make", [_bad_chunked, _not_http], ids=["malformed-chunked-body", "not-http"])
def test_a_broken_http_answer_is_neither_a_crash_nor_a_stamp(
    make: Callable[[LocalTSA, bytes], bytes], cat: Catalog, hostile: HostileTSA, live_tsa: LocalTSA
) -> None:
    hostile.answer = lambda body: make(live_tsa, body)
    result = cat.timestamp(url=hostile.url, timeout=5)
    assert result.granted == ()
    assert result.pending + len(result.failed) == 1
    assert stamp_events(cat) == []
    with pytest.raises((NetworkError, TimestampError)):
        timestamp.stamp_digest(hostile.url, bytes(32), timeout=5)


# -- verify ------------------------------------------------------------------------------------


@pytest.fixture
def stamped(cat: Catalog, live_tsa: LocalTSA, tmp_path: Path) -> tuple[Catalog, int, str]:
    """The catalog with its checkpoint and an artifact time-stamped; the checkpoint's id and the
    artifact's SHA-256."""
    checkpoint_id = latest_checkpoint_id(cat)
    sha = sha_of(tmp_path / "a.txt")
    result = cat.timestamp(url=live_tsa.url, artifacts=[sha])
    assert len(result.granted) == 2
    return cat, checkpoint_id, sha


def stamp_findings(catalog: Catalog) -> list[TimestampMismatch]:
    report = catalog.verify(record_event=False)
    return [f for f in report.findings if isinstance(f, TimestampMismatch)]


def catalog_dir(catalog: Catalog) -> Path:
    return Path(catalog.path)


def test_verify_passes_after_time_stamps_are_granted(stamped: tuple[Catalog, int, str]) -> None:
    catalog, _, _ = stamped
    report = catalog.verify(record_event=False)
    assert report.ok, report.findings


def test_a_changed_note_of_a_stamped_checkpoint_is_found(stamped: tuple[Catalog, int, str]) -> None:
    catalog, checkpoint_id, _ = stamped
    directory = catalog_dir(catalog)
    note = checkpoint_note(catalog, checkpoint_id)
    catalog.close()
    sql(
        directory,
        "UPDATE checkpoint SET note = :note WHERE id = :id",
        note=note.replace("\n", "\n ", 1),
        id=checkpoint_id,
    )
    with Catalog.open(directory) as again:
        found = stamp_findings(again)
    assert [f.subject for f in found] == [f"checkpoint {checkpoint_id}"]
    assert "other bytes" in found[0].reason
    assert str(found[0]).startswith(f"time-stamp of checkpoint {checkpoint_id}: ")


def test_a_token_swapped_for_a_genuine_token_of_other_data_is_found(
    stamped: tuple[Catalog, int, str], live_tsa: LocalTSA
) -> None:
    catalog, checkpoint_id, _ = stamped
    directory = catalog_dir(catalog)
    other = base64.b64encode(timestamp.stamp(live_tsa.url, b"other data")).decode("ascii")
    catalog.close()
    sql(
        directory,
        "UPDATE timestamp_token SET token = :token WHERE subject_kind = 'checkpoint' AND subject = :subject",
        token=other,
        subject=str(checkpoint_id),
    )
    with Catalog.open(directory) as again:
        report = again.verify(record_event=False)
    assert [type(f) for f in report.findings] == [TimestampMismatch], report.findings  # only that
    (finding,) = report.findings
    assert finding.subject == f"checkpoint {checkpoint_id}"  # type: ignore[attr-defined]
    assert "other bytes" in finding.reason  # type: ignore[attr-defined]


def test_an_artifact_token_swapped_is_found(stamped: tuple[Catalog, int, str], live_tsa: LocalTSA) -> None:
    catalog, _, sha = stamped
    directory = catalog_dir(catalog)
    other = base64.b64encode(timestamp.stamp(live_tsa.url, b"not the artifact")).decode("ascii")
    catalog.close()
    sql(directory, "UPDATE timestamp_token SET token = :token WHERE subject_kind = 'artifact'", token=other)
    with Catalog.open(directory) as again:
        found = stamp_findings(again)
    assert [f.subject for f in found] == [f"artifact {sha}"]


@pytest.mark.parametrize(
    "token",
    ["this is not base64!", base64.b64encode(b"base64, but no DER token").decode("ascii"), ""],
    ids=["not-base64", "not-der", "empty"],
)
def test_a_token_that_cannot_be_read_is_found(stamped: tuple[Catalog, int, str], token: str) -> None:
    catalog, checkpoint_id, _ = stamped
    directory = catalog_dir(catalog)
    catalog.close()
    sql(
        directory,
        "UPDATE timestamp_token SET token = :token WHERE subject_kind = 'checkpoint' AND subject = :subject",
        token=token,
        subject=str(checkpoint_id),
    )
    with Catalog.open(directory) as again:
        found = stamp_findings(again)
    assert [f.subject for f in found] == [f"checkpoint {checkpoint_id}"]
    assert "cannot be read" in found[0].reason


# -- export ------------------------------------------------------------------------------------


def test_a_bag_carries_each_checkpoint_time_stamp_openssl_verifies(
    stamped: tuple[Catalog, int, str], live_tsa: LocalTSA, tmp_path: Path
) -> None:
    catalog, checkpoint_id, _ = stamped
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    stamps_dir = bag / "data" / "log" / "timestamps"
    note, tsr = stamps_dir / "0001.note", stamps_dir / "0001.tsr"
    assert note.is_file() and tsr.is_file()
    assert note.read_bytes() == checkpoint_note(catalog, checkpoint_id).encode("utf-8")
    checked = live_tsa.verify(tsr, note)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Verification: OK" in checked.stdout
    # Only what the CA vouches for: the same check with only -CAfile, as the docs show it.
    plain = openssl("ts", "-verify", "-in", tsr, "-token_in", "-data", note, "-CAfile", live_tsa.ca_file)
    assert plain.returncode == 0, plain.stdout + plain.stderr

    contents = json.loads((bag / "data" / "contents.json").read_text(encoding="utf-8"))
    listed = contents["log"]["timestamps"]
    assert listed == [
        {"note": "data/log/timestamps/0001.note", "token": "data/log/timestamps/0001.tsr", "tsa_url": live_tsa.url}
    ]
    # The artifact's token is in the custody log, not in timestamps/ (which holds checkpoints).
    assert sorted(p.name for p in stamps_dir.iterdir()) == ["0001.note", "0001.tsr"]
    manifest = (bag / "manifest-sha256.txt").read_text(encoding="utf-8")
    assert "data/log/timestamps/0001.tsr" in manifest and "data/log/timestamps/0001.note" in manifest


def test_every_listed_time_stamp_of_a_bag_is_there_and_verifies(
    cat: Catalog, live_tsa: LocalTSA, tmp_path: Path
) -> None:
    sha = sha_of(tmp_path / "b.txt")
    cat.timestamp(url=live_tsa.url, artifacts=[sha])
    (tmp_path / "c.txt").write_text("third", encoding="utf-8")
    cat.add([tmp_path / "c.txt"])
    cat.timestamp(url=live_tsa.url)
    bag = tmp_path / "bag"
    cat.export(bag, format="bagit")
    listed = json.loads((bag / "data" / "contents.json").read_text(encoding="utf-8"))["log"]["timestamps"]
    assert len(listed) == 2
    assert len({s["note"] for s in listed}) == 2
    present = sorted(p.relative_to(bag).as_posix() for p in (bag / "data" / "log" / "timestamps").iterdir())
    assert present == sorted([s["note"] for s in listed] + [s["token"] for s in listed])
    for entry in listed:
        assert re.fullmatch(r"data/log/timestamps/\d{4}\.note", entry["note"])
        assert entry["token"] == entry["note"][: -len(".note")] + ".tsr"
        checked = live_tsa.verify(bag / entry["token"], bag / entry["note"])
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_bag_without_time_stamps_lists_none(cat: Catalog, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    cat.export(bag, format="bagit")
    assert json.loads((bag / "data" / "contents.json").read_text(encoding="utf-8"))["log"]["timestamps"] == []
    assert not (bag / "data" / "log" / "timestamps").exists()


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def cli_catalog(tmp_path: Path) -> Path:
    directory = tmp_path / "catalog"
    with Catalog.init(directory, operator=OPERATOR) as made:
        (tmp_path / "a.txt").write_text("first file", encoding="utf-8")
        made.add([tmp_path / "a.txt"])
    return directory


def test_cli_checkpoint_timestamp_prints_the_note_and_what_was_stamped(
    cli_catalog: Path, live_tsa: LocalTSA, run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    sha = sha_of(tmp_path / "a.txt")
    result = run_cli("checkpoint", "--catalog", cli_catalog, "--timestamp", "--tsa", live_tsa.url, "--artifact", sha)
    assert result.code == 0, result.err
    with Catalog.open(cli_catalog) as opened:
        assert result.out == opened.checkpoint().note
        events = stamp_events(opened)
        assert opened.verify(record_event=False).ok
    lines = result.err.splitlines()
    assert any(line.startswith("time-stamped: checkpoint ") for line in lines)
    assert f"time-stamped: artifact {sha}" in lines
    assert len(events) == 2


def test_cli_checkpoint_timestamp_with_the_tsa_down_queues_and_exits_1(
    cli_catalog: Path, live_tsa: LocalTSA, run_cli: Callable[..., Any]
) -> None:
    live_tsa.down = True
    result = run_cli("checkpoint", "--catalog", cli_catalog, "--timestamp", "--tsa", live_tsa.url)
    assert result.code == 1
    assert "1 time-stamp request(s) queued" in result.err and "HTTP 503" in result.err
    assert "checkpoint --timestamp" in result.err
    with Catalog.open(cli_catalog) as opened:
        assert result.out == opened.checkpoint().note  # the note is printed all the same
        assert stamp_events(opened) == []
    live_tsa.down = False
    again = run_cli("checkpoint", "--catalog", cli_catalog, "--timestamp", "--tsa", live_tsa.url)
    assert again.code == 0, again.err
    assert "time-stamped: checkpoint " in again.err and "queued" not in again.err


def test_cli_checkpoint_timestamp_refused_by_the_tsa_exits_1(
    cli_catalog: Path, hostile: HostileTSA, run_cli: Callable[..., Any]
) -> None:
    hostile.answer = lambda body: http_response(status_only("rejection"))
    result = run_cli("checkpoint", "--catalog", cli_catalog, "--timestamp", "--tsa", hostile.url)
    assert result.code == 1
    assert "refused by the TSA: checkpoint " in result.err


def test_cli_checkpoint_timestamp_takes_the_tsa_from_the_environment(
    cli_catalog: Path, live_tsa: LocalTSA, run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TSA_ENV, live_tsa.url)
    result = run_cli("checkpoint", "--catalog", cli_catalog, "--timestamp", "--json")
    assert result.code == 0, result.err
    with Catalog.open(cli_catalog) as opened:
        assert json.loads(result.out)["note"] == opened.checkpoint().note
    assert "time-stamped: checkpoint " in result.err


def test_cli_checkpoint_timestamp_without_a_tsa_is_a_usage_error(
    cli_catalog: Path, run_cli: Callable[..., Any]
) -> None:
    result = run_cli("checkpoint", "--catalog", cli_catalog, "--timestamp")
    assert result.code == 2
    assert result.out == ""
    assert len(result.err.strip().splitlines()) == 1 and "Time-Stamp Authority" in result.err


@pytest.mark.parametrize(
    "extra", [["--tsa", "http://127.0.0.1:9/tsa"], ["--artifact", "0" * 64]], ids=["tsa", "artifact"]
)
def test_cli_tsa_and_artifact_without_timestamp_are_a_usage_error(
    cli_catalog: Path, run_cli: Callable[..., Any], extra: list[str]
) -> None:
    result = run_cli("checkpoint", "--catalog", cli_catalog, *extra)
    assert result.code == 2
    assert result.out == ""
    err = result.err.strip().splitlines()
    assert len(err) == 1 and "--timestamp" in err[0]
