"""RFC 3161 trusted timestamps: a Time-Stamp Authority (TSA) signs that it saw a digest at a time.

A checkpoint is time-stamped over the SHA-256 of its signed note (the bytes of the note as kept
and exported); an artifact over its SHA-256.  The request asks for the TSA's certificate in the
token, with a random nonce; the response is accepted only when granted, for that digest and
nonce.  The token (a CMS SignedData, DER) is kept as it came: ``openssl ts -verify -in
token.tsr -data checkpoint.note -CAfile tsa-ca.pem`` checks it without this library.

ASN.1 is read and written with asn1crypto; the HTTP exchange (``application/timestamp-query``
POST) with urllib.  Both are imported when a token is made or read, not with this module: a
command that meets no time-stamp does not load them.  Nothing here writes to disk.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from typing import Any

from attrs import frozen

from evidence_catalog.errors import NetworkError, ValidationError

#: The most a TSA response may be (tokens are a few KiB).
MAX_RESPONSE_BYTES = 1024 * 1024
_GRANTED = ("granted", "granted_with_mods")


class TimestampError(ValidationError, ValueError):
    """A response or token that is not a valid time-stamp of what it should stamp (a TSA that
    cannot be reached is a :class:`~evidence_catalog.errors.NetworkError` instead).

    It is also a :class:`ValueError`, which is what it was before."""


@frozen
class TokenInfo:
    """What a time-stamp token says: the digest it stamps, when, by which policy and serial."""

    sha256: str
    gen_time: dt.datetime
    policy: str
    serial: int
    nonce: int | None


def request(sha256: bytes, nonce: int | None = None) -> tuple[bytes, int]:
    """A DER TimeStampReq for a SHA-256 digest, asking for the TSA's certificate; and its nonce."""
    from asn1crypto import tsp

    if len(sha256) != 32:
        raise ValueError("a SHA-256 digest is 32 bytes")
    nonce = secrets.randbits(63) if nonce is None else nonce
    message = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": sha256},
            "nonce": nonce,
            "cert_req": True,
        }
    )
    return message.dump(), nonce


@functools.cache
def _response_type() -> Any:
    """The ASN.1 class of a TimeStampResp, made on first use (asn1crypto is loaded then)."""
    from asn1crypto import cms, core, tsp

    class _Response(core.Sequence):  # type: ignore[misc]
        """TimeStampResp as RFC 3161 section 2.4.2 defines it: a refusal carries no token (asn1crypto's
        own class requires one, and so could not read a refusal)."""

        _fields = [  # noqa: RUF012 - asn1crypto's declaration style
            ("status", tsp.PKIStatusInfo),
            ("time_stamp_token", cms.ContentInfo, {"optional": True}),
        ]

    return _Response


def token_from_response(response: bytes, sha256: bytes, nonce: int | None) -> bytes:
    """The DER time-stamp token of a TimeStampResp, checked: granted, for *sha256*, with *nonce*
    (when one was sent); :class:`TimestampError` saying what is wrong."""
    try:
        parsed = _response_type().load(response)
        status = parsed["status"]["status"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"not a time-stamp response: {exc}") from None
    if status not in _GRANTED:
        text = parsed["status"]["status_string"].native  # PKIFreeText: a sequence of UTF-8 strings
        if isinstance(text, list):
            text = "; ".join(str(t) for t in text)
        raise TimestampError(f"the TSA refused ({status}{': ' + str(text) if text else ''})")
    token = parsed["time_stamp_token"]
    if not token:
        raise TimestampError("the TSA granted, but sent no token")
    data = bytes(token.dump())
    info = token_info(data)
    if info.sha256 != sha256.hex():
        raise TimestampError("the token stamps another digest than the one asked for")
    if nonce is not None and info.nonce != nonce:
        raise TimestampError("the token's nonce is not the request's (a replayed or mixed-up response)")
    return data


def token_info(token: bytes) -> TokenInfo:
    """What a DER time-stamp token (CMS ContentInfo with a TSTInfo) says; :class:`TimestampError`."""
    # ``tsp`` tells ``cms`` what a TSTInfo is (its content type and how to parse it): without
    # it, in a process that has not imported it yet, every token "holds no TSTInfo".
    from asn1crypto import cms, tsp  # noqa: F401

    try:
        content = cms.ContentInfo.load(token)
        signed = content["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise TimestampError("the token holds no TSTInfo")
        tst = encap["content"].parsed
        imprint = tst["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        if algorithm != "sha256":
            raise TimestampError(f"the token stamps a {algorithm} digest, not SHA-256")
        gen_time = tst["gen_time"].native
        nonce = tst["nonce"].native
        return TokenInfo(
            sha256=bytes(imprint["hashed_message"].native).hex(),
            gen_time=gen_time.astimezone(dt.UTC),
            policy=str(tst["policy"].dotted),
            serial=int(tst["serial_number"].native),
            nonce=None if nonce is None else int(nonce),
        )
    except TimestampError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise TimestampError(f"not a time-stamp token: {exc}") from None


def stamp(url: str, data: bytes, *, timeout: float = 30.0) -> bytes:
    """Ask the TSA at *url* to time-stamp the SHA-256 of *data*; return the checked token."""
    return stamp_digest(url, hashlib.sha256(data).digest(), timeout=timeout)


def stamp_digest(url: str, digest: bytes, *, timeout: float = 30.0) -> bytes:
    """Ask the TSA at *url* to time-stamp a SHA-256 *digest*; return the checked token.
    :class:`NetworkError` when the TSA cannot be reached (the caller queues the request),
    :class:`TimestampError` when its answer is not a valid stamp."""
    import http.client
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise NetworkError("a TSA is reached over http(s)", where=url)
    body, nonce = request(digest)
    sent = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/timestamp-query"}
    )
    try:
        with urllib.request.urlopen(sent, timeout=timeout) as answer:
            response = answer.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise NetworkError(f"the TSA answered HTTP {exc.code}", where=url) from exc
    except http.client.HTTPException as exc:  # not HTTP at all, or cut short
        raise NetworkError(f"the TSA's answer is not valid HTTP ({type(exc).__name__})", where=url) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NetworkError(f"the TSA cannot be reached ({reason})", where=url) from exc
    if len(response) > MAX_RESPONSE_BYTES:
        raise TimestampError("the TSA's response is larger than a time-stamp response can be")
    return token_from_response(response, digest, nonce)
