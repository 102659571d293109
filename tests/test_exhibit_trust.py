"""A court exhibit says nothing the catalog cannot back: a checkpoint row the log's key did not
sign is never shown as signed, and a custody event or a record changed in the database behind
the library's back stops the exhibit instead of being printed beside proofs that do not cover it.

Real catalogs; the tampering is done with plain SQL on the catalog's database, as an attacker
with access to it would.
"""

from __future__ import annotations

import html
import html.parser
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog, checkpoint
from evidence_catalog.checkpoint import public_bytes
from evidence_catalog.errors import IntegrityError
from tests.conftest import database_dialect, make_jpeg, run_sql
from tests.strategies import evidence_records


def _record(catalog: Catalog, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / "photo.jpg"
    image.write_bytes(make_jpeg())
    [added] = catalog.add([image])
    catalog.claim(added.record_id, summary="Original claim", source_description="a witness")
    return added.record_id


def _note(page: str) -> str:
    [note] = re.findall(r'<pre class="note">(.*?)</pre>', page, flags=re.S)
    return html.unescape(note)


def test_a_checkpoint_row_the_log_key_did_not_sign_is_not_shown_as_signed(catalog: Catalog, tmp_path: Path) -> None:
    record_id = _record(catalog, tmp_path / "in")
    genuine = catalog.checkpoint()
    key = catalog.log_key_info()
    # Someone with the database but not the key: the real size and root, signed by another key.
    forged = checkpoint.sign(
        checkpoint.Checkpoint(origin=key.origin, size=genuine.size, root=bytes.fromhex(genuine.root)),
        Ed25519PrivateKey.generate(),
    )
    run_sql(
        catalog,
        "insert into checkpoint (tree_size, root_hash, note, signed, created_at)"
        " values (:size, :root, :note, :signed, :at)",
        {"size": genuine.size, "root": genuine.root, "note": forged, "signed": True, "at": "2030-01-01 00:00:00"},
    )
    page = catalog.exhibit(record_id, tmp_path / "e.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    shown = _note(page)
    assert shown != forged
    assert checkpoint.verify(shown, key.origin, key.public_key).size == genuine.size  # the log key's own


def test_a_verifier_key_file_that_is_not_the_logs_key_is_not_shown_as_its_key(catalog: Catalog, tmp_path: Path) -> None:
    record_id = _record(catalog, tmp_path / "in")
    key = catalog.log_key_info()
    other = checkpoint.vkey(key.origin, public_bytes(Ed25519PrivateKey.generate().public_key()))
    (catalog.path / "keys" / "log.vkey").write_text(other + "\n", encoding="ascii")
    page = catalog.exhibit(record_id, tmp_path / "e.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    # The key the exhibit names is the one the log's own events declare, whatever the file holds.
    assert key.vkey in page and other not in page
    checkpoint.verify(_note(page), key.origin, key.public_key)


def _replace_in_json(catalog: Catalog, table: str, column: str, old: str, new: str) -> None:
    if database_dialect(catalog) == "postgresql":
        expression = f"replace({column}::text, :old, :new)::json"
        where = f"{column}::text like :pattern"
    else:
        expression = f"replace({column}, :old, :new)"
        where = f"{column} like :pattern"
    run_sql(
        catalog,
        f"update {table} set {column} = {expression} where {where}",
        {"old": old, "new": new, "pattern": f"%{old}%"},
    )


@pytest.mark.parametrize("tables", [("record_part",), ("record_part", "custody_event")])
def test_a_record_changed_behind_the_librarys_back_stops_the_exhibit(
    catalog: Catalog, tmp_path: Path, tables: tuple[str, ...]
) -> None:
    record_id = _record(catalog, tmp_path / "in")
    for table in tables:
        _replace_in_json(catalog, table, "body" if table == "record_part" else "details", "Original", "Forged")
    events = len(catalog.history())
    with pytest.raises(IntegrityError, match="run verify"):
        catalog.exhibit(record_id, tmp_path / "e.html")
    assert not (tmp_path / "e.html").exists() and len(catalog.history()) == events


def test_an_analysis_document_changed_on_disk_stops_the_exhibit(catalog: Catalog, tmp_path: Path) -> None:
    import os

    from tests.test_media import make_video

    catalog.add([make_video(tmp_path / "v.mp4", frames=60, size=(160, 120))])
    [record_id] = catalog.record_ids()
    [(document, analysis)] = catalog.analyses(record_id)
    assert analysis is not None and analysis.keyframes
    stored = catalog.artifact_path(document)
    os.chmod(stored, 0o644)
    text = stored.read_text(encoding="utf-8")
    lie = text.replace('"errors":[]', '"errors":["none: the footage is authentic"]')
    assert lie != text
    stored.write_text(lie, encoding="utf-8")
    events = len(catalog.history())
    with pytest.raises(IntegrityError, match="run verify"):
        catalog.exhibit(record_id, tmp_path / "e.html")
    assert not (tmp_path / "e.html").exists() and len(catalog.history()) == events


class _Isolation(html.parser.HTMLParser):
    """Each text holding *mark*, with the element it sits in directly."""

    def __init__(self, page: str, mark: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.found: list[tuple[str, dict[str, str | None], str]] = []
        self.mark = mark
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("br", "img", "meta", "hr"):
            self.stack.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self.mark in data:
            tag, attrs = self.stack[-1]
            self.found.append((tag, attrs, data))


def test_a_right_to_left_override_in_any_text_cannot_reorder_the_exhibits_own_words(
    catalog: Catalog, tmp_path: Path
) -> None:
    """U+202E in a name or a text from a source runs to the end of its paragraph unless the
    text is isolated: "by Analyst\u202e on 2024-05-01, confidence high" would read backwards
    after the name.  Every text from the record sits alone in an isolating element (``bdi``,
    or one with ``dir``), which ends the override where the text ends."""
    from evidence_catalog.model import Agent, AgentKind

    rlo = "\u202e"
    operator = Agent(name=f"Analyst {rlo}x", kind=AgentKind.PERSON, organization=f"NGO {rlo}y")
    hostile = Catalog.open(catalog.path, operator=operator)
    record_id = _record(hostile, tmp_path / "in")
    hostile.assess(record_id, "in_progress", methods=["geolocation"], confidence="medium", note=f"n {rlo}")
    hostile.add_note(record_id, f"note {rlo}")
    hostile.flag(record_id, "personal_data", f"reason {rlo}", fields=["title"])
    for redact in (False, True):
        out = tmp_path / f"e{redact}.html"
        page = hostile.exhibit(record_id, out, redact=redact).html.read_text(encoding="utf-8")  # type: ignore[union-attr]
        found = _Isolation(page, rlo).found
        assert found
        for tag, attrs, data in found:
            assert tag == "bdi" or "dir" in attrs, (tag, attrs, data)
    # The meta generator line is an attribute: no markup in it.
    assert "<bdi" not in page.split("</head>")[0]


def test_characters_that_are_not_seen_are_kept_and_named(catalog: Catalog, tmp_path: Path) -> None:
    """A report shown exactly can still hide words from its reader: a zero-width space, or a
    right-to-left override that shows "fake" as "ekaf".  The exhibit keeps them and says so."""
    digest = tmp_path / "digest.txt"
    text = "Shelled at 10:00\u200b, says \u202eekaf\u202c the monitor"
    digest.write_text(f"Monitor (Telegram)\n{text}\n", encoding="utf-8")
    catalog.ingest(digest)
    [record_id] = catalog.record_ids()
    page = catalog.exhibit(record_id, tmp_path / "e.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert text in page  # exactly, the characters with it
    assert (
        "This text holds characters that are not seen, kept as they are: U+200B ZERO WIDTH SPACE (1), "
        "U+202C POP DIRECTIONAL FORMATTING (1), U+202E RIGHT-TO-LEFT OVERRIDE (1)."
    ) in page
    plain = tmp_path / "plain.txt"
    plain.write_text("Monitor (Telegram)\nNothing hidden here\tat all\n", encoding="utf-8")
    catalog.ingest(plain)
    [other] = set(catalog.record_ids()) - {record_id}
    page = catalog.exhibit(other, tmp_path / "p.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert "not seen" not in page


@pytest.mark.no_postgresql_pass  # no catalog: the same on both
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(record=evidence_records(), override=st.sampled_from(["\u202e", "\u202b", "\u2067", "\u200f"]))
def test_every_text_from_a_record_is_isolated_from_the_exhibits_own_words(record: Any, override: str) -> None:
    """Whatever the record holds, each text of it that holds a bidirectional control sits in an
    isolating element: every text of the record is given one (here the agents' names and the
    claims', reports' and notes' texts all hold one)."""
    import attrs

    from evidence_catalog.interchange.exhibit import ExhibitSource, render_html

    def hostile(agent: Any) -> Any:
        return attrs.evolve(agent, name=f"{agent.name}{override}")

    record = attrs.evolve(
        record,
        title=None if record.title is None else f"{record.title}{override}",
        created_by=hostile(record.created_by),
        claims=tuple(attrs.evolve(c, stated_by=hostile(c.stated_by)) for c in record.claims),
        assessments=tuple(attrs.evolve(a, assessor=hostile(a.assessor)) for a in record.assessments),
        notes=tuple(attrs.evolve(n, author=hostile(n.author), text=f"{n.text}{override}") for n in record.notes),
        reports=tuple(attrs.evolve(r, text=f"{r.text}{override}") for r in record.reports),
    )
    page = render_html(ExhibitSource(record=record, events=(), made_by=hostile(record.created_by)))
    found = _Isolation(page, override).found
    assert found
    for tag, attrs_, data in found:
        assert tag == "bdi" or "dir" in attrs_, (tag, attrs_, data)
