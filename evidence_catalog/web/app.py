"""The viewer's ASGI application (Starlette): every page as HTML, and as JSON with ``.json``
or ``Accept: application/json``.  Only ``GET`` and ``HEAD`` reach the catalog; the one
``POST`` is the login form, which sets a cookie and reads nothing else."""

from __future__ import annotations

import importlib.resources
import json
import logging
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from evidence_catalog.errors import EvidenceError, InputError, NotFoundError
from evidence_catalog.interchange.exhibit import human_size
from evidence_catalog.web import views
from evidence_catalog.web.security import COOKIE, Guard, is_loopback, token_matches
from evidence_catalog.web.serving import file_response
from evidence_catalog.web.views import RecordsQuery, Viewer, is_record_id, is_sha256

if TYPE_CHECKING:
    from evidence_catalog import Catalog

_log = logging.getLogger("evidence_catalog.web")
_WITHHELD = "a sensitivity flag withholds this file (the viewer shows it when started with --show-sensitive)"
#: The shortest token accepted: a guessable token would open the evidence to the network.
MIN_TOKEN_LENGTH = 16
#: The largest login form read (bytes).
_MAX_FORM = 4096


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("evidence_catalog.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["human_size"] = human_size  # as the exhibit writes sizes
    environment.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return environment


def _wants_json(request: Request) -> bool:
    if request.path_params.get("json"):
        return True
    accept = request.headers.get("accept", "")
    first = accept.split(",")[0].split(";")[0].strip().lower()
    return first == "application/json"


def _int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high}, not {text!r}", where=name)
    return int(text)


def records_query(request: Request) -> RecordsQuery:
    """The page of records *request* asks for (:class:`InputError` for a malformed value)."""
    params = request.query_params
    after = params.get("after") or None
    if after is not None and not is_record_id(after):
        raise InputError(f"after must be a record id, not {after!r}", where="after")
    return RecordsQuery(
        status=params.get("status") or None,
        category=params.get("category") or None,
        tags=tuple(t for t in params.getlist("tag") if t),
        flags=tuple(f for f in params.getlist("flag") if f),
        since=params.get("since") or None,
        until=params.get("until") or None,
        bbox=params.get("bbox") or None,
        q=params.get("q") or None,
        after=after,
        offset=_int(request, "offset", 0, low=0, high=10_000_000),
        limit=_int(request, "limit", views.PAGE, low=1, high=views.MAX_PAGE),
    )


class ViewerApp:
    """The routes of one viewer over one catalog."""

    def __init__(self, viewer: Viewer, *, token: str | None) -> None:
        self.viewer = viewer
        self.token = token
        self.templates = _environment()

    # -- answering -----------------------------------------------------------------------------

    def page(self, request: Request, template: str, document: dict[str, Any], **extra: Any) -> Response:
        """The page of *document* (HTML, or the document itself as JSON)."""
        if _wants_json(request):
            return JSONResponse(document)
        html = self.templates.get_template(template).render(
            doc=document,
            viewer=self.viewer,
            request_path=request.url.path,
            show_sensitive=self.viewer.show_sensitive,
            token=self.token is not None,
            **extra,
        )
        return Response(html, media_type="text/html; charset=utf-8")

    def error(self, request: Request, status: int, message: str, where: str | None = None) -> Response:
        """An error page (or JSON ``{"error", "where"}``)."""
        if _wants_json(request):
            return JSONResponse({"error": message, "where": where}, status_code=status)
        html = self.templates.get_template("error.html.jinja").render(
            status=status, message=message, where=where, token=self.token is not None
        )
        return Response(html, status_code=status, media_type="text/html; charset=utf-8")

    def guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """*handler*, with the library's errors as clear pages (never a traceback)."""

        def run(request: Request) -> Response:
            try:
                return handler(request)
            except NotFoundError as exc:
                return self.error(request, 404, exc.message, exc.where)
            except InputError as exc:
                return self.error(request, 400, exc.message, exc.where)
            except EvidenceError as exc:
                return self.error(request, 500, exc.message, exc.where)
            except Exception:  # noqa: BLE001 -- a defect: logged here, a plain message there
                _log.exception("the viewer failed on %s", request.url.path)
                return self.error(request, 500, "the viewer failed on this page (its log says why)")

        run.__name__ = handler.__name__
        return run

    # -- pages ---------------------------------------------------------------------------------

    def home(self, request: Request) -> Response:
        return RedirectResponse("/records", status_code=303)

    def records(self, request: Request) -> Response:
        query = records_query(request)
        return self.page(request, "records.html.jinja", self.viewer.records_page(query), query=query)

    def record(self, request: Request) -> Response:
        record_id = self._record_id(request)
        return self.page(request, "record.html.jinja", self.viewer.record_page(record_id))

    def check(self, request: Request) -> Response:
        record_id = self._record_id(request)
        return JSONResponse(self.viewer.catalog.check_record(record_id).as_dict())

    def artifact(self, request: Request) -> Response:
        sha256 = self._sha256(request)
        query = records_query(request)
        document = self.viewer.artifact_page(sha256, after=query.after, limit=query.limit)
        return self.page(request, "artifact.html.jinja", document)

    def log(self, request: Request) -> Response:
        after = _int(request, "after", 0, low=0, high=2**62)
        limit = _int(request, "limit", views.EVENT_PAGE, low=1, high=views.MAX_EVENT_PAGE)
        return self.page(request, "log.html.jinja", self.viewer.events_page(after, limit))

    def map(self, request: Request) -> Response:
        query = records_query(request)
        document = self.viewer.map_page(query)
        if _wants_json(request):
            return JSONResponse(document)
        from evidence_catalog.web import geo

        bbox = tuple(document["bbox"]) if document["bbox"] else None
        points = [
            geo.MapPoint(
                latitude=p["latitude"],
                longitude=p["longitude"],
                label=p["label"],
                href=f"/records/{p['record_id']}",
                kind=p["kind"],
            )
            for p in document["points"]
        ]

        def zoomed(box: tuple[float, float, float, float]) -> str:
            return query.link("/map", bbox=geo.format_bbox(box), after=None)

        try:
            svg = geo.render_map(points, bbox, zoom_href=zoomed)  # type: ignore[arg-type]
            shown = bbox or geo.fit_bbox(points)
            zoom = {name: zoomed(box) for name, box in geo.zoom_links(shown).items()}  # type: ignore[arg-type]
        except ValueError as exc:
            raise InputError(str(exc), where="bbox") from exc
        return self.page(request, "map.html.jinja", document, svg=svg, zoom=zoom, query=query)

    def timeline(self, request: Request) -> Response:
        query = records_query(request)
        document = self.viewer.timeline_page(query)
        if _wants_json(request):
            return JSONResponse(document)
        from evidence_catalog.serialize import parse_timestamp
        from evidence_catalog.web import timeline

        items = [
            timeline.TimelineItem(
                start=parse_timestamp(i["start"]),
                end=parse_timestamp(i["end"]) if i["end"] else None,
                label=i["label"],
                href=f"/records/{i['record_id']}",
                kind=i["kind"],
            )
            for i in document["items"]
        ]
        return self.page(request, "timeline.html.jinja", document, svg=timeline.render_timeline(items), query=query)

    # -- files ---------------------------------------------------------------------------------

    def _record_id(self, request: Request) -> str:
        record_id = str(request.path_params["record_id"])
        if not is_record_id(record_id):
            raise NotFoundError(f"{record_id!r} is not a record id", where="record")
        return record_id

    def _sha256(self, request: Request) -> str:
        sha256 = str(request.path_params["sha256"])
        if not is_sha256(sha256):
            raise NotFoundError(f"{sha256!r} is not a SHA-256", where="artifact")
        return sha256

    def _held(self, request: Request) -> tuple[Any, Any]:
        """The record and the entry of the artifact the request names, when the record holds
        it and nothing withholds it (:class:`NotFoundError` otherwise: a withheld file is
        answered as one that is not there, with the reason)."""
        record_id, sha256 = self._record_id(request), self._sha256(request)
        record = self.viewer.catalog.record(record_id)
        entry = record.artifact(sha256)
        if entry is None:
            raise NotFoundError(f"record {record_id} holds no artifact {sha256}", where="artifact")
        withholding = self.viewer.withholding()
        redaction = withholding.record(record)
        if sha256 in self.viewer.withheld_files(record, withholding, redaction, among=sha256):
            raise NotFoundError(
                "withheld: a sensitivity flag withholds this file, or the file holds or is made from what one "
                "withholds (start the viewer with --show-sensitive)",
                where=f"artifact {sha256}",
            )
        return record, entry

    def blob(self, request: Request) -> Response:
        _, entry = self._held(request)
        artifact = entry.artifact
        name = f"{artifact.sha256[:16]}{_suffix(artifact.media_type)}"
        return file_response(
            open_blob=lambda: self.viewer.catalog.open_artifact(artifact.sha256),
            sha256=artifact.sha256,
            size=artifact.size,
            media_type=artifact.media_type,
            filename=name,
            range_header=request.headers.get("range"),
            if_range=request.headers.get("if-range"),
            head=request.method == "HEAD",
        )

    def thumbnail(self, request: Request) -> Response:
        _, entry = self._held(request)
        artifact = entry.artifact
        if not artifact.media_type.startswith("image/"):
            raise NotFoundError("only a picture has a thumbnail", where=f"artifact {artifact.sha256}")
        catalog = self.viewer.catalog
        made = self.viewer.thumbnails.get(artifact.sha256, lambda: catalog.blobs.local_copy(artifact.sha256))
        if made is None:
            raise NotFoundError(
                "this picture could not be decoded for a thumbnail", where=f"artifact {artifact.sha256}"
            )
        return Response(
            made,
            media_type="image/jpeg",
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )

    def stylesheet(self, request: Request) -> Response:
        css = importlib.resources.files("evidence_catalog.web").joinpath("static/viewer.css").read_bytes()
        return Response(css, media_type="text/css; charset=utf-8", headers={"Cache-Control": "private, max-age=600"})

    def favicon(self, request: Request) -> Response:
        """No icon (204): Chromium asks for one with every page, and with every file it opens
        on its own (a 404 is a console error each time)."""
        return Response(status_code=204, headers={"Cache-Control": "private, max-age=86400"})

    # -- login (only with a token) -------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if self.token is None:
            return RedirectResponse("/records", status_code=303)
        failed = False
        if request.method == "POST":
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > _MAX_FORM:
                    return PlainTextResponse("the form is too large", status_code=413)
            given = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0].strip()
            if token_matches(given, self.token):
                response = RedirectResponse("/records", status_code=303)
                response.set_cookie(COOKIE, given, httponly=True, samesite="strict", path="/")
                return response
            failed = True
        html = self.templates.get_template("login.html.jinja").render(failed=failed, token=True)
        return Response(html, status_code=401 if failed else 200, media_type="text/html; charset=utf-8")


class _JsonSuffix(Convertor[str]):
    """``.json`` at the end of a page's address, or nothing."""

    regex = r"(?:\.json)?"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class _RecordId(_JsonSuffix):
    regex = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class _Sha256(_JsonSuffix):
    regex = r"[0-9a-f]{64}"


register_url_convertor("ec_json", _JsonSuffix())
register_url_convertor("ec_record_id", _RecordId())
register_url_convertor("ec_sha256", _Sha256())


def _suffix(media_type: str) -> str:
    import mimetypes

    found = mimetypes.guess_extension(media_type.split(";")[0].strip())
    return found or ".bin"


def make_app(
    catalog: Catalog,
    *,
    token: str | None = None,
    show_sensitive: bool = False,
    host: str = "127.0.0.1",
) -> Any:
    """The viewer of *catalog* as an ASGI application (Starlette), for uvicorn or any ASGI
    server.  The catalog should be opened read-only (``Catalog.open(path, read_only=True)``):
    no route writes, and a read-only connection makes sure of it.

    *token*: every request must carry it (``Authorization: Bearer`` or the login form's
    cookie); required unless *host* (the address the server binds to) is a loopback address,
    where only requests addressed to this machine are answered.  *show_sensitive*: show what
    sensitivity flags withhold (by default withheld, as a redacted export withholds it).
    """
    if token is None and not is_loopback(host):
        raise InputError(f"serving on {host} (not this machine only) needs a token", where="token")
    if token is not None and (len(token) < MIN_TOKEN_LENGTH or not token.isprintable() or token != token.strip()):
        raise InputError(
            f"a token is at least {MIN_TOKEN_LENGTH} printable characters, without surrounding spaces "
            "(leave it out and one of 256 random bits is made)",
            where="token",
        )
    app = ViewerApp(Viewer(catalog, show_sensitive=show_sensitive), token=token)
    g = app.guarded
    id_ = "{record_id:str}"
    routes = [
        Route("/", g(app.home), methods=["GET", "HEAD"]),
        Route("/records{json:ec_json}", g(app.records), methods=["GET", "HEAD"]),
        Route(f"/records/{id_}/check.json", g(app.check), methods=["GET", "HEAD"]),
        Route(f"/records/{id_}/artifacts/{{sha256:str}}", g(app.blob), methods=["GET", "HEAD"]),
        Route(f"/records/{id_}/thumbnails/{{sha256:str}}", g(app.thumbnail), methods=["GET", "HEAD"]),
        Route("/records/{record_id:ec_record_id}{json:ec_json}", g(app.record), methods=["GET", "HEAD"]),
        Route("/artifacts/{sha256:ec_sha256}{json:ec_json}", g(app.artifact), methods=["GET", "HEAD"]),
        Route("/log{json:ec_json}", g(app.log), methods=["GET", "HEAD"]),
        Route("/map{json:ec_json}", g(app.map), methods=["GET", "HEAD"]),
        Route("/timeline{json:ec_json}", g(app.timeline), methods=["GET", "HEAD"]),
        Route("/static/viewer.css", g(app.stylesheet), methods=["GET", "HEAD"]),
        Route("/favicon.ico", app.favicon, methods=["GET", "HEAD"]),
        Route("/login", app.login, methods=["GET", "POST"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        message = "no such page" if status == 404 else "the viewer answers only GET and HEAD here"
        return app.error(request, status, message, request.url.path)

    starlette = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    allowed = None if token is not None else ("127.0.0.1", "localhost", "::1", host)
    return Guard(starlette, token=token, allowed_hosts=allowed)
