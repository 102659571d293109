"""The browser side of a page capture, run in a process of its own (``python -m
evidence_catalog.capture.browser SETTINGS.json``) so that the catalog can kill it, and the
Chromium it started, when the capture's hard time limit passes (see
:mod:`evidence_catalog.capture.page`).

It starts the system's Chromium through Playwright in a fresh profile inside the capture's work
area, records every HTTP exchange of the page into a WARC with
:class:`~evidence_catalog.capture.warc.WarcRecorder` while the page loads (Chrome DevTools
Protocol, ``Fetch`` domain, paused at the response stage: Chromium makes every request itself,
and the response's status, headers and body are read before the page gets them), then writes a
full-page screenshot, the rendered DOM, a PDF print and the page's text, packages the WARC as a
WACZ and, last, ``result.json`` (by renaming it into place: a result is there whole or not at
all).  Nothing here touches the catalog.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from evidence_catalog.capture.warc import Exchange, WarcRecorder

#: Chromium's switches: no sandbox (it cannot start as root with its own), no GPU, nothing
#: fetched for Chromium itself (updates, sync, field trials) -- only the page's requests.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--mute-audio",
)
#: Response headers that say a body is encoded; Chromium hands the body over decoded.
_ENCODING_HEADERS = ("content-encoding", "content-length")
RESULT_NAME = "result.json"
_HEIGHT = "Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)"


def _software(chromium: str) -> str:
    from importlib.metadata import version

    from evidence_catalog.versions import __version__

    return (
        f"evidence-catalog {__version__} (warcio {version('warcio')}), recording the requests of"
        f" {chromium} driven by Playwright {version('playwright')}"
    )


def recorded_headers(headers: list[tuple[str, str]], size: int) -> list[tuple[str, str]]:
    """The response headers to record with a body of *size* bytes as Chromium hands it over:
    decoded of any ``Content-Encoding``.  When the server encoded it, its ``Content-Encoding``
    and ``Content-Length`` are kept as ``X-Archive-Orig-...`` (the names replay tools know) and
    the recorded body's length is announced; otherwise the headers are as sent."""
    encoded = any(n.lower() == "content-encoding" and v.strip().lower() not in ("", "identity") for n, v in headers)
    if not encoded:
        return list(headers)
    renamed = [(f"X-Archive-Orig-{n}" if n.lower() in _ENCODING_HEADERS else n, v) for n, v in headers]
    return [*renamed, ("Content-Length", str(size))]


class _Network:
    """Every request of the page, paused by the DevTools protocol as it leaves (its exchange
    begins: a request never answered is recorded as such when the recording ends) and again
    when its response arrives (recorded), each time let go on unchanged."""

    def __init__(self, cdp: Any, recorder: WarcRecorder, max_resource_bytes: int) -> None:
        self.cdp = cdp
        self.recorder = recorder
        self.max_resource_bytes = max_resource_bytes
        self.too_large: list[str] = []
        self.first_status: dict[str, int] = {}
        #: The values of the cookies seen so far (see :meth:`_cookies`).
        self.cookies: set[str] = set()
        #: Requests sent and not yet answered, by Chromium's network id (shared by the hops of
        #: a redirect), each with its URL.
        self.pending: dict[str, list[tuple[str, Exchange]]] = {}

    def _cookies(self, headers: list[tuple[str, str]]) -> list[str]:
        """The values of every cookie the page has had so far (set by the server or by a
        script), and of those this request carries: the recorder withholds them wherever they
        are in the request, as the WARC's ``withheld`` note says of every cookie value."""
        for name, value in headers:
            if name.lower() == "cookie":
                self.cookies.update(part.partition("=")[2].strip() for part in value.split(";"))
        with contextlib.suppress(Exception):  # the page is gone: the values seen so far
            for cookie in self.cdp.send("Network.getAllCookies").get("cookies") or ():
                self.cookies.add(str(cookie.get("value") or ""))
        return sorted(self.cookies)

    def paused(self, event: dict[str, Any]) -> None:
        request_id = event["requestId"]
        try:
            self._record(event)
        finally:
            with contextlib.suppress(Exception):  # the page or the request is gone: nothing to let go
                self.cdp.send("Fetch.continueRequest", {"requestId": request_id})

    def _record(self, event: dict[str, Any]) -> None:
        request = event["request"]
        url = str(request["url"])
        if request.get("urlFragment"):
            url += str(request["urlFragment"])
        network_id = str(event.get("networkId") or event["requestId"])
        answered = "responseStatusCode" in event or "responseErrorReason" in event
        waiting = self.pending.get(network_id, [])
        exchange = next((e for u, e in waiting if u == url), None) if answered else None
        if exchange is not None:
            waiting.remove((url, exchange))
        else:
            body = None
            if request.get("postDataEntries"):
                body = b"".join(base64.b64decode(e.get("bytes", "")) for e in request["postDataEntries"])
            elif request.get("postData"):
                body = str(request["postData"]).encode("utf-8")
            headers = [(str(k), str(v)) for k, v in request["headers"].items()]
            exchange = self.recorder.exchange(
                str(request.get("method") or "GET"), url, headers, body, secrets=self._cookies(headers)
            )
            if not answered:
                self.pending.setdefault(network_id, []).append((url, exchange))
                return
        if event.get("responseErrorReason"):
            exchange.fail(f"no response ({event['responseErrorReason']})")
            return
        status = int(event.get("responseStatusCode") or 0)
        self.first_status.setdefault(url, status)
        headers = [(str(h["name"]), str(h["value"])) for h in event.get("responseHeaders") or ()]
        length = next((v for n, v in headers if n.lower() == "content-length"), "")
        if 300 <= status < 400 and any(n.lower() == "location" for n, _ in headers):
            exchange.respond(status, str(event.get("responseStatusText") or ""), headers)
            exchange.end()
            exchange.finish()
            return
        if length.strip().isdigit() and int(length) > self.max_resource_bytes:
            exchange.respond(status, str(event.get("responseStatusText") or ""), headers)
            exchange.interrupted("length")
            exchange.finish()
            self.too_large.append(url)
            return
        try:
            answer = self.cdp.send("Fetch.getResponseBody", {"requestId": event["requestId"]})
        except Exception as exc:  # noqa: BLE001 -- no body to be had (a download, a closed page)
            exchange.respond(status, str(event.get("responseStatusText") or ""), headers)
            exchange.interrupted("unspecified")
            exchange.finish()
            del exc
            return
        data = base64.b64decode(answer["body"]) if answer.get("base64Encoded") else str(answer["body"]).encode()
        headers = recorded_headers(headers, len(data))
        exchange.respond(status, str(event.get("responseStatusText") or ""), headers)
        if len(data) > self.max_resource_bytes:
            data = data[: self.max_resource_bytes]
            exchange.interrupted("length")
            self.too_large.append(url)
        exchange.body(data)
        exchange.end()
        exchange.finish()


def capture(settings: dict[str, Any]) -> dict[str, Any]:
    """Capture the page of ``settings["url"]`` into ``settings["work"]``; what it did."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from evidence_catalog.capture.archiving import WACZ_NAME, WARC_DIR, WARC_NAME, withheld_note
    from evidence_catalog.capture.page import PROFILE

    work = Path(settings["work"])
    url = str(settings["url"])
    width, height = int(settings["width"]), int(settings["height"])
    load_timeout = float(settings["load_timeout"])
    max_height = int(settings["max_height"])
    notes: list[str] = []
    popups: list[str] = []
    downloads: list[str] = []
    (work / WARC_DIR).mkdir()
    recorder = WarcRecorder(
        work / WARC_DIR / WARC_NAME,
        software=_software("Chromium"),
        info={
            "description": "every HTTP exchange of one page capture in Chromium, recorded as it was made"
            " (no second fetch); bodies as Chromium read them (decoded of any Content-Encoding)"
        },
    )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(work / PROFILE),
            executable_path=settings["chromium"],
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": width, "height": height},
            accept_downloads=False,
            user_agent=settings.get("user_agent") or None,
            service_workers="block",
        )
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(load_timeout * 1000)
        cdp = context.new_cdp_session(page)
        version = cdp.send("Browser.getVersion")
        network = _Network(cdp, recorder, int(settings["max_resource_bytes"]))
        cdp.on("Fetch.requestPaused", network.paused)
        stages = [{"urlPattern": "*", "requestStage": stage} for stage in ("Request", "Response")]
        cdp.send("Fetch.enable", {"patterns": stages})

        def popup(other: Any) -> None:
            if other is not page:
                popups.append(other.url)
                other.close()

        context.on("page", popup)
        page.on("download", lambda d: downloads.append(d.url))
        page.on("dialog", lambda d: d.dismiss())
        status = None
        partial = False
        started = time.monotonic()
        try:
            response = page.goto(url, wait_until="load", timeout=load_timeout * 1000)
            status = response.status if response is not None else None
        except PlaywrightTimeout:
            partial = True
            notes.append(
                f"partial capture: the page had not finished loading after {load_timeout:g} s;"
                " it was captured as it was then"
            )
        except PlaywrightError as exc:
            message = str(exc).splitlines()[0]
            if "Download is starting" in message:
                message = "the URL is a download, not a page (capture it without --page)"
            raise SystemExit(_fail(work, message)) from None
        if not partial:
            remaining = max(0.5, min(5.0, load_timeout - (time.monotonic() - started)))
            with contextlib.suppress(PlaywrightTimeout):  # what a script fetches right after the load
                page.wait_for_load_state("networkidle", timeout=remaining * 1000)
        final_url = page.url
        status = status if status is not None else network.first_status.get(final_url)
        title = page.title() or ""
        if status is not None and status >= 400:
            notes.append(f"the server answered HTTP {status}: what was captured is its error page")
        full_height = int(page.evaluate(_HEIGHT) or height)
        if full_height > max_height:
            notes.append(f"screenshot cut at {max_height} pixels of the page's {full_height}")
        page.screenshot(
            path=str(work / "screenshot.png"),
            full_page=True,
            clip={"x": 0, "y": 0, "width": width, "height": min(full_height, max_height)},
            timeout=load_timeout * 1000,
        )
        (work / "page.html").write_text(page.content(), encoding="utf-8")
        text = page.evaluate("document.body ? document.body.innerText : ''") or ""
        (work / "page.txt").write_text(str(text), encoding="utf-8")
        page.emulate_media(media="print")  # what the print fetches (a print style sheet's image) is recorded too
        try:
            pages_wanted = f"1-{int(settings['max_pdf_pages'])}"
            page.pdf(path=str(work / "page.pdf"), print_background=True, page_ranges=pages_wanted)
        except PlaywrightError:  # fewer pages than that: the whole of it
            page.pdf(path=str(work / "page.pdf"), print_background=True)
        cdp.send("Fetch.disable")
        context.close()
    if popups:
        notes.append(f"pop-ups closed: {', '.join(popups)}")
    if downloads:
        notes.append(f"downloads refused: {', '.join(downloads)}")
    if network.too_large:
        notes.append(
            f"responses over {settings['max_resource_bytes']} bytes recorded without their bodies:"
            f" {', '.join(network.too_large)}"
        )
    from evidence_catalog.capture.warc import WITHHELD_NOTE
    from evidence_catalog.capture.webarchive import Page, package

    recorder.close()
    entry = next((r for r in recorder.responses if r.url in (url, final_url)), None) or (
        recorder.responses[0] if recorder.responses else None
    )
    pages = [] if entry is None else [Page(entry.record_id.strip("<>").rpartition(":")[2], url, entry.date, title)]
    package(
        recorder.path,
        work / WACZ_NAME,
        pages=pages,
        created=recorder.started,
        title=f"Web archive of {url}",
        description=(
            f"The HTTP exchanges of one page capture of {url} by evidence-catalog in {version['product']}"
            f" ({recorder.exchanges} requests, {len(recorder.failures)} without a response), recorded as"
            " they were made."
        ),
        software=_software(str(version["product"])),
        withheld=WITHHELD_NOTE,
        warc_digest=recorder.digest,
    )
    os.remove(recorder.path)
    return {
        "ok": True,
        "final_url": final_url,
        "status": status,
        "title": title,
        "browser": str(version["product"]),
        "user_agent": str(version["userAgent"]),
        "partial": partial,
        "notes": notes,
        "withheld": withheld_note(recorder) if recorder.withheld or recorder.withheld_elsewhere else None,
        "requests": recorder.exchanges,
    }


def _fail(work: Path, message: str) -> int:
    _write_result(work, {"ok": False, "error": message})
    return 3


def _write_result(work: Path, result: dict[str, Any]) -> None:
    temporary = work / f".{RESULT_NAME}.part"
    temporary.write_text(json.dumps(result), encoding="utf-8")
    os.replace(temporary, work / RESULT_NAME)


def _watch(parent: int, limit: float) -> None:
    """Kill this process's group (this process, Playwright's driver, Chromium) when the
    catalog that started it is gone (killed: nobody would enforce the hard limit, and the
    browser would go on loading the page into an abandoned work area) or the hard limit has
    passed."""
    deadline = time.monotonic() + limit
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> int:
    settings = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    work = Path(settings["work"])
    if settings.get("parent"):
        watch = threading.Thread(target=_watch, args=(int(settings["parent"]), float(settings["hard_limit"])))
        watch.daemon = True
        watch.start()
    try:
        result = capture(settings)
    except SystemExit as exc:
        return int(exc.code or 3)
    except Exception as exc:  # noqa: BLE001 -- said to the catalog in one line
        message = " ".join(str(exc).split())[:500] or type(exc).__name__
        if "closed" in message.lower() or "crash" in message.lower():
            message = f"the browser stopped mid-capture ({message[:200]})"
        return _fail(work, message)
    _write_result(work, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
