"""Download a feed document over HTTP(S) into a file, exactly as served, with every response.

A thin adapter over :mod:`urllib.request` (a feed is one document: yt-dlp's machinery is for
media).  Nothing is decoded: ``Accept-Encoding: identity`` asks for the document uncompressed,
so the bytes kept are the document the server holds (a server that compresses anyway is
stored as it answered), and a body shorter than its ``Content-Length`` or longer than the
limit is an error, not a file.  Redirects are followed (http and https only) and each is
recorded.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import IO, Any

from attrs import frozen

from evidence_catalog import model
from evidence_catalog.errors import NetworkError, StorageError
from evidence_catalog.versions import __version__

#: The largest feed document downloaded (a digest of 100,000 items is about 40 MB).
MAX_FEED_BYTES = 256 * 1024 * 1024
#: How a withheld ``Set-Cookie`` value reads in the recorded headers, and what an acquisition's
#: ``withheld`` then says.
WITHHELD = model.WITHHELD
WITHHELD_SET_COOKIE = "Set-Cookie header values of the responses"
_CHUNK = 1 << 16


@frozen
class FetchedDocument:
    """A downloaded document: where it was asked for and where it came from in the end, the
    final status, and every response on the way (redirects first)."""

    requested_url: str
    final_url: str
    status: int
    responses: tuple[model.HttpResponse, ...]
    size: int
    #: True when a ``Set-Cookie`` value was withheld from :attr:`responses`.
    cookies_withheld: bool


def _headers(headers: Message) -> tuple[list[tuple[str, str]], bool]:
    """Headers as recorded, and whether a ``Set-Cookie`` value was withheld from them."""
    return model.headers_without_cookies(headers.items()), "Set-Cookie" in headers  # names match in any case


class _Recorder(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only, keeping each redirect response."""

    def __init__(self) -> None:
        self.responses: list[model.HttpResponse] = []
        self.withheld = False

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        pairs, withheld = _headers(headers)
        self.withheld |= withheld
        self.responses.append(model.HttpResponse(url=req.full_url, status=code, headers=pairs))
        target = urllib.parse.urljoin(req.full_url, newurl)
        if urllib.parse.urlsplit(target).scheme.lower() not in ("http", "https"):
            raise NetworkError(f"redirected to {target!r}, which is not an http(s) URL", where=req.full_url)
        return super().redirect_request(req, fp, code, msg, headers, target)


def fetch_document(
    url: str,
    destination: Path,
    *,
    timeout: float = 30.0,
    max_bytes: int | None = None,
    progress: Callable[[int], Any] | None = None,
) -> FetchedDocument:
    """Download *url* into *destination* (a new file, flushed to disk).  :class:`NetworkError`
    naming the URL for a refused connection, a timeout, an HTTP error status, a body cut short
    or larger than *max_bytes* (default :data:`MAX_FEED_BYTES`); the partial file is removed."""
    if max_bytes is None:
        max_bytes = MAX_FEED_BYTES
    recorder = _Recorder()
    opener = urllib.request.build_opener(recorder)
    request = urllib.request.Request(
        url,
        headers={
            "User-Agent": f"evidence-catalog/{__version__} (+https://pypi.org/project/evidence-catalog/)",
            "Accept-Encoding": "identity",
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/*;q=0.8, */*;q=0.5",
        },
    )
    try:
        with opener.open(request, timeout=timeout) as response, open(destination, "xb") as out:
            pairs, withheld = _headers(response.headers)
            final = model.HttpResponse(url=response.geturl(), status=response.status, headers=pairs)
            declared = response.headers.get("Content-Length")
            expected = int(declared) if declared and declared.strip().isdigit() else None
            if expected is not None and expected > max_bytes:
                raise NetworkError(f"the document is {expected} bytes, more than the limit of {max_bytes}", where=url)
            size = 0
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise NetworkError(f"the document is larger than the limit of {max_bytes} bytes", where=url)
                out.write(chunk)
                if progress is not None:
                    progress(len(chunk))
            if expected is not None and size != expected:
                raise NetworkError(f"the body ended after {size} of {expected} bytes", where=url)
            out.flush()
            os.fsync(out.fileno())
    except urllib.error.HTTPError as exc:
        destination.unlink(missing_ok=True)
        raise NetworkError(f"HTTP {exc.code} {exc.reason}", where=url) from None
    except NetworkError:
        destination.unlink(missing_ok=True)
        raise
    except urllib.error.URLError as exc:
        destination.unlink(missing_ok=True)
        raise NetworkError(f"cannot be reached ({exc.reason})", where=url) from None
    except http.client.IncompleteRead as exc:
        destination.unlink(missing_ok=True)
        raise NetworkError(f"the body ended early ({len(exc.partial)} bytes read)", where=url) from None
    except TimeoutError as exc:
        destination.unlink(missing_ok=True)
        raise NetworkError(f"no answer within {timeout:g} s ({exc})", where=url) from None
    except (http.client.HTTPException, ConnectionError) as exc:
        destination.unlink(missing_ok=True)
        raise NetworkError(f"the connection failed ({type(exc).__name__}: {exc})", where=url) from None
    except OSError as exc:  # writing the file: a full disk, a lost permission
        destination.unlink(missing_ok=True)
        raise StorageError(f"cannot write the downloaded document ({exc.strerror or exc})", where=url) from exc
    return FetchedDocument(
        requested_url=url,
        final_url=final.url,
        status=final.status,
        responses=(*recorder.responses, final),
        size=size,
        cookies_withheld=recorder.withheld or withheld,
    )
