"""The viewer as a person uses it: ``evidence-catalog serve`` started as a user starts it (a
process of its own, on 127.0.0.1, a free port), over a demo catalog made with the library (drawn
pictures with EXIF GPS, an eight-second H.264 video analysed for its poster frame, a sound, a
PDF, an RSS feed's posts, claims with places and times, assessments, a picture flagged
graphic), opened in Debian's Chromium driven by Playwright (no browser is ever downloaded).

Every tab records each request it makes, each console message and each uncaught error; when a
test ends, a request to anywhere but the viewer, a console error (a Content-Security-Policy
refusal is one) or a page error fails it.  Without Chromium or Playwright these tests are
skipped, saying so; under CI, which installs both, they fail (the ``chromium`` fixture).

The demo catalog is the one ``docs/viewer_pictures.py`` builds for the pictures of
``docs/viewer.md``; the pictures test takes them into a temporary folder, never into docs/.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from PIL import Image

from evidence_catalog import Catalog
from evidence_catalog.capture.browser import CHROMIUM_ARGS
from evidence_catalog.web.security import PAGE_POLICY
from evidence_catalog.web.serving import FILE_POLICY

ROOT = Path(__file__).resolve().parent.parent


def _load_pictures() -> Any:
    spec = importlib.util.spec_from_file_location("viewer_pictures", ROOT / "docs" / "viewer_pictures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pictures = _load_pictures()
#: What the browser tests check is the browser's and the server's; the database under them is
#: the SQLite run's (the demo is built once per module, before a test's back-end is chosen).
browser_test = pytest.mark.no_postgresql_pass
#: The background of the pages' top bar in viewer.css: seen only when the style sheet applied.
TOP_BAR = "rgb(20, 33, 61)"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return pictures.build_demo(tmp_path_factory.mktemp("viewer-demo"))


#: The viewers running, by origin (to say why one stopped answering).
_RUNNING: dict[str, subprocess.Popen[str]] = {}


@contextlib.contextmanager
def _viewer(catalog: Path, *args: str) -> Iterator[str]:
    """``evidence-catalog serve`` of *catalog* (with *args*), as a user starts it; yields its
    origin.  When the block ends, it stops on Ctrl-C having printed no traceback."""
    with pictures.running_viewer(catalog, *args) as (address, process):
        origin = address.rstrip("/")
        _RUNNING[origin] = process
        try:
            yield origin
        finally:
            del _RUNNING[origin]
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert process.stderr is not None
    errors = process.stderr.read()
    assert "Traceback" not in errors and "Exception" not in errors, errors


@pytest.fixture(scope="module")
def viewer(demo: Any) -> Iterator[str]:
    """The origin (``http://127.0.0.1:PORT``) of the viewer of the demo catalog."""
    with _viewer(demo.path) as origin:
        yield origin


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            launched.close()


class Tab:
    """A browser tab on one viewer that keeps what the page asked for and said."""

    def __init__(self, browser: Any, origin: str) -> None:
        self.origin = origin
        self.context = browser.new_context(viewport=pictures.VIEWPORT)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.responses: list[Any] = []
        self.problems: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("response", lambda r: self.responses.append(r))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def _console(self, message: Any) -> None:
        if message.type == "error" or "Refused to" in message.text or "Content Security Policy" in message.text:
            self.problems.append(f"console {message.type}: {message.text}")

    def open(self, path: str, status: int = 200) -> Any:
        """Go to *path* on the viewer; check the status it was answered with."""
        try:
            response = self.page.goto(f"{self.origin}/{path.lstrip('/')}", wait_until="load")
        except Exception:
            process = _RUNNING.get(self.origin)
            if process is not None and process.poll() is not None:
                assert process.stderr is not None
                raise AssertionError(f"the viewer exited ({process.returncode}): {process.stderr.read()}") from None
            raise
        assert response is not None and response.status == status, (path, response and response.status)
        return response

    def elsewhere(self) -> list[str]:
        """Requests to anywhere but the viewer."""
        return [url for url in self.requests if not url.startswith(self.origin + "/")]

    def texts(self, selector: str) -> list[str]:
        return [t.strip() for t in self.page.locator(selector).all_inner_texts()]

    def wait_for(self, function: str, arg: Any = None, timeout: float = 30) -> None:
        """Until the JavaScript *function* called with *arg* is true.  (Playwright's own
        ``wait_for_function`` evaluates a string inside the page, which the pages' policy
        refuses; ``evaluate`` calls it through the DevTools protocol, which no page policy
        governs.)"""
        deadline = time.monotonic() + timeout
        while not self.page.evaluate(function, arg):
            assert time.monotonic() < deadline, f"not true in {timeout} s: {function}"
            time.sleep(0.05)

    def images_decoded(self) -> list[tuple[str, int]]:
        """Every picture of the page, loaded (the page scrolled through, for the lazy ones):
        ``(src, natural width)``; a width of 0 is a picture that did not decode."""
        self.page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        self.wait_for("() => Array.from(document.images).every(i => i.complete)")
        self.page.evaluate("window.scrollTo(0, 0)")
        found: list[tuple[str, int]] = self.page.evaluate(
            "Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])"
        )
        return found

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_tab(browser: Any) -> Iterator[Callable[[str], Tab]]:
    """Tabs on a viewer (given its origin); each one, when the test ends, must have made no
    request elsewhere and have logged no console error and raised no page error."""
    tabs: list[Tab] = []

    def make(origin: str) -> Tab:
        tabs.append(Tab(browser, origin))
        return tabs[-1]

    yield make
    for tab in tabs:
        problems, elsewhere = tab.problems, tab.elsewhere()
        tab.close()
        assert elsewhere == [], f"requests to elsewhere: {elsewhere}"
        assert problems == [], problems


@pytest.fixture
def tab(open_tab: Callable[[str], Tab], viewer: str) -> Tab:
    return open_tab(viewer)


# -- the pages ---------------------------------------------------------------------------------


def _pages(demo: Any) -> dict[str, tuple[str, str]]:
    """Each page the tests open: its address and its heading."""
    return {
        "records": ("records", "Records"),
        "record-photo": (f"records/{demo.street}", "kharkiv-street-0505.jpg"),
        "record-video": (f"records/{demo.video}", "bridge-approach.mp4"),
        "record-flagged": (f"records/{demo.flagged}", "mykolaiv-market-casualties.jpg"),
        "record-report": (f"records/{demo.school}", "izium-school-east-wall.png"),
        "search": (f"records?q={pictures.SEARCH}", f"Reports matching “{pictures.SEARCH}”"),
        "log": ("log", "Custody log"),
        "artifact": (f"artifacts/{demo.video_sha256}", f"Artifact {demo.video_sha256}"),
        "map": ("map", "Map"),
        "timeline": ("timeline", "Timeline"),
    }


PAGE_NAMES = [
    "records",
    "record-photo",
    "record-video",
    "record-flagged",
    "record-report",
    "search",
    "log",
    "artifact",
    "map",
    "timeline",
]


def _schemas() -> dict[str, Any]:
    found = {}
    for path in (ROOT / "schemas").glob("viewer-*.schema.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        found[schema["$id"]] = schema
    return found


def _json_address(path: str) -> str:
    base, _, query = path.partition("?")
    return f"{base}.json" + (f"?{query}" if query else "")


@browser_test
@pytest.mark.parametrize("name", PAGE_NAMES)
def test_each_page_loads_styled_with_its_pictures_its_json_and_nothing_from_elsewhere(
    name: str, tab: Tab, demo: Any
) -> None:
    path, heading = _pages(demo)[name]
    response = tab.open(path)
    headers = response.all_headers()
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == PAGE_POLICY
    assert tab.page.title().endswith("· evidence-catalog viewer")
    assert tab.texts("main h1") == [heading]
    assert tab.page.evaluate("getComputedStyle(document.querySelector('header.top')).backgroundColor") == TOP_BAR
    images = tab.images_decoded()
    assert all(width > 0 for _, width in images), images
    assert all(src.startswith("/records/") for src, _ in images), images
    if name in ("records", "record-photo", "record-video", "record-report"):
        assert images, "no picture shown"
    # The same page as JSON, over the same HTTP, valid against its published schema.
    answer = tab.page.request.get(f"{tab.origin}/{_json_address(path)}")
    assert answer.status == 200 and answer.headers["content-type"] == "application/json"
    document = answer.json()
    jsonschema.validate(document, _schemas()[document["schema"]])


@browser_test
@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("kharkiv-street-0505.jpg", "image/jpeg"),
        ("izium-school-east-wall.png", "image/png"),
        ("bridge-approach.mp4", "video/mp4"),
        ("radio-intercept.wav", "audio/wav"),
        ("witness-statement.txt", "text/plain; charset=utf-8"),
    ],
)
def test_a_file_opened_on_its_own_is_shown_by_the_browser_sandboxed_and_quiet(
    name: str, media_type: str, tab: Tab, demo: Any
) -> None:
    """A picture opened at full size (a click on it), or a video, a sound or a text opened at
    its address: the browser's own viewer shows it, under the files' policy, with no error."""
    record_id, sha256 = demo.files[name]
    headers = tab.open(f"records/{record_id}/artifacts/{sha256}").all_headers()
    assert headers["content-type"] == media_type and headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == FILE_POLICY and "sandbox" in FILE_POLICY
    if media_type.startswith("image/"):
        assert tab.page.evaluate("document.images[0].naturalWidth") == 800
    elif media_type.startswith(("video/", "audio/")):
        tab.wait_for("() => document.querySelector('video').readyState >= 1")  # Chromium's player
    else:
        assert "Shelling" in tab.page.inner_text("body") or tab.page.inner_text("body").strip()
    tab.page.wait_for_timeout(300)  # the icon the browser asks for after the file


@browser_test
def test_a_click_on_a_card_of_the_grid_opens_the_record_and_its_log_links_back(tab: Tab, demo: Any) -> None:
    tab.open("records")
    assert tab.page.locator("ul.grid li.card").count() == demo.records
    tab.page.get_by_role("link", name="bridge-approach.mp4", exact=True).click()
    tab.page.wait_for_url(f"{tab.origin}/records/{demo.video}")
    assert tab.texts("main h1") == ["bridge-approach.mp4"]
    video = tab.page.locator("video")
    assert video.get_attribute("src") == f"/records/{demo.video}/artifacts/{demo.video_sha256}"
    assert (video.get_attribute("poster") or "").startswith(f"/records/{demo.video}/thumbnails/")
    assert "Military lorry crossing the bridge approach" in tab.page.inner_text("main")
    assert "found nothing wrong" in tab.page.inner_text("dl.facts")  # the demo's verify
    assert "A video of the bridge approach circulates" in tab.page.inner_text("blockquote.exact")
    # Its JSON and its check, as links a person follows: the browser shows the documents.
    for link, key in (("This record as JSON", "record"), ("Check this record now", "ok")):
        with tab.page.expect_navigation():
            tab.page.get_by_role("link", name=link).click()
        assert key in json.loads(tab.page.inner_text("body"))
        tab.page.go_back()
    with tab.page.expect_navigation():
        tab.page.get_by_role("link", name="Check this record now").click()
    checked = json.loads(tab.page.inner_text("body"))
    assert checked["ok"] is True and checked["logged"] is False, checked
    tab.page.go_back()
    # From the custody log back to a record: the first event about the street photo.
    tab.page.get_by_role("link", name="Custody log").click()
    tab.page.wait_for_url(f"{tab.origin}/log")
    tab.page.locator(f"a[href='/records/{demo.street}']").first.click()
    tab.page.wait_for_url(f"{tab.origin}/records/{demo.street}")
    assert tab.texts("main h1") == ["kharkiv-street-0505.jpg"]
    # The log a page at a time, and a page of a record that is not there.
    tab.open("log?limit=10")
    assert tab.page.locator("table.events tbody tr").count() == 10
    with tab.page.expect_navigation():
        tab.page.get_by_role("link", name="Later events →").click()
    assert tab.page.locator("table.events tbody tr").first.get_attribute("id") == "event-11"
    tab.open(f"records/{demo.street[:-4]}ffff", status=404)
    assert tab.texts("main h1")[0].startswith("404:")
    tab.problems[:] = [p for p in tab.problems if "status of 404" not in p]


_FRAME_CORNER = """(video) => {
    const canvas = document.createElement('canvas');
    canvas.width = 120; canvas.height = 60;
    const drawing = canvas.getContext('2d');
    drawing.drawImage(video, 0, 0, 120, 60, 0, 0, 120, 60);
    return Array.from(drawing.getImageData(0, 0, 120, 60).data).filter((_, i) => i % 4 == 0);
}"""
_SEEK = """async (video) => {
    video.pause();
    const seeked = new Promise(done => video.addEventListener('seeked', done, {once: true}));
    video.currentTime = 6.5;
    await seeked;
    return video.currentTime;
}"""


@browser_test
def test_the_video_plays_and_seeks_to_a_later_time_served_in_byte_ranges(tab: Tab, demo: Any) -> None:
    tab.open(f"records/{demo.video}")
    video = tab.page.locator("video").element_handle()
    tab.page.evaluate("(video) => { video.muted = true; return video.play(); }", video)
    tab.wait_for("(video) => video.currentTime > 0.3", video)
    assert tab.page.evaluate("(video) => video.duration", video) == pytest.approx(pictures.VIDEO_SECONDS, abs=0.2)
    early = tab.page.evaluate(_FRAME_CORNER, video)  # the corner where each frame says its second
    assert tab.page.evaluate(_SEEK, video) == pytest.approx(6.5, abs=0.1)
    tab.wait_for("(video) => video.readyState >= 2", video)
    late = tab.page.evaluate(_FRAME_CORNER, video)
    differing = sum(abs(a - b) > 60 for a, b in zip(early, late, strict=True))
    assert differing > 100, "the frame shown after the seek is the early one"  # "00s" became "06s"
    # Every answer the player had was the byte range it asked for (Chromium asks "bytes=N-",
    # and for the index at the end "bytes=N-M"); whether it asks again from later in the file
    # depends on how much had arrived: a range from the middle is asked for below.
    url = f"{tab.origin}/records/{demo.video}/artifacts/{demo.video_sha256}"
    served = [r for r in tab.responses if r.url == url]
    assert served and all(r.status == 206 for r in served), [r.status for r in served]
    stored = (demo.path.parent / "inputs" / "bridge-approach.mp4").read_bytes()
    for response in served:
        asked = re.fullmatch(r"bytes=(\d+)-(\d*)", response.request.all_headers()["range"])
        assert asked is not None, response.request.all_headers()["range"]
        headers = response.all_headers()
        first, last, total = _content_range(headers["content-range"])
        wanted_last = min(int(asked[2]), len(stored) - 1) if asked[2] else len(stored) - 1
        assert (first, last, total) == (int(asked[1]), wanted_last, len(stored)), asked[0]
        assert int(headers["content-length"]) == last - first + 1
        assert headers["content-type"] == "video/mp4" and headers["x-content-type-options"] == "nosniff"
        assert headers["content-disposition"].startswith("inline;") and headers["accept-ranges"] == "bytes"
    middle = len(stored) // 2
    answer = tab.page.request.get(url, headers={"Range": f"bytes={middle}-{middle + 999}"})
    assert answer.status == 206 and answer.body() == stored[middle : middle + 1000]
    assert answer.headers["content-range"] == f"bytes {middle}-{middle + 999}/{len(stored)}"


@browser_test
def test_the_sound_plays_in_its_player(tab: Tab, demo: Any) -> None:
    record_id, sha256 = demo.files["radio-intercept.wav"]
    tab.open(f"records/{record_id}")
    audio = tab.page.locator("main audio").element_handle()
    assert tab.page.evaluate("(audio) => audio.getAttribute('src')", audio).endswith(f"/artifacts/{sha256}")
    tab.page.evaluate("(audio) => { audio.muted = true; return audio.play(); }", audio)
    tab.wait_for("(audio) => audio.currentTime > 0.2", audio)
    assert tab.page.evaluate("(audio) => audio.duration", audio) == pytest.approx(1.0, abs=0.1)


def _content_range(header: str) -> tuple[int, int, int]:
    unit, _, spec = header.partition(" ")
    span, _, total = spec.partition("/")
    first, _, last = span.partition("-")
    assert unit == "bytes"
    return int(first), int(last), int(total)


def _filter(tab: Tab, **fields: str) -> list[str]:
    """Fill the filter form with *fields* (the rest cleared), submit it, and give the titles of
    the cards shown; the JSON of the same address must list the same records."""
    form = tab.page.locator("form.filters")
    for name in ("category", "tag", "since", "until", "bbox"):
        form.locator(f"input[name={name}]").fill(fields.get(name, ""))
    for name in ("status", "flag"):
        form.locator(f"select[name={name}]").select_option(fields.get(name, ""))
    with tab.page.expect_navigation():
        form.get_by_role("button", name="Filter").click()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(tab.page.url).query)
    assert {k: v[0] for k, v in query.items()} == fields
    titles = tab.texts("ul.grid li.card .title")
    listed = tab.page.request.get(_json_address(tab.page.url)).json()["records"]
    assert [r["title"] for r in listed] == titles
    return titles


@browser_test
def test_the_filters_narrow_the_grid_and_keep_their_values(tab: Tab, demo: Any) -> None:
    tab.open("records")
    assert _filter(tab, status="verified") == ["bridge-approach.mp4"]
    assert tab.page.locator("form.filters select[name=status]").input_value() == "verified"
    assert _filter(tab, tag="kharkiv") == ["kharkiv-street-0505.jpg"]
    assert tab.page.locator("form.filters input[name=tag]").input_value() == "kharkiv"
    assert _filter(tab, bbox="37,49,38,50") == ["izium-school-east-wall.png", "bridge-approach.mp4"]
    assert _filter(tab, since="2025-05-05", until="2025-05-05") == ["kharkiv-street-0505.jpg"]
    assert _filter(tab, since="2025-05-06", until="2025-05-06", status="unverified") == ["izium-school-east-wall.png"]
    assert _filter(tab, category="rome-8-2-b-ix") == ["izium-school-east-wall.png"]
    assert _filter(tab, flag="graphic") == ["mykolaiv-market-casualties.jpg"]
    assert tab.page.locator("ul.grid li.card img").count() == 0  # its picture withheld
    assert _filter(tab, tag="nowhere") == []
    assert tab.texts("p.empty") == ["No record matches."]
    tab.page.locator("form.filters").get_by_role("link", name="clear").click()
    tab.page.wait_for_url(f"{tab.origin}/records")
    assert tab.page.locator("ul.grid li.card").count() == demo.records
    # A box that is not four numbers: a page that says so, not a failure.
    tab.open("records?bbox=north", status=400)
    assert "four numbers" in tab.page.inner_text("main h1")
    tab.problems[:] = [p for p in tab.problems if "status of 400" not in p]


def _search(tab: Tab, text: str) -> list[tuple[str, str]]:
    box = tab.page.get_by_role("searchbox", name="Search reports")
    box.fill(text)
    with tab.page.expect_navigation():
        box.press("Enter")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(tab.page.url).query) == {"q": [text]}
    assert box.input_value() == text  # the box keeps what was searched
    links = tab.page.locator("ol.hits > li > a")
    return [(links.nth(n).inner_text(), links.nth(n).get_attribute("href") or "") for n in range(links.count())]


@browser_test
def test_search_finds_reports_in_any_script_and_says_when_nothing_matches(tab: Tab, demo: Any) -> None:
    tab.open("log")
    [(title, href)] = _search(tab, "обстріляли")
    assert title == "Школу обстріляли"
    assert "Школу обстріляли вранці. #verification @MapDesk" in tab.page.inner_text("ol.hits blockquote")
    [(title, href)] = _search(tab, "geolocate")  # the post linked onto the video's record
    assert (title, href) == ("bridge-approach.mp4", f"/records/{demo.video}")
    tab.page.get_by_role("link", name="bridge-approach.mp4").click()
    tab.page.wait_for_url(f"{tab.origin}/records/{demo.video}")
    assert _search(tab, "nothing-like-this") == []
    assert tab.texts("p.empty") == ["No report matches."]


@browser_test
def test_a_flagged_picture_is_never_shown_and_its_addresses_answer_404(tab: Tab, demo: Any) -> None:
    tab.open("records")
    card = tab.page.locator("ul.grid li.card").filter(has_text="mykolaiv-market-casualties.jpg")
    assert card.locator("img").count() == 0 and card.locator(".thumb.withheld").inner_text().lower() == "withheld"
    assert card.locator(".flag").all_inner_texts() == ["graphic"]
    tab.open(f"records/{demo.flagged}")
    assert tab.page.locator("main img, main video, main audio").count() == 0
    assert demo.flagged_sha256[:16] in tab.page.inner_text("section.withheld-note")
    assert "--show-sensitive" in tab.page.inner_text("section.withheld-note")
    assert not [url for url in tab.requests if demo.flagged_sha256 in url]  # not even asked for
    for kind in ("artifacts", "thumbnails"):
        tab.open(f"records/{demo.flagged}/{kind}/{demo.flagged_sha256}", status=404)
        assert "withheld" in tab.page.inner_text("main h1")
    tab.problems[:] = [p for p in tab.problems if "status of 404" not in p]


@browser_test
def test_with_show_sensitive_the_flagged_picture_is_shown(open_tab: Callable[[str], Tab], demo: Any) -> None:
    with _viewer(demo.path, "--show-sensitive") as origin:
        tab = open_tab(origin)
        tab.open(f"records/{demo.flagged}")
        assert "showing sensitive material" in tab.page.inner_text("p.readonly")
        [(src, width)] = [i for i in tab.images_decoded() if demo.flagged_sha256 in i[0]]
        assert width > 0 and src == f"/records/{demo.flagged}/thumbnails/{demo.flagged_sha256}"
        tab.page.locator(f"a[href$='{demo.flagged_sha256}']").click()  # full size, on click
        tab.page.wait_for_url(f"{tab.origin}/records/{demo.flagged}/artifacts/{demo.flagged_sha256}")
        assert tab.page.evaluate("document.images[0].naturalWidth") == 800


@browser_test
def test_the_policy_refusals_the_tabs_watch_for_are_seen(tab: Tab) -> None:
    """The checks every test ends with can fail: a picture from another origin and an inline
    style put into a page are refused by its policy, and the tab sees both."""
    tab.open("records")
    tab.page.evaluate(
        """() => document.querySelector('main').insertAdjacentHTML('beforeend',
            '<img src="http://127.0.0.1:9/x.png"><p style="color: red">styled</p>')"""
    )

    def refused(what: str) -> bool:
        return any(what in p.lower() and "content security policy" in p.lower() for p in tab.problems)

    deadline = time.monotonic() + 30
    while not (refused("127.0.0.1:9/x.png") and refused("inline style")) and time.monotonic() < deadline:
        tab.page.wait_for_timeout(50)  # (the page's events are delivered while Playwright waits)
    assert refused("127.0.0.1:9/x.png") and refused("inline style"), tab.problems
    assert any("img-src" in p for p in tab.problems), tab.problems
    assert tab.elsewhere() == ["http://127.0.0.1:9/x.png"]
    assert tab.page.evaluate("getComputedStyle(document.querySelector('main p:last-child')).color") != "rgb(255, 0, 0)"
    tab.problems.clear()
    tab.requests.clear()


@browser_test
def test_with_a_token_a_browser_logs_in_once_and_the_token_is_in_no_address(
    open_tab: Callable[[str], Tab], demo: Any
) -> None:
    token = "a-token-for-this-test-only-7f3a"
    with _viewer(demo.path, "--token", token) as origin:
        tab = open_tab(origin)
        tab.open("records")  # sent to the form
        assert tab.page.url == f"{tab.origin}/login"
        tab.page.get_by_label("Token").fill("not the token")
        with tab.page.expect_navigation():
            tab.page.get_by_role("button", name="Open").click()
        assert tab.texts("p.bad") == ["That is not the token."]
        tab.page.get_by_label("Token").fill(token)
        with tab.page.expect_navigation():
            tab.page.get_by_role("button", name="Open").click()
        assert tab.page.url == f"{tab.origin}/records"
        assert tab.page.locator("ul.grid li.card").count() == demo.records
        assert tab.page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it
        assert all(token not in url for url in tab.requests)
        tab.problems[:] = [p for p in tab.problems if "status of 401" not in p]
        # A script sends it in a header; without it, nothing but the form is answered.
        request = urllib.request.Request(origin + "/records.json")
        with pytest.raises(urllib.error.HTTPError) as refused:
            NO_PROXY.open(request, timeout=30)
        assert refused.value.code == 401
        request.add_header("Authorization", f"Bearer {token}")
        with NO_PROXY.open(request, timeout=30) as answer:
            assert len(json.load(answer)["records"]) == demo.records


@browser_test
def test_the_map_zooms_by_links_into_a_cluster_and_its_marks_open_records(tab: Tab, demo: Any) -> None:
    tab.open("map?bbox=22,44,41,53")  # Ukraine, with the Black Sea's coast
    assert tab.page.locator("figure.map svg path.map-land").count() == 1
    marks = tab.page.locator("figure.map svg g.map-marks > a")
    assert marks.count() == 2  # Kharkiv (a claim and a photo's GPS) and Izium (two claims and a video's tag)
    izium = tab.page.locator("figure.map svg a[href^='/map?bbox=']").filter(has_text="3")
    with tab.page.expect_navigation():
        izium.click()
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(tab.page.url).query)["bbox"][0].startswith("37.")
    assert tab.page.locator("figure.map svg a[href^='/records/']").count() >= 1
    with tab.page.expect_navigation():
        tab.page.locator("figure.map svg a[href^='/records/']").first.click()
    assert tab.page.url.removeprefix(tab.origin + "/records/") in (demo.video, demo.school)
    tab.page.go_back()
    with tab.page.expect_navigation():
        tab.page.locator("nav.zoom").get_by_role("link", name="whole world").click()
    assert tab.page.locator("figure.map svg path.map-land").count() == 1
    assert tab.texts("p.note") == ["5 positions from 9 records."]  # the flagged photo's GPS withheld


@browser_test
def test_the_timeline_marks_open_their_records(tab: Tab, demo: Any) -> None:
    tab.open("timeline")
    claim = tab.page.locator("figure.timeline svg a").filter(has_text="Damage to a school")
    with tab.page.expect_navigation():
        claim.click()
    assert tab.page.url == f"{tab.origin}/records/{demo.school}"
    tab.open("timeline?tag=kharkiv")
    lanes = tab.page.locator("figure.timeline svg title").all_text_contents()
    assert any("Shelling of a residential street" in t for t in lanes)
    assert not any("Damage to a school" in t for t in lanes)


# -- the pictures of docs/viewer.md ------------------------------------------------------------


@browser_test
def test_the_pictures_of_the_docs_are_taken_and_small(tab: Tab, demo: Any, tmp_path: Path) -> None:
    made = pictures.take_pictures(tab.page, tab.origin + "/", demo, tmp_path)
    assert [p.stem for p in made] == list(pictures.pages(demo))
    for path in made:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width == pictures.VIEWPORT["width"], path.name
            if path.stem in pictures.WHOLE_PAGE:
                assert pictures.VIEWPORT["height"] < image.height <= pictures.MAX_HEIGHT, path.name
            else:
                assert image.height == pictures.VIEWPORT["height"], path.name
            colours = image.convert("RGB").getcolors(1 << 16)
        assert colours is not None and len(colours) > 8, f"{path.name} is blank"
        assert path.stat().st_size < 200_000, f"{path.name}: {path.stat().st_size} bytes"
    text = (ROOT / "docs" / "viewer.md").read_text(encoding="utf-8")
    for path in made:
        assert f"](viewer/{path.name})" in text, f"docs/viewer.md does not show {path.name}"
        assert (ROOT / "docs" / "viewer" / path.name).is_file(), f"run python docs/viewer_pictures.py ({path.name})"


# -- the command, over real HTTP, without a browser --------------------------------------------


def _files(catalog: Catalog) -> dict[str, str]:
    """The SHA-256 of every file of the catalog's folder but SQLite's shared-memory index
    (``catalog.db-shm``, where every reader, a read-only one too, marks what it reads)."""
    return {
        str(p.relative_to(catalog.path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(catalog.path.rglob("*"))
        if p.is_file() and not p.name.endswith("-shm")
    }


def test_serve_answers_over_http_changes_nothing_and_stops_on_ctrl_c_without_a_traceback(
    catalog: Catalog, jpeg_file: Callable[..., Path]
) -> None:
    [added] = catalog.add([jpeg_file("street.jpg")])
    size, before = catalog.log_size(), _files(catalog)
    with pictures.running_viewer(catalog.path) as (address, process):
        assert address.startswith("http://127.0.0.1:") and address.endswith("/")
        with NO_PROXY.open(address + "records", timeout=30) as answer:
            assert answer.status == 200 and answer.headers["Content-Security-Policy"] == PAGE_POLICY
            page = answer.read().decode("utf-8")
        assert "street.jpg" in page and f'href="/records/{added.record_id}"' in page
        request = urllib.request.Request(address + f"records/{added.record_id}", headers={"Accept": "application/json"})
        with NO_PROXY.open(request, timeout=30) as answer:
            assert json.load(answer)["record"]["id"] == added.record_id
        with NO_PROXY.open(address + f"records/{added.record_id}/artifacts/{added.sha256}", timeout=30) as answer:
            assert answer.read() == (catalog.path.parent / "street.jpg").read_bytes()
        # A page elsewhere that makes its own name resolve to 127.0.0.1 is not answered.
        renamed = urllib.request.Request(address + "records", headers={"Host": "attacker.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            NO_PROXY.open(renamed, timeout=30)
        assert refused.value.code == 421
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        assert process.stdout is not None and process.stderr is not None
        out, errors = process.stdout.read(), process.stderr.read()
    assert code == 130, errors  # as a shell reports an interrupted program (cli/app.py)
    # After the line with the address (read above): click ends the line a terminal shows ^C on.
    assert out == "" and errors == "\ninterrupted\n"
    assert catalog.log_size() == size and _files(catalog) == before
