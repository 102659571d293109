"""Who may ask the viewer anything, and the headers every answer carries.

* Bound to a loopback address without a token, the viewer answers only requests whose ``Host``
  is that address or ``localhost`` (a web page elsewhere cannot reach it by making its own name
  resolve to 127.0.0.1: DNS rebinding).
* With a token (required for any other address), every request must carry it: in an
  ``Authorization: Bearer`` header (scripts) or in the cookie the login form sets (browsers;
  ``HttpOnly``, ``SameSite=Strict``).  The token never appears in a URL the viewer writes, and
  the viewer writes no access log (uvicorn's is turned off).
* Every page gets a strict Content-Security-Policy: its own stylesheet and pictures, nothing
  else -- no script at all, no request to any other origin, no framing.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

#: The policy of every page: the viewer's own stylesheet, pictures and media, nothing else.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: The cookie the login form sets.
COOKIE = "evidence_catalog_token"
#: Paths answered without a token (the login form, its stylesheet, the empty icon).
OPEN_PATHS = ("/login", "/static/", "/favicon.ico")
LOOPBACK = ("127.0.0.1", "::1", "localhost")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def new_token() -> str:
    """A token of 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_matches(given: str | None, token: str) -> bool:
    """Whether *given* is *token* (compared in constant time)."""
    return given is not None and hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode())


def is_loopback(host: str) -> bool:
    """Whether *host* (an address the viewer binds to) is this machine only: ``localhost`` or a
    loopback address (a name is not judged by its look: ``127.x.example`` resolves anywhere)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


def _cookie(header: str | None, name: str) -> str | None:
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class Guard:
    """ASGI middleware: the checks above, and the headers every response carries."""

    def __init__(self, app: ASGIApp, *, token: str | None, allowed_hosts: tuple[str, ...] | None) -> None:
        self.app, self.token, self.allowed_hosts = app, token, allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        path = scope.get("path", "")
        if self.allowed_hosts is not None:
            host = headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
            if name.strip("[]") not in self.allowed_hosts:
                await _plain(send, 421, "this viewer answers only requests addressed to this machine (Host header)")
                return
        if self.token is not None and not path.startswith(OPEN_PATHS):
            given = None
            authorization = headers.get("authorization", "")
            if authorization.lower().startswith("bearer "):
                given = authorization[7:].strip()
            else:
                given = _cookie(headers.get("cookie"), COOKIE)
            if not token_matches(given, self.token):
                if "text/html" in headers.get("accept", "") and scope.get("method") == "GET":
                    await _redirect(send, "/login")
                else:
                    await _plain(send, 401, "a token is needed (Authorization: Bearer TOKEN, or log in at /login)")
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                names = {k.lower() for k, _ in kept}
                extra = {
                    b"content-security-policy": PAGE_POLICY.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",
                    b"x-frame-options": b"DENY",
                    b"cross-origin-opener-policy": b"same-origin",
                    b"cross-origin-resource-policy": b"same-origin",
                    b"cache-control": b"no-store",
                }
                kept += [(k, v) for k, v in extra.items() if k not in names]
                message["headers"] = kept
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"content-security-policy", PAGE_POLICY.encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, where: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", where.encode()),
                (b"content-length", b"0"),
                (b"content-security-policy", PAGE_POLICY.encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
