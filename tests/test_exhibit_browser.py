"""An exhibit as a reader sees it: the HTML opened in a real headless Chromium (Debian's
``chromium``, driven by Playwright; no browser is ever downloaded), the PDF rendered to PNG by
poppler's ``pdftoppm`` and read back by ``pdftotext``.

Each test is skipped, saying why, only where the program it needs is not installed; CI installs
them (``.ci/run``).  Screenshots and page images are kept under ``build/exhibit-screens/`` when
``EVIDENCE_CATALOG_KEEP_SCREENS`` is set, for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence_catalog import Catalog
from evidence_catalog.capture.browser import CHROMIUM_ARGS
from tests.test_exhibit import ARABIC, HOSTILE, UKRAINIAN, make_record

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _keep(path: Path, name: str) -> None:
    if os.environ.get("EVIDENCE_CATALOG_KEEP_SCREENS"):
        folder = Path("build/exhibit-screens")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / name)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install playwright)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            # The capture's switches: nothing Chromium does on its own (updates, sync, first-run
            # pages) makes a request, so every request seen is one the exhibit made.
            args=list(CHROMIUM_ARGS),  # the fresh profile folder is Chromium's --user-data-dir
            viewport={"width": 1000, "height": 1400},
            offline=False,
        )
        try:
            yield context
        finally:
            context.close()


def open_exhibit(browser: Any, page_file: Path) -> tuple[Any, list[str], list[str]]:
    """Open *page_file* in a new tab; return the tab, every request other than the file itself
    and ``data:``/``about:`` URIs, and every console error or uncaught page error."""
    page = browser.new_page()
    requests: list[str] = []
    errors: list[str] = []
    own = page_file.as_uri()
    page.on("request", lambda r: r.url == own or r.url.startswith(("data:", "about:")) or requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(own, wait_until="load")
    page.wait_for_timeout(300)  # a late request or error, if the page made one
    return page, requests, errors


def test_the_exhibit_in_chromium_loads_nothing_runs_nothing_and_every_image_decodes(
    catalog: Catalog, tmp_path: Path, browser: Any
) -> None:
    record_id = make_record(catalog, tmp_path / "in")
    result = catalog.exhibit(record_id, tmp_path / "exhibit.html")
    assert result.html is not None
    page, requests, errors = open_exhibit(browser, result.html)
    try:
        assert requests == []  # no image, style sheet, font or beacon fetched
        assert errors == []  # no CSP violation (the style sheet's hash is right), no script error
        assert page.evaluate("window.__pwned") is None  # the report's <script> and onerror did not run
        images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        assert images and all(done and width > 0 for done, width in images)
        shown = page.inner_text("#reports pre.text")
        assert HOSTILE in shown and UKRAINIAN in shown and ARABIC in shown  # markup shown as text
        assert page.title() == f"Exhibit: evidence record {record_id}"
        assert page.inner_text("h1") == catalog.record(record_id).title
        shot = tmp_path / "exhibit.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
        _keep(shot, "exhibit-browser.png")
    finally:
        page.close()


@pytest.mark.no_postgresql_pass  # what is checked is the browser's, not the database's
def test_a_changed_style_sheet_is_refused_by_the_policy(catalog: Catalog, tmp_path: Path, browser: Any) -> None:
    """The checks above can fail: a style the policy does not pin is a console error, and an
    image from elsewhere put into the file is an attempted request, seen, and blocked."""
    record_id = make_record(catalog, tmp_path / "in")
    result = catalog.exhibit(record_id, tmp_path / "exhibit.html")
    assert result.html is not None
    tampered = tmp_path / "tampered.html"
    text = result.html.read_text(encoding="utf-8")
    text = text.replace("<style>", "<style>h1 { color: red; }", 1)
    text = text.replace("</h1>", '</h1><img src="http://127.0.0.1:9/x.png">', 1)
    tampered.write_text(text, encoding="utf-8")
    page, requests, errors = open_exhibit(browser, tampered)
    try:
        assert any("Content Security Policy" in e and "style" in e for e in errors), errors
        assert any("Content Security Policy" in e and "127.0.0.1:9" in e for e in errors), errors
        assert requests == ["http://127.0.0.1:9/x.png"]  # the listener sees an attempt, even a blocked one
        assert page.evaluate("document.querySelector('img[src^=\"http\"]').naturalWidth") == 0
    finally:
        page.close()


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils is not installed (pdftoppm, pdftotext)")
@pytest.mark.usefixtures("needs_pdf")
def test_the_pdf_has_the_record_id_on_every_page_its_digests_and_non_latin_text(
    catalog: Catalog, tmp_path: Path
) -> None:
    record_id = make_record(catalog, tmp_path / "in")
    result = catalog.exhibit(record_id, tmp_path / "exhibit.pdf")
    assert result.pdf is not None
    info = subprocess.run(["pdfinfo", str(result.pdf)], check=True, capture_output=True, text=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)$", info, flags=re.M).group(1))  # type: ignore[union-attr]
    assert pages >= 3
    assert "CreationDate" not in info and "ModDate" not in info
    out = tmp_path / "png"
    out.mkdir()
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(result.pdf), str(out / "page")], check=True)
    images = sorted(out.glob("page-*.png"))
    assert len(images) == pages and all(p.read_bytes().startswith(b"\x89PNG") for p in images)
    _keep(images[0], "exhibit-pdf-page-1.png")
    for number in range(1, pages + 1):
        text = _text(result.pdf, first=number, last=number)
        assert f"Exhibit of evidence record {record_id}" in text, number
        assert f"Page {number} of {pages}" in text, number
    whole = _text(result.pdf)
    for entry in catalog.record(record_id).artifacts:
        assert entry.artifact.sha256 in whole.replace("\n", "")
    assert UKRAINIAN in whole
    # Arabic is shaped right to left; pdftotext gives back each word.
    assert all(word in whole for word in ARABIC.split())
    assert "<script>window.__pwned = 1</script>" in whole
    fonts = subprocess.run(["pdffonts", str(result.pdf)], check=True, capture_output=True, text=True).stdout
    # No empty boxes: every letter of the Ukrainian and Arabic text has a font that draws it
    # (Pango falls back through fontconfig to one that has the glyph; pdftotext alone cannot tell,
    # it gives the letter back even where an empty box was drawn).
    for letter in sorted({c for c in UKRAINIAN + ARABIC if not c.isascii() and not c.isspace()}):
        covering = subprocess.run(["fc-list", f":charset={ord(letter):x}"], capture_output=True, text=True).stdout
        assert covering.strip(), f"no font draws {letter!r} (U+{ord(letter):04X}): install fonts-noto-core"
    meta = subprocess.run(["pdfinfo", "-meta", str(result.pdf)], check=True, capture_output=True, text=True).stdout
    assert 'pdfaid:part="3"' in meta and 'pdfaid:conformance="B"' in meta  # declared PDF/A-3b
    assert "xmp:CreateDate" not in meta  # no clock in it
    header, _, *lines = fonts.splitlines()
    column = header.index("emb")
    assert lines and all(line[column : column + 3] == "yes" for line in lines), fonts  # every font embedded


def _text(pdf: Path, *, first: int | None = None, last: int | None = None) -> str:
    args = ["pdftotext", "-layout"]
    if first is not None:
        args += ["-f", str(first), "-l", str(last)]
    return subprocess.run([*args, str(pdf), "-"], check=True, capture_output=True, text=True).stdout
