"""C2PA Content Credentials, read and validated offline.

The credentials are real: a certificate authority and a signing certificate made here with
``cryptography`` (ES256, P-256, with the key usages C2PA's certificate profile asks for), and
JPEG, PNG and MP4 files made with Pillow and PyAV, signed here with c2pa-python's Builder.  The
tampered copies change real bytes: a byte of the JPEG's scan data (a changed picture), a hash
inside the signed claim, the manifest store's boxes.  The remote manifest is asked of a real
HTTP server on this machine, which counts what it is asked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import av
import c2pa  # type: ignore[import-untyped]
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from evidence_catalog.analysis import CredentialState
from evidence_catalog.errors import InputError
from evidence_catalog.extract import credentials as reader
from evidence_catalog.extract.credentials import CredentialsResult, read_credentials, supported
from tests.tsa_server import LocalTSA

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


# -- a certificate authority, a signer, media ------------------------------------------------------


@attrs.frozen
class Pki:
    """A test CA (its certificate as PEM) and a signer it issued (chain PEM, key PEM)."""

    ca_pem: bytes
    chain_pem: bytes
    key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Org"),
        ]
    )


def _usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signing,
        crl_sign=not signing,
        encipher_only=False,
        decipher_only=False,
    )


def make_pki(name: str = "Test Root CA", *, not_after: dt.datetime | None = None, ocsp: str | None = None) -> Pki:
    """A root CA and an end-entity signing certificate as C2PA's profile wants them: v3, the
    signer not self-signed, its key usage digitalSignature (critical), an allowed extended key
    usage (emailProtection), an organization in its subject, key identifiers both ways."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(signing=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateBuilder()
    if ocsp is not None:  # where to ask whether the certificate was revoked
        responder = x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp))
        builder = builder.add_extension(x509.AuthorityInformationAccess([responder]), critical=False)
    signer = (
        builder.subject_name(_name("Test Signer"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(not_after or NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signing=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return Pki(
        ca_pem=ca.public_bytes(pem),
        chain_pem=signer.public_bytes(pem) + ca.public_bytes(pem),
        key_pem=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def _picture() -> Image.Image:
    image = Image.new("RGB", (64, 48), (10, 120, 200))
    for x in range(64):
        image.putpixel((x, x % 48), (255, 0, 0))
    return image


def make_jpeg() -> bytes:
    out = io.BytesIO()
    _picture().save(out, "JPEG", quality=90)
    return out.getvalue()


def make_png() -> bytes:
    out = io.BytesIO()
    _picture().save(out, "PNG")
    return out.getvalue()


def make_mp4() -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for number in range(10):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([16 + 20 * number]) * plane.buffer_size)
            frame.pts = number
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def manifest(title: str = "test image", *, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    actions = {"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": CAPTURE}]}}
    return {
        "claim_generator_info": [{"name": "evidence-catalog-test", "version": "1.0"}],
        "title": title,
        "assertions": [actions, *(extra or [])],
    }


def sign(
    pki: Pki,
    source: bytes,
    media_type: str,
    definition: dict[str, Any] | None = None,
    *,
    remote_url: str | None = None,
    ingredient: bytes | None = None,
    tsa_url: str | None = None,
) -> tuple[bytes, bytes]:
    """*source* signed with c2pa's Builder: the signed file, and the manifest store the Builder
    says it made."""
    context = c2pa.Context.from_dict(
        {"verify": {"verify_after_sign": False}, "builder": {"thumbnail": {"enabled": False}}}
    )
    tsa = tsa_url.encode("ascii") if tsa_url else None
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, pki.chain_pem, pki.key_pem, tsa)
    with context, c2pa.Signer.from_info(info) as signer, c2pa.Builder(definition or manifest(), context) as builder:
        if remote_url is not None:
            builder.set_no_embed()
            builder.set_remote_url(remote_url)
        if ingredient is not None:
            builder.add_ingredient(
                {"title": "parent.jpg", "relationship": "parentOf", "label": "parent"},
                media_type,
                io.BytesIO(ingredient),
            )
        out = io.BytesIO()
        store = builder.sign(signer, media_type, io.BytesIO(source), out)
    return out.getvalue(), bytes(store)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def signed(pki: Pki) -> dict[str, tuple[bytes, bytes]]:
    """Signed JPEG, PNG and MP4 files, each with the store the Builder made."""
    return {
        "image/jpeg": sign(pki, make_jpeg(), "image/jpeg"),
        "image/png": sign(pki, make_png(), "image/png"),
        "video/mp4": sign(pki, make_mp4(), "video/mp4"),
    }


def read(tmp_path: Path, data: bytes, media_type: str, trust_anchors: bytes | None = None) -> CredentialsResult:
    """*data* written to a file of its own and read, with a work folder of its own."""
    folder = tmp_path / f"case-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    path = folder / "file"
    path.write_bytes(data)
    work = folder / "work"
    work.mkdir()
    return read_credentials(path, media_type, work=work, trust_anchors=trust_anchors)


def _jpeg_scan(data: bytes) -> int:
    """The offset of the first byte of a JPEG's entropy-coded scan data."""
    start = data.index(b"\xff\xda")
    return start + 2 + struct.unpack(">H", data[start + 2 : start + 4])[0]


def _unhashed(media_type: str, data: bytes) -> list[range]:
    """The bytes of a signed file C2PA's hash binding leaves out (found by changing every byte
    of these files): the JPEG's manifest APP11 segment, the PNG's ``caBX`` chunk, the MP4's
    C2PA ``uuid`` box and its ``ftyp`` box (an exclusion of C2PA's BMFF hash)."""
    if media_type == "image/jpeg":
        start = data.index(b"\xff\xeb")
        return [range(start, start + 2 + struct.unpack(">H", data[start + 2 : start + 4])[0])]
    if media_type == "image/png":
        start = data.index(b"caBX") - 4
        return [range(start, start + 12 + struct.unpack(">I", data[start : start + 4])[0])]
    found, position = [], 0
    while position + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        if kind in (b"ftyp", b"uuid"):
            found.append(range(position, position + size))
        position += size
    return found


# -- outcomes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("media_type", ["image/jpeg", "image/png", "video/mp4"])
def test_an_intact_credential_is_valid_without_trust_anchors(
    tmp_path: Path, signed: dict[str, tuple[bytes, bytes]], media_type: str
) -> None:
    data, store = signed[media_type]
    result = read(tmp_path, data, media_type)
    found = result.credentials
    assert found.state is CredentialState.VALID
    # c2pa's one failure: the signer is on no trust list.  It is kept, and does not invalidate.
    assert found.failure_codes == ("signingCredential.untrusted",)
    assert found.signer == "Test Signer (Test Org)"
    assert found.claim_generator == "evidence-catalog-test 1.0"
    assert found.actions == ("c2pa.created",)
    assert found.ingredients == ()
    assert found.active_manifest is not None and found.active_manifest.startswith("urn:c2pa:")
    assert found.signed_at is None  # no RFC 3161 time-stamp: no time is claimed
    assert found.errors == () and found.manifest_store_sha256 is None
    # The manifest store, verbatim: the bytes the Builder made, as they lie in the file.
    assert result.manifest_store is not None and result.manifest_store.parent.name == "work"
    assert result.manifest_store.read_bytes() == store and store in data
    assert result.parameters["c2pa.trust_anchors_sha256"] == "none"
    assert result.parameters["c2pa.remote_manifest_fetch"] == "false"
    assert result.parameters["c2pa.ocsp_fetch"] == "false"
    [tool] = result.tools
    assert tool.name == "c2pa-python" and tool.version == f"0.38.1 (c2pa-rs {c2pa.sdk_version()})"


@pytest.mark.parametrize("media_type", ["image/jpeg", "image/png", "video/mp4"])
def test_a_signer_chaining_to_the_trust_anchors_is_trusted(
    tmp_path: Path, pki: Pki, signed: dict[str, tuple[bytes, bytes]], media_type: str
) -> None:
    data, store = signed[media_type]
    result = read(tmp_path, data, media_type, trust_anchors=pki.ca_pem)
    assert result.credentials.state is CredentialState.TRUSTED
    assert result.credentials.failure_codes == () and result.credentials.errors == ()
    assert result.manifest_store is not None and result.manifest_store.read_bytes() == store
    assert result.parameters["c2pa.trust_anchors_sha256"] == hashlib.sha256(pki.ca_pem).hexdigest()


def test_another_authority_as_trust_anchor_leaves_it_valid(
    tmp_path: Path, signed: dict[str, tuple[bytes, bytes]]
) -> None:
    data, _ = signed["image/jpeg"]
    other = make_pki("Another Root CA")
    result = read(tmp_path, data, "image/jpeg", trust_anchors=other.ca_pem)
    assert result.credentials.state is CredentialState.VALID
    assert result.credentials.failure_codes == ("signingCredential.untrusted",)


def test_a_changed_picture_is_invalid(tmp_path: Path, pki: Pki, signed: dict[str, tuple[bytes, bytes]]) -> None:
    data, store = signed["image/jpeg"]
    at = _jpeg_scan(data) + 40
    changed = data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]
    before = Image.open(io.BytesIO(data)).convert("RGB").tobytes()
    after = Image.open(io.BytesIO(changed)).convert("RGB").tobytes()
    assert before != after  # the picture itself changed
    result = read(tmp_path, changed, "image/jpeg", trust_anchors=pki.ca_pem)
    assert result.credentials.state is CredentialState.INVALID
    assert "assertion.dataHash.mismatch" in result.credentials.failure_codes
    # What the credential says is still read and shown; the store is kept, unchanged.
    assert result.credentials.signer == "Test Signer (Test Org)" and result.credentials.actions == ("c2pa.created",)
    assert result.manifest_store is not None and result.manifest_store.read_bytes() == store


def test_a_changed_png_is_invalid(tmp_path: Path, signed: dict[str, tuple[bytes, bytes]]) -> None:
    data, _ = signed["image/png"]
    at = data.index(b"IDAT") + 10
    result = read(tmp_path, data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :], "image/png")
    assert result.credentials.state is CredentialState.INVALID
    assert "assertion.dataHash.mismatch" in result.credentials.failure_codes


def test_a_changed_video_is_invalid(tmp_path: Path, pki: Pki, signed: dict[str, tuple[bytes, bytes]]) -> None:
    data, _ = signed["video/mp4"]
    at = data.index(b"mdat") + 20
    result = read(tmp_path, data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :], "video/mp4", trust_anchors=pki.ca_pem)
    assert result.credentials.state is CredentialState.INVALID
    assert "assertion.bmffHash.mismatch" in result.credentials.failure_codes


def test_a_claim_changed_after_signing_is_invalid(tmp_path: Path, signed: dict[str, tuple[bytes, bytes]]) -> None:
    """One bit of a hash inside the signed claim: the CBOR still reads, the signature fails."""
    data, store = signed["image/jpeg"]
    claim = store.index(b"c2pa.claim.v2")
    at = data.index(store) + store.index(b"dhashX ", claim) + 7 + 5
    result = read(tmp_path, data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :], "image/jpeg")
    assert result.credentials.state is CredentialState.INVALID
    assert "claimSignature.mismatch" in result.credentials.failure_codes


def test_a_corrupt_manifest_store_is_unreadable_and_kept(
    tmp_path: Path, signed: dict[str, tuple[bytes, bytes]]
) -> None:
    """Boxes overwritten: c2pa cannot read the store at all, so there is no verdict to give --
    ``unreadable``, with c2pa's reason, never ``none``; the corrupt store is kept as it lies."""
    data, store = signed["image/jpeg"]
    at = data.index(store) + 200
    corrupt = data[:at] + b"\xff" * 40 + data[at + 40 :]
    result = read(tmp_path, corrupt, "image/jpeg")
    assert result.credentials.state is CredentialState.UNREADABLE
    assert result.credentials.errors[0].startswith("c2pa could not read the manifest store: ")
    assert result.manifest_store is not None
    assert result.manifest_store.read_bytes() == corrupt[data.index(store) : data.index(store) + len(store)]


def test_a_store_over_several_jpeg_segments_is_joined(tmp_path: Path, pki: Pki) -> None:
    """A store over 64 KiB takes several APP11 segments, each repeating the box header: the
    store kept is the one the Builder made, joined as c2pa joins it.  The ingredient (a signed
    JPEG) is named, and the action that opened it."""
    parent, _ = sign(pki, make_jpeg(), "image/jpeg")
    padding = {"label": "org.example.padding", "data": {"text": "x" * 100_000}}
    opened = {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}}
    definition = manifest("child", extra=[padding])
    definition["assertions"][0] = {"label": "c2pa.actions", "data": {"actions": [opened]}}
    data, store = sign(pki, make_jpeg(), "image/jpeg", definition, ingredient=parent)
    assert data.count(b"\xff\xeb") >= 2 and store not in data
    result = read(tmp_path, data, "image/jpeg", trust_anchors=pki.ca_pem)
    assert result.credentials.state is CredentialState.TRUSTED, result.credentials
    assert result.credentials.ingredients == ("parent.jpg",)
    assert result.credentials.actions == ("c2pa.opened",)
    assert result.manifest_store is not None and result.manifest_store.read_bytes() == store


def test_a_certificate_is_judged_at_a_trusted_time_stamp_else_at_reading(tmp_path: Path) -> None:
    """A certificate valid when it signed, expired when read: without a time-stamp, c2pa judges
    it at the time of reading, and the credential once trusted is invalid.  With an RFC 3161
    time-stamp (from a local time-stamp authority) the signature's time is read; the
    certificate is judged at it when the time-stamp authority chains to the trust anchors,
    else at the time of reading again.  (The parameters say so.)"""
    expiring = make_pki(not_after=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3))
    with LocalTSA() as tsa:
        stamped, _ = sign(expiring, make_jpeg(), "image/jpeg", tsa_url=tsa.url)
        tsa_root = (tsa.dir / "ca.pem").read_bytes()
    unstamped, _ = sign(expiring, make_jpeg(), "image/jpeg")
    both = expiring.ca_pem + tsa_root
    before = [read(tmp_path, data, "image/jpeg", trust_anchors=both) for data in (unstamped, stamped)]
    time.sleep(4)
    after = read(tmp_path, unstamped, "image/jpeg", trust_anchors=both)
    after_stamped = read(tmp_path, stamped, "image/jpeg", trust_anchors=both)
    after_untrusted_stamp = read(tmp_path, stamped, "image/jpeg", trust_anchors=expiring.ca_pem)
    assert [b.credentials.state for b in before] == [CredentialState.TRUSTED, CredentialState.TRUSTED]
    assert after.credentials.state is CredentialState.INVALID
    assert "signingCredential.expired" in after.credentials.failure_codes
    assert after_stamped.credentials.state is CredentialState.TRUSTED
    assert after_untrusted_stamp.credentials.state is CredentialState.INVALID
    assert "signingCredential.expired" in after_untrusted_stamp.credentials.failure_codes
    signed_at = after_stamped.credentials.signed_at
    assert before[0].credentials.signed_at is None
    assert signed_at is not None and signed_at.tzinfo is dt.UTC
    assert abs(signed_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert after.parameters["c2pa.certificate_time"] == reader.CERTIFICATE_TIME


@pytest.mark.parametrize(
    ("name", "data", "media_type"),
    [
        ("unsigned JPEG", make_jpeg, "image/jpeg"),
        ("unsigned PNG", make_png, "image/png"),
        ("unsigned MP4", make_mp4, "video/mp4"),
        ("empty file", lambda: b"", "image/jpeg"),
        ("unsigned JPEG cut short", lambda: make_jpeg()[:300], "image/jpeg"),
        ("not an image", lambda: b"hello world\n" * 10, "image/jpeg"),
    ],
)
def test_no_manifest_is_none(tmp_path: Path, name: str, data: Callable[[], bytes], media_type: str) -> None:
    result = read(tmp_path, data(), media_type)
    assert result.credentials.state is CredentialState.NONE, name
    assert result.credentials.failure_codes == () and result.manifest_store is None
    assert not list((tmp_path / f"case-{len(list(tmp_path.iterdir())) - 1}" / "work").iterdir())


def test_a_signed_file_cut_short_is_never_none(tmp_path: Path, signed: dict[str, tuple[bytes, bytes]]) -> None:
    data, store = signed["image/jpeg"]
    tail_cut = read(tmp_path, data[:-100], "image/jpeg")
    assert tail_cut.credentials.state is CredentialState.INVALID
    assert "assertion.dataHash.mismatch" in tail_cut.credentials.failure_codes
    # Cut inside the picture: c2pa cannot parse the JPEG, yet the store is there.
    half = read(tmp_path, data[: len(data) * 9 // 10], "image/jpeg")
    assert half.credentials.state is CredentialState.UNREADABLE
    assert half.manifest_store is not None and half.manifest_store.read_bytes() == store


def test_a_marker_where_the_format_keeps_no_store_is_unreadable(
    tmp_path: Path, signed: dict[str, tuple[bytes, bytes]]
) -> None:
    """A C2PA store where c2pa does not look for one (here after a PNG's end) is no 'none'."""
    _, store = signed["image/jpeg"]
    result = read(tmp_path, make_png() + store, "image/png")
    assert result.credentials.state is CredentialState.UNREADABLE
    assert "yet the bytes hold a C2PA manifest store marker at offset" in result.credentials.errors[0]
    assert result.manifest_store is not None and result.manifest_store.read_bytes() == store


def test_the_same_file_reads_the_same(tmp_path: Path, pki: Pki, signed: dict[str, tuple[bytes, bytes]]) -> None:
    data, _ = signed["video/mp4"]
    first = read(tmp_path, data, "video/mp4", trust_anchors=pki.ca_pem)
    second = read(tmp_path, data, "video/mp4", trust_anchors=pki.ca_pem)
    assert first.credentials == second.credentials and first.parameters == second.parameters
    assert first.tools == second.tools
    assert first.manifest_store is not None and second.manifest_store is not None
    assert first.manifest_store.read_bytes() == second.manifest_store.read_bytes()


def test_trust_anchors_must_be_certificates(tmp_path: Path, pki: Pki) -> None:
    for bad in (b"not a certificate", pki.key_pem, pki.ca_pem + pki.key_pem, b"\xff\xfe"):
        with pytest.raises(InputError, match="trust_anchors"):
            read(tmp_path, make_jpeg(), "image/jpeg", trust_anchors=bad)


def test_supported_types_are_those_c2pa_reads() -> None:
    assert set(c2pa.Reader.get_supported_mime_types()) >= reader.MEDIA_TYPES
    assert supported("image/jpeg") and supported("video/mp4") and supported("Image/PNG; charset=binary")
    assert not supported("text/plain") and not supported("application/c2pa")


# -- offline --------------------------------------------------------------------------------------


class _Counting(http.server.BaseHTTPRequestHandler):
    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.asked.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server and the paths it is asked for."""
    handler = type("Handler", (_Counting,), {"asked": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.asked
    finally:
        server.shutdown()
        server.server_close()


def test_a_remote_manifest_is_not_fetched(tmp_path: Path, pki: Pki, listener: tuple[str, list[str]]) -> None:
    base, asked = listener
    data, _ = sign(pki, make_jpeg(), "image/jpeg", remote_url=f"{base}/manifest.c2pa")
    result = read(tmp_path, data, "image/jpeg", trust_anchors=pki.ca_pem)
    assert result.credentials.state is CredentialState.UNREADABLE
    assert result.credentials.errors[0].startswith("the manifest store is kept remotely and was not fetched")
    assert f"{base}/manifest.c2pa" in result.credentials.errors[0]
    assert asked == []


def _ask_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    offline = reader.settings
    online = offline(None)
    online["verify"]["remote_manifest_fetch"] = True
    online["verify"]["ocsp_fetch"] = True
    online["core"]["allowed_network_hosts"] = None
    monkeypatch.setattr(reader, "settings", lambda anchors: {**online, "trust": offline(anchors)["trust"]})


def test_no_revocation_responder_is_asked(
    tmp_path: Path, listener: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signing certificate that names an OCSP responder: it is not asked (and, as the
    control, it is when the reader is let online)."""
    base, asked = listener
    pki = make_pki(ocsp=f"{base}/ocsp")
    data, _ = sign(pki, make_jpeg(), "image/jpeg")
    result = read(tmp_path, data, "image/jpeg", trust_anchors=pki.ca_pem)
    assert result.credentials.state is CredentialState.TRUSTED and asked == []
    _ask_the_network(monkeypatch)
    read(tmp_path, data, "image/jpeg", trust_anchors=pki.ca_pem)
    assert len(asked) == 1  # an OCSP request by GET: the request itself, in base64, as the path


def test_the_listener_would_have_heard_a_fetch(
    tmp_path: Path, pki: Pki, listener: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control of the test above: with fetching allowed, the same file is fetched."""
    base, asked = listener
    data, _ = sign(pki, make_jpeg(), "image/jpeg", remote_url=f"{base}/manifest.c2pa")
    _ask_the_network(monkeypatch)
    result = read(tmp_path, data, "image/jpeg")
    assert asked == ["/manifest.c2pa"]
    assert result.credentials.state is CredentialState.UNREADABLE


# -- hostile files and a reader that fails ----------------------------------------------------------


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    media_type=st.sampled_from(["image/jpeg", "image/png", "video/mp4"]),
    position=st.integers(min_value=0),
    mask=st.integers(min_value=1, max_value=255),
)
def test_a_changed_byte_never_leaves_a_credential_intact(
    tmp_path: Path, pki: Pki, signed: dict[str, tuple[bytes, bytes]], media_type: str, position: int, mask: int
) -> None:
    """Any byte of a signed file changed: the reader never raises, and the credential is never
    valid or trusted -- unless the byte lies where the hash binding does not reach (the store's
    own box, whose padding and headers no hash covers, and what C2PA excludes)."""
    data, _ = signed[media_type]
    at = position % len(data)
    changed = data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]
    result = read(tmp_path, changed, media_type, trust_anchors=pki.ca_pem)
    if not any(at in unhashed for unhashed in _unhashed(media_type, data)):
        assert result.credentials.state not in (CredentialState.VALID, CredentialState.TRUSTED), at


def test_a_reader_that_hangs_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = tmp_path / "endless.jpg"
    os.mkfifo(pipe)
    monkeypatch.setattr(reader, "TIME_LIMIT_S", 2)
    work = tmp_path / "work"
    work.mkdir()
    result = read_credentials(pipe, "image/jpeg", work=work)
    assert result.credentials.state is CredentialState.UNREADABLE
    assert result.credentials.errors == (
        "the credentials reader did not finish within 2 s and was stopped; nothing was read",
    )
    assert result.manifest_store is None and result.tools[0].version is not None


def _probe_variant(tmp_path: Path, body: str, name: str = "read", following: str = "main") -> Path:
    """The probe's own script with its function *name* (up to the function *following*)
    replaced by *body*."""
    source = Path(reader.__file__).with_name("credentials_probe.py").read_text(encoding="utf-8")
    start = source.index(f"def {name}(")
    end = source.index(f"\ndef {following}(")
    variant = tmp_path / "credentials_probe.py"
    variant.write_text(source[:start] + body + source[end:], encoding="utf-8")
    return variant


def test_a_reader_that_crashes_is_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crash = "def read(path, media_type, settings):\n    import os, signal\n    os.kill(os.getpid(), signal.SIGSEGV)\n\n"
    monkeypatch.setattr(reader, "_PROBE", _probe_variant(tmp_path, crash))
    result = read(tmp_path, make_jpeg(), "image/jpeg")
    assert result.credentials.state is CredentialState.UNREADABLE
    assert result.credentials.errors == ("the credentials reader crashed (SIGSEGV) on this file; nothing was read",)


def test_a_reader_that_runs_out_of_memory_is_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hungry = "def read(path, media_type, settings):\n    return {'data': bytearray(4 << 30)}\n\n"
    monkeypatch.setattr(reader, "_PROBE", _probe_variant(tmp_path, hungry))
    result = read(tmp_path, make_jpeg(), "image/jpeg")
    assert result.credentials.state is CredentialState.UNREADABLE
    assert result.credentials.errors == ("the credentials reader ran out of its memory limit (1536 MiB) on this file",)


def test_without_c2pa_the_outcome_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = Path(reader.__file__).with_name("credentials_probe.py").read_text(encoding="utf-8")
    future = "from __future__ import annotations\n"
    variant = tmp_path / "credentials_probe.py"
    variant.write_text(source.replace(future, future + "import sys\nsys.modules['c2pa'] = None\n", 1), encoding="utf-8")
    monkeypatch.setattr(reader, "_PROBE", variant)
    result = read(tmp_path, make_jpeg(), "image/jpeg")
    assert result.credentials.state is CredentialState.UNREADABLE
    assert result.credentials.errors[0].startswith("c2pa could not be loaded, so nothing was read: ModuleNotFoundError")


def test_the_reader_runs_under_the_limits_it_states(tmp_path: Path) -> None:
    names = "resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_CORE, resource.RLIMIT_FSIZE"
    limits = f"[resource.getrlimit(r) for r in ({names})]"
    body = f"def read(path, media_type, settings):\n    return {{'limits': {limits}}}\n\n"
    variant = _probe_variant(tmp_path, body)
    command = [
        sys.executable,
        "-I",
        str(variant),
        str(tmp_path / "x"),
        "image/jpeg",
        str(reader.MEMORY_LIMIT_BYTES),
        "30",
    ]
    done = subprocess.run(command, input=b"{}", capture_output=True, check=True)
    limits = json.loads(done.stdout)["limits"]
    assert limits == [[reader.MEMORY_LIMIT_BYTES] * 2, [30, 31], [0, 0], [0, 0]]


def test_the_reader_is_told_to_stay_offline() -> None:
    config = reader.settings(b"PEM")
    assert config["verify"]["remote_manifest_fetch"] is False and config["verify"]["ocsp_fetch"] is False
    assert config["core"]["allowed_network_hosts"] == []
    assert config["trust"] == {"trust_anchors": "PEM", "user_anchors": None, "allowed_list": None, "trust_config": None}


def test_a_store_that_cannot_be_taken_leaves_the_outcome_and_says_so(
    tmp_path: Path, signed: dict[str, tuple[bytes, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = signed["image/jpeg"]
    lost = "def locate_store(path, media_type, notes):\n    return None, -1\n\n"
    monkeypatch.setattr(reader, "_PROBE", _probe_variant(tmp_path, lost, "locate_store", "_error_kind"))
    result = read(tmp_path, data, "image/jpeg")
    assert result.credentials.state is CredentialState.VALID and result.manifest_store is None
    assert result.credentials.errors == ("the manifest store's bytes could not be taken from the file; it is not kept",)


def test_a_store_other_than_the_one_validated_is_named(
    tmp_path: Path, signed: dict[str, tuple[bytes, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = signed["image/jpeg"]
    _, other = signed["image/png"]
    (tmp_path / "other.c2pa").write_bytes(other)
    found = f"open({str(tmp_path / 'other.c2pa')!r}, 'rb').read()"
    body = f"def locate_store(path, media_type, notes):\n    return {found}, 0\n\n"
    monkeypatch.setattr(reader, "_PROBE", _probe_variant(tmp_path, body, "locate_store", "_error_kind"))
    result = read(tmp_path, data, "image/jpeg")
    assert result.credentials.state is CredentialState.VALID
    assert result.credentials.errors == (
        "the store taken from the file does not hold the manifest c2pa validated; it is kept as found",
    )
    assert result.manifest_store is not None and result.manifest_store.read_bytes() == other


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=st.binary(max_size=300),
    after=st.binary(max_size=300),
    media_type=st.sampled_from(["image/jpeg", "image/png", "video/mp4", "image/webp", "audio/mpeg"]),
)
def test_a_store_anywhere_in_the_bytes_never_reads_none(
    tmp_path: Path, signed: dict[str, tuple[bytes, bytes]], before: bytes, after: bytes, media_type: str
) -> None:
    _, store = signed["image/jpeg"]
    result = read(tmp_path, before + store + after, media_type)
    assert result.credentials.state is not CredentialState.NONE
    assert result.manifest_store is not None


def _status(*codes: str) -> list[dict[str, str]]:
    return [{"code": code, "url": "self#jumbf=/c2pa", "explanation": "..."} for code in codes]


@pytest.mark.parametrize(
    ("verdict", "failures", "state", "error"),
    [
        ("Valid", ["assertion.dataHash.mismatch"], "invalid", "c2pa judged the credential Valid despite the failures"),
        (
            "Trusted",
            ["signingCredential.untrusted"],
            "valid",
            "c2pa judged the credential trusted despite the failures",
        ),
        ("Valid", ["signingCredential.untrusted", "cawg.ica.untrusted"], "valid", None),
        ("Invalid", [], "invalid", "c2pa judged the credential invalid without naming a failure code"),
        ("Unsure", [], "unreadable", "c2pa gave no validation state it is known to give (Unsure)"),
    ],
)
def test_c2pa_s_verdict_is_checked_against_its_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verdict: str, failures: list[str], state: str, error: str | None
) -> None:
    """A verdict that its own failure codes contradict is not taken: a failure beyond an
    untrusted signer (and CAWG identity assertions) is invalid, any failure is not trusted."""
    report = {
        "active_manifest": "urn:c2pa:1",
        "manifests": {"urn:c2pa:1": {"claim_generator": "Camera 1.0", "signature_info": {"common_name": "Signer"}}},
        "validation_results": {"activeManifest": {"success": [], "failure": _status(*failures)}},
        "validation_state": verdict,
    }
    body = (
        f"def read(path, media_type, settings):\n    return {{'outcome': 'read', 'report': {json.dumps(report)!r}}}\n\n"
    )
    monkeypatch.setattr(reader, "_PROBE", _probe_variant(tmp_path, body))
    result = read(tmp_path, make_jpeg(), "image/jpeg")
    assert result.credentials.state == state
    assert result.credentials.failure_codes == tuple(failures)
    assert result.credentials.claim_generator == "Camera 1.0" and result.credentials.signer == "Signer"
    assert result.manifest_store is None
    messages = [e for e in result.credentials.errors if not e.startswith("the manifest store's bytes")]
    assert messages[0].startswith(error) if error else messages == [], result.credentials.errors
