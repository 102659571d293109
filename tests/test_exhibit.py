"""Court exhibits of one record: what they show, that they are self-contained and escape every
text, that they are logged and never replace a file, redaction, and records without media, with a
video whose analysis failed, or with thousands of custody events.

Real catalogs, real JPEGs (Pillow) and MP4s (PyAV), real PDFs (WeasyPrint) read back with
poppler's pdftotext where it is installed.  The browser's view is in test_exhibit_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.custody import Action
from evidence_catalog.errors import InputError, IntegrityError, NotFoundError
from evidence_catalog.interchange.exhibit import ExhibitSource, ShownEvent, render_html
from evidence_catalog.serialize import to_document
from evidence_catalog.store.database import EventDraft
from tests.conftest import CliResult, make_jpeg
from tests.strategies import evidence_records

UKRAINIAN = "Обстріл житлового кварталу в Харкові, 5 травня"
ARABIC = "قصف حي سكني في المدينة"
HOSTILE = (
    '<script>window.__pwned = 1</script><img src="https://example.invalid/x.png" onerror="window.__pwned = 2">'
    '<link rel="stylesheet" href="https://example.invalid/a.css"><style>body{display:none}</style>&amp;'
)
#: A file name that would be markup if it were not escaped (the record's title).
HOSTILE_NAME = '"><img src=x onerror=alert(1)>.jpg'
REPORT_TEXT = f"{UKRAINIAN} {HOSTILE} — {ARABIC}"


def make_record(catalog: Catalog, folder: Path, *, text: str = REPORT_TEXT, name: str = HOSTILE_NAME) -> str:
    """A record with a JPEG (EXIF with GPS), a report announcing it (linked from a digest), a
    claim, an assessment and a note; returns its id."""
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / name
    image.write_bytes(make_jpeg())
    [added] = catalog.add([image])
    record_id = added.record_id
    digest = folder / "digest.txt"
    digest.write_text(f"Харківський монітор (Telegram)\n{text}\n", encoding="utf-8")
    before = set(catalog.record_ids())
    catalog.ingest(digest)
    [other] = set(catalog.record_ids()) - before
    report = catalog.record(other).reports[0]
    catalog.link(report.id, record_id, note="the post shows this picture")
    catalog.claim(record_id, summary="Shelling of a residential block <b>", source_report_id=report.id)
    catalog.assess(record_id, "in_progress", methods=["geolocation"], confidence="medium", note="Line one.\nLine two.")
    return record_id


class Parsed(html.parser.HTMLParser):
    """An HTML document's elements, attributes and the text of each ``pre.text``, as a browser's
    parser reads them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.pre_texts: list[str] = []
        self.style = ""
        self._in: str | None = None
        self.title = ""
        self._h1 = False
        self._pre_started = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "pre" and "text" in (dict(attrs).get("class") or "").split():
            self._in = "pre"
            self._pre_started = False
            self.pre_texts.append("")
        elif tag == "style":
            self._in = "style"
        elif tag == "h1":
            self._h1 = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("pre", "style"):
            self._in = None
        if tag == "h1":
            self._h1 = False

    def handle_data(self, data: str) -> None:
        if self._in == "pre":
            if not self.pre_texts[-1] and data.startswith("\n") and not self._pre_started:
                data = data[1:]  # HTML drops a line break right after <pre> (html.parser does not)
            self._pre_started = True
            self.pre_texts[-1] += data
        elif self._in == "style":
            self.style += data
        if self._h1:
            self.title += data


@pytest.mark.usefixtures("needs_pdf")
def test_an_exhibit_in_a_folder_is_html_and_pdf_logged_with_their_sha256(catalog: Catalog, tmp_path: Path) -> None:
    record_id = make_record(catalog, tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    result = catalog.exhibit(record_id, out)
    assert result.html == out / f"{record_id}.html" and result.pdf == out / f"{record_id}.pdf"
    assert result.html_sha256 == hashlib.sha256(result.html.read_bytes()).hexdigest()
    assert result.pdf_sha256 == hashlib.sha256(result.pdf.read_bytes()).hexdigest()
    assert result.pdf.read_bytes().startswith(b"%PDF-")
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{record_id}.html", f"{record_id}.pdf"])  # no .part
    event = catalog.history()[-1]
    assert event.seq == result.export_seq and event.action == "records.exported" and event.subject == "catalog"
    details = event.details
    assert (details["format"], details["sha256"], details["record_ids"]) == ("exhibit", result.pdf_sha256, [record_id])
    assert {(f["format"], f["sha256"], f["size"]) for f in details["files"]} == {
        ("html", result.html_sha256, result.html.stat().st_size),
        ("pdf", result.pdf_sha256, result.pdf.stat().st_size),
    }
    assert details["redaction"] is None
    assert [t["name"] for t in details["tools"]] == ["evidence-catalog", "WeasyPrint"]
    assert catalog.verify().ok
    # Everything the record holds is shown: digests, reports exactly, claims as alleged, assessments.
    page = result.html.read_text(encoding="utf-8")
    parsed = Parsed(page)
    record = catalog.record(record_id)
    for entry in record.artifacts:
        assert entry.artifact.sha256 in page
    assert REPORT_TEXT in parsed.pre_texts
    assert "Line one.\nLine two." in parsed.pre_texts
    assert "Alleged: a claim, not a finding" in page and "Shelling of a residential block &lt;b&gt;" in page
    assert "geolocation" in page and "in_progress" in page
    assert "50.450333" in page[:] or "50.45033" in page  # the EXIF position
    assert parsed.title == '"><img src=x onerror=alert(1)>.jpg'
    for event in catalog.history(record_id):
        assert event.hash in page  # the whole custody history
    assert_proofs_lead_to_the_signed_root(page, catalog, len(catalog.history(record_id)))


def assert_proofs_lead_to_the_signed_root(page: str, catalog: Catalog, events: int) -> None:
    """Each inclusion proof the exhibit prints leads from its leaf to the root of the checkpoint
    it prints, and that checkpoint is signed by the catalog's log key."""
    import html as html_module
    import re

    from evidence_catalog import checkpoint, merkle

    [note] = re.findall(r'<pre class="note">(.*?)</pre>', page, flags=re.S)
    key = catalog.log_key_info()
    signed = checkpoint.verify(html_module.unescape(note), key.origin, key.public_key)
    proofs = re.findall(
        r'<span class="seq">(\d+)</span> <span class="hash">leaf ([0-9a-f]{64})</span><br>'
        r'<span class="hash">path ([^<]*)</span>',
        page,
    )
    assert len(proofs) == events
    for seq, leaf, path in proofs:
        hashes = [bytes.fromhex(h) for h in path.split()] if "empty" not in path else []
        root = merkle.root_from_inclusion(int(seq) - 1, signed.size, bytes.fromhex(leaf), hashes)
        assert root == signed.root


def test_the_html_loads_nothing_runs_nothing_and_shows_hostile_text_as_text(catalog: Catalog, tmp_path: Path) -> None:
    record_id = make_record(catalog, tmp_path / "in")
    page = catalog.exhibit(record_id, tmp_path / "e.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    parsed = Parsed(page)
    tags = [tag for tag, _ in parsed.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags and "object" not in tags
    assert tags.count("style") == 1  # only the exhibit's own
    for tag, attrs in parsed.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)  # no event handler survived escaping
            if name in ("src", "href", "srcset", "action", "background", "poster"):
                assert value is not None and value.startswith("data:"), (tag, name, value)
    [policy] = [
        a["content"] for t, a in parsed.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policy is not None and policy.startswith("default-src 'none'; img-src data:;")
    digest = base64.b64encode(hashlib.sha256(parsed.style.encode("utf-8")).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy  # the one style sheet, by its hash
    assert [t for t in parsed.pre_texts if HOSTILE in t] == [REPORT_TEXT]
    assert sum(1 for t, a in parsed.tags if t == "img") == 1  # the record's JPEG, not the report's
    # A captured title ("VERIFIED AUTHENTIC") is the source's words, said so above it.
    assert re.search(r"<p>Title, as recorded \(the source's words, not a finding of this exhibit\):</p>\n<h1", page)


@pytest.mark.no_postgresql_pass  # no catalog: the same on both
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(record=evidence_records(), text=st.text())
def test_every_text_comes_back_exactly_from_the_html(record: Any, text: str) -> None:
    """Whatever the record holds, the exhibit's HTML is parsed back into the same texts, and no
    text becomes an element."""
    import attrs

    if record.reports:
        record = attrs.evolve(record, reports=(attrs.evolve(record.reports[0], text=text), *record.reports[1:]))
    page = render_html(ExhibitSource(record=record, events=()))
    if any(0xD800 <= ord(c) <= 0xDFFF for c in page):
        page = page.encode("utf-8", "backslashreplace").decode("utf-8")
        return  # a lone surrogate is written escaped (checked in the next test)
    parsed = Parsed(page)
    assert {tag for tag, _ in parsed.tags} <= ALLOWED_TAGS
    expected = [r.text for r in record.reports] + [a.note for a in record.assessments if a.note is not None]
    expected += [n.text for n in record.notes]
    # A browser reads \r and \r\n as \n (html.parser keeps them): the same line breaks.
    assert [_as_parsed(t) for t in parsed.pre_texts] == [_as_parsed(t) for t in expected]
    title = record.title if record.title is not None else "(untitled record)"
    assert _as_parsed(parsed.title) == _as_parsed(title)


ALLOWED_TAGS = {
    *("html", "head", "meta", "title", "style", "body", "header", "section", "h1", "h2", "h3", "p", "span"),
    *("strong", "code", "div", "ul", "ol", "li", "table", "tr", "th", "td", "pre", "figure", "figcaption"),
    *("img", "br", "bdi"),  # bdi: a text from a source, isolated from the exhibit's words around it
}


def _as_parsed(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def test_a_lone_surrogate_is_written_escaped_not_lost(catalog: Catalog, tmp_path: Path) -> None:
    import attrs

    record_id = make_record(catalog, tmp_path / "in")
    record = catalog.record(record_id)
    broken = attrs.evolve(record, reports=(attrs.evolve(record.reports[0], text="half \ud83d of a pair"),))
    page = render_html(ExhibitSource(record=broken, events=()))
    assert "half \\ud83d of a pair" in page.encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.mark.usefixtures("needs_pdf")
def test_one_file_is_written_when_one_is_named_and_no_file_is_replaced(catalog: Catalog, tmp_path: Path) -> None:
    record_id = make_record(catalog, tmp_path / "in")
    pdf = catalog.exhibit(record_id, tmp_path / "exhibit.pdf")
    assert pdf.html is None and pdf.html_sha256 is None and (tmp_path / "exhibit.pdf").is_file()
    assert not (tmp_path / "exhibit.html").exists()
    page = catalog.exhibit(record_id, tmp_path / "exhibit.html")
    assert page.pdf is None and page.html == tmp_path / "exhibit.html"
    events = len(catalog.history())
    before = (tmp_path / "exhibit.pdf").read_bytes()
    with pytest.raises(InputError, match="already exists"):
        catalog.exhibit(record_id, tmp_path / "exhibit.pdf")
    with pytest.raises(InputError, match=r"\.pdf or \.html"):
        catalog.exhibit(record_id, tmp_path / "exhibit.docx")
    with pytest.raises(InputError, match="inside the catalog"):
        catalog.exhibit(record_id, catalog.path / "exhibit.pdf")
    with pytest.raises(NotFoundError):
        catalog.exhibit("01900000-0000-7000-8000-000000000000", tmp_path / "none.pdf")
    (tmp_path / "both").mkdir()
    (tmp_path / "both" / f"{record_id}.pdf").write_bytes(b"someone else's")
    with pytest.raises(InputError, match="already exists"):
        catalog.exhibit(record_id, tmp_path / "both")
    assert (tmp_path / "exhibit.pdf").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "both").iterdir()) == [f"{record_id}.pdf"]
    assert len(catalog.history()) == events  # nothing refused was logged
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.usefixtures("needs_pdf")
def test_the_same_catalog_gives_the_same_html_and_pdf(catalog: Catalog, tmp_path: Path) -> None:
    from evidence_catalog.interchange.exhibit_pdf import html_to_pdf
    from evidence_catalog.operations.exhibiting import read_source

    record_id = make_record(catalog, tmp_path / "in")
    ctx = catalog._ctx
    first = render_html(read_source(ctx, record_id, None))
    second = render_html(read_source(ctx, record_id, None))
    assert first == second
    assert html_to_pdf(first, title="t") == html_to_pdf(second, title="t")
    assert html_to_pdf(first, title="t") != html_to_pdf(first.replace("Line one.", "Line 1."), title="t")


@pytest.mark.usefixtures("needs_pdf")
def test_a_redacted_exhibit_withholds_what_the_flags_name(catalog: Catalog, tmp_path: Path) -> None:
    record_id = make_record(catalog, tmp_path / "in", text=f"Posted by witness Olena K. {UKRAINIAN}")
    record = catalog.record(record_id)
    [image] = [e.artifact for e in record.artifacts if e.artifact.media_type == "image/jpeg"]
    report = record.reports[0]
    catalog.flag(record_id, "graphic", "shows the injured", artifacts=[image.sha256])
    catalog.flag(record_id, "personal_data", "names a witness", fields=[f"reports/{report.id}/text"])
    out = tmp_path / "out"
    out.mkdir()
    result = catalog.exhibit(record_id, out, redact=True)
    page = result.html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert result.redacted and "Redacted exhibit" in page
    jpeg = catalog.open_artifact(image.sha256).read()
    assert base64.b64encode(jpeg).decode()[:200] not in page and "<img" not in page
    assert "Olena" not in page and "[withheld]" in page
    assert image.sha256 in page  # listed, by SHA-256 and size only
    assert "50.450333" not in page and "DemoCam" not in page  # the withheld image's EXIF too
    details = catalog.history()[-1].details
    assert details["redaction"]["kinds"] == ["graphic", "minors", "personal_data", "protected_source"]
    assert {"record_id": record_id, "sha256": image.sha256} in details["redaction"]["withheld_artifacts"]
    assert details["redaction"]["altered_events"]  # the events that held the text show it withheld
    if shutil.which("pdftotext"):
        text = _pdf_text(result.pdf)  # type: ignore[arg-type]
        assert "Olena" not in text and "[withheld]" in text
    # Without --redact everything is shown (the flags are for what travels).
    full = catalog.exhibit(record_id, tmp_path / "full.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert "Olena" in full and "<img" in full


def test_a_record_without_media_is_an_exhibit_that_says_so(catalog: Catalog, tmp_path: Path) -> None:
    digest = tmp_path / "digest.txt"
    digest.write_text(f"Монітор (Telegram)\n{ARABIC}\n", encoding="utf-8")
    catalog.ingest(digest)
    [record_id] = catalog.record_ids()
    result = catalog.exhibit(record_id, tmp_path / "e.html")
    page = result.html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert "This record holds no image or video." in page and "<img" not in page
    assert ARABIC in Parsed(page).pre_texts
    assert "No claim is recorded." in page and "No assessment has been made of this record." in page


@pytest.mark.usefixtures("needs_pdf")
def test_a_video_whose_analysis_failed_says_what_failed(catalog: Catalog, tmp_path: Path) -> None:
    from tests.test_media import make_video

    whole = make_video(tmp_path / "whole.mp4", frames=30).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 3])
    catalog.add([cut])
    [record_id] = catalog.record_ids()
    [(_, analysis)] = catalog.analyses(record_id)
    assert analysis is not None and analysis.errors and not analysis.keyframes  # what the test is about
    out = tmp_path / "out"
    out.mkdir()
    result = catalog.exhibit(record_id, out)
    page = result.html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert "The analysis of this video did not derive everything" in page
    assert analysis.errors[0].split(":")[0] in page and "<img" not in page
    assert result.pdf is not None and result.pdf.read_bytes().startswith(b"%PDF-")


def test_an_analysed_video_shows_its_contact_sheet_and_keyframes(catalog: Catalog, tmp_path: Path) -> None:
    from tests.test_media import make_video

    catalog.add([make_video(tmp_path / "v.mp4", frames=60, size=(160, 120))])
    [record_id] = catalog.record_ids()
    [(_, analysis)] = catalog.analyses(record_id)
    assert analysis is not None and analysis.contact_sheet_sha256 and analysis.keyframes
    page = catalog.exhibit(record_id, tmp_path / "v.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    sheet = catalog.open_artifact(analysis.contact_sheet_sha256).read()
    assert f'src="data:image/jpeg;base64,{base64.b64encode(sheet).decode()}"' in page
    assert page.count("<img") == 1 + len(analysis.keyframes)


def test_a_stored_picture_that_changed_stops_the_exhibit(catalog: Catalog, tmp_path: Path) -> None:
    record_id = make_record(catalog, tmp_path / "in")
    [image] = [e.artifact for e in catalog.record(record_id).artifacts if e.artifact.media_type == "image/jpeg"]
    stored = catalog.artifact_path(image.sha256)
    os.chmod(stored, 0o644)
    data = bytearray(stored.read_bytes())
    data[-10] ^= 0xFF
    stored.write_bytes(bytes(data))
    events = len(catalog.history())
    with pytest.raises(IntegrityError, match="run verify"):
        catalog.exhibit(record_id, tmp_path / "e.html")
    assert not (tmp_path / "e.html").exists() and len(catalog.history()) == events


@pytest.mark.slow
def test_a_record_with_thousands_of_custody_events_is_shown_whole_in_bounded_time(
    catalog: Catalog, tmp_path: Path
) -> None:
    record_id = make_record(catalog, tmp_path / "in")
    # The events a thousand `tag` calls make, in one transaction, so under one signed checkpoint
    # instead of a thousand (what is timed is the exhibit, not the making of its events: the
    # thousand checkpoints took most of this test).
    ctx = catalog._ctx  # type: ignore[attr-defined]
    with ctx.write() as session:
        drafts = [
            EventDraft(
                at=ctx.clock(),
                actor=ctx.operator,
                action=Action.TAGS_ADDED,
                subject=record_id,
                details={"tags": list(ctx.db.add_tags(session, record_id, [f"t{i:04d}"]))},
            )
            for i in range(1000)
        ]
        ctx.db.append_events(session, drafts)
    assert catalog.verify(record_event=False, remember=False).ok
    events = catalog.history(record_id)
    assert len(events) > 1000
    started = time.perf_counter()
    result = catalog.exhibit(record_id, tmp_path / "e.html")
    elapsed = time.perf_counter() - started
    page = result.html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert all(event.hash in page for event in events)
    assert page.count("leaf ") >= len(events)  # every event's inclusion proof
    assert elapsed < 60, f"{elapsed:.1f} s for the HTML of {len(events)} events"


def test_the_command_writes_the_exhibit_and_says_so_in_one_line_when_it_cannot(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    record_id = make_record(catalog, tmp_path / "in")
    path = catalog.path
    catalog.close()
    result = run_cli("exhibit", record_id, "--catalog", path, "--output", tmp_path / "e.html")
    assert result.code == 0, result.err
    assert f"wrote {tmp_path / 'e.html'} (sha256 " in result.out and "logged as custody event" in result.out
    again = run_cli("exhibit", record_id, "--catalog", path, "--output", tmp_path / "e.html")
    assert again.code != 0 and again.err.count("\n") == 1 and "already exists" in again.err
    wrong = run_cli("exhibit", "not-an-id", "--catalog", path, "--output", tmp_path / "x.pdf")
    assert wrong.code != 0 and "not a record id" in wrong.err and "Traceback" not in wrong.err


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_the_logged_event_is_json_like_every_export_event(catalog: Catalog, tmp_path: Path) -> None:
    record_id = make_record(catalog, tmp_path / "in")
    catalog.exhibit(record_id, tmp_path / "e.html")
    document = to_document(catalog.history()[-1])
    assert json.loads(json.dumps(document)) == document
    # The exhibit is an export of this record: a later exhibit lists it in the record's history.
    later = catalog.exhibit(record_id, tmp_path / "f.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert document["hash"] in later and "exhibit export" in later
    assert isinstance(ShownEvent(document=document).document, dict)


def test_without_weasyprint_the_html_is_written_and_a_pdf_refused_in_one_line(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Callable[..., CliResult]
) -> None:
    import sys

    record_id = make_record(catalog, tmp_path / "in")
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import weasyprint raises ImportError
    events = len(catalog.history())
    with pytest.raises(InputError, match="needs WeasyPrint"):
        catalog.exhibit(record_id, tmp_path / "e.pdf")
    assert not (tmp_path / "e.pdf").exists() and len(catalog.history()) == events
    result = catalog.exhibit(record_id, tmp_path / "e.html")
    assert result.html is not None and result.html.is_file()
    assert [t["name"] for t in catalog.history()[-1].details["tools"]] == ["evidence-catalog"]
    path = catalog.path
    catalog.close()
    refused = run_cli("exhibit", record_id, "--catalog", path, "--output", tmp_path / "f.pdf")
    assert refused.code != 0 and refused.err.count("\n") == 1 and "WeasyPrint" in refused.err


def test_the_rfc3161_tokens_of_the_files_and_of_a_covering_checkpoint_are_shown(
    catalog: Catalog, tmp_path: Path
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (the test's Time-Stamp Authority)")
    from tests.tsa_server import LocalTSA

    record_id = make_record(catalog, tmp_path / "in")
    [image] = [e.artifact for e in catalog.record(record_id).artifacts if e.artifact.media_type == "image/jpeg"]
    with LocalTSA() as tsa:
        stamped = catalog.timestamp(url=tsa.url, artifacts=[image.sha256])
    assert len(stamped.granted) == 2
    page = catalog.exhibit(record_id, tmp_path / "e.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    tokens = [e.details for e in catalog.history() if e.action == "timestamp.added"]
    assert {t["stamps"] for t in tokens} == {"artifact", "checkpoint"}
    for token in tokens:
        assert token["token"] in page and token["gen_time"] in page  # the DER token itself, to check with openssl
    assert "No RFC 3161 time-stamp token" not in page


@pytest.mark.no_postgresql_pass  # no catalog: the same on both
def test_a_picture_is_left_out_with_the_reason_when_it_is_too_large_or_unreadable() -> None:
    from evidence_catalog import model
    from evidence_catalog.interchange.exhibit import MAX_PICTURE_BYTES, picture_refusal

    def artifact(media_type: str, size: int, image: tuple[int, int] | None) -> model.Artifact:
        metadata = model.EmbeddedMetadata(
            extractor=model.Agent(name="exifread", kind="software", version="3"),
            image=None if image is None else model.ImageInfo(width=image[0], height=image[1]),
        )
        return model.Artifact(
            digests=model.Digests(sha256="a" * 64), size=size, media_type=media_type, metadata=metadata
        )

    assert picture_refusal(artifact("image/jpeg", 1000, (4000, 3000))) is None
    assert "pixels" in (picture_refusal(artifact("image/png", 1000, (20_000, 20_000))) or "")
    assert "too large" in (picture_refusal(artifact("image/jpeg", MAX_PICTURE_BYTES + 1, (10, 10))) or "")
    assert "header" in (picture_refusal(artifact("image/jpeg", 1000, None)) or "")
    assert "not a picture" in (picture_refusal(artifact("image/tiff", 1000, (10, 10))) or "")


def test_an_unreadable_analysis_document_is_named_under_its_video(catalog: Catalog, tmp_path: Path) -> None:
    from tests.test_media import make_video

    catalog.add([make_video(tmp_path / "v.mp4", frames=30)])
    [record_id] = catalog.record_ids()
    [(document, _)] = catalog.analyses(record_id)
    stored = catalog.artifact_path(document)
    os.chmod(stored.parent, 0o755)
    stored.unlink()  # (one whose bytes changed stops the exhibit: test_exhibit_trust.py)
    page = catalog.exhibit(record_id, tmp_path / "v.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert "No analysis of this video could be read" in page
    assert f'Analysis document <span class="hash">{document}</span>' in page


def test_a_redacted_exhibit_of_events_hashed_before_salted_commitments_shows_them_whole_without_a_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evidence_catalog import sealing
    from evidence_catalog.store import log as custody_log
    from tests.salted import unsalted_sealed_event

    secret = "Olena Kovalenko"
    monkeypatch.setattr(custody_log, "sealed_event", unsalted_sealed_event)  # as versions before salts wrote
    with Catalog.init(tmp_path / "catalog", operator="Field Analyst <field@example.org>") as catalog:
        (tmp_path / "a.txt").write_text("a", encoding="utf-8")
        added = catalog.add_file(tmp_path / "a.txt")
        note = catalog.add_note(added.record_id, secret)
        catalog.tag(added.record_id, ["old-after-the-note"])
        monkeypatch.setattr(custody_log, "sealed_event", sealing.sealed_event)  # this version from here on
        catalog.add_note(added.record_id, "written by this version")
        catalog.flag(added.record_id, "personal_data", "a name", fields=[f"notes/{note.id}/text"])
        events = catalog.history(added.record_id)
        result = catalog.exhibit(added.record_id, tmp_path / "e.html", redact=True)
        page = result.html.read_text(encoding="utf-8")  # type: ignore[union-attr]
        full = catalog.exhibit(added.record_id, tmp_path / "full.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert secret not in page and secret in full
    old = [e for e in events if "salt" not in e.details]
    note_event = next(e for e in events if e.action == "note.added" and e.details["note"]["text"] == secret)
    whole = [e for e in old if e.seq >= note_event.seq]
    assert [e.action for e in whole] == ["note.added", "tags.added"]
    assert page.count("withheld whole (written before salted commitments") == len(whole)
    for event in whole:
        assert event.hash not in page  # its hash would confirm a guess at the text
    assert '<pre class="note">' not in page and "No signed checkpoint is given here" in page
    assert '<pre class="note">' in full  # the unredacted exhibit has the checkpoint and proofs
    for event in events:
        if event not in whole:
            assert event.hash in page


def test_pictures_stop_being_put_in_when_they_fill_the_exhibit(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evidence_catalog.interchange import exhibit as exhibit_module

    record_id = make_record(catalog, tmp_path / "in")
    second = tmp_path / "second.jpg"
    second.write_bytes(make_jpeg(colour=(200, 10, 10)))
    catalog.add([second], record_id=record_id)
    sizes = [e.artifact.size for e in catalog.record(record_id).artifacts if e.artifact.media_type == "image/jpeg"]
    monkeypatch.setattr(exhibit_module, "MAX_TOTAL_PICTURE_BYTES", sizes[0] + sizes[1] - 1)
    page = catalog.exhibit(record_id, tmp_path / "e.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert page.count("<img") == 1 and "the pictures shown before it fill the exhibit" in page


def test_a_catalog_that_cannot_log_the_exhibit_writes_none(catalog: Catalog, tmp_path: Path) -> None:
    from evidence_catalog.errors import StorageError

    record_id = make_record(catalog, tmp_path / "in")
    path = catalog.path
    catalog.close()
    out = tmp_path / "out"
    out.mkdir()
    with Catalog.open(path, read_only=True) as opened:
        events = len(opened.history())
        with pytest.raises(StorageError, match="read-only, so an exhibit could not be logged"):
            opened.exhibit(record_id, out)
        assert len(opened.history()) == events
    assert list(out.iterdir()) == []
