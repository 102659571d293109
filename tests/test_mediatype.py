"""The indexed signature lookup gives puremagic's own answer, on every signature it has."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import puremagic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from puremagic import main as tables

from evidence_catalog.extract import mediatype
from evidence_catalog.extract.mediatype import Signatures, sniff_media_type

DATA = Path(__file__).parent / "data"
SIGNATURES = Signatures(tables)


Ranking = list[tuple[tuple[float, int], list[tuple[str, str, str]]]]


def _ranking(matches: Iterable[Any]) -> Ranking:
    """Matches as ranked groups: (confidence, signature length) and, sorted, the matches that
    share them.  Within a group puremagic's own order comes from a set (it changes with the hash
    seed); ours keeps its table's order.  Both must have the same groups in the same order."""
    groups: Ranking = []
    for m in matches:
        key = (m.confidence, len(m.byte_match))
        if groups and groups[-1][0] == key:
            groups[-1][1].append((m.mime_type, m.name, m.extension))
        else:
            groups.append((key, [(m.mime_type, m.name, m.extension)]))
    return [(key, sorted(members)) for key, members in groups]


def _puremagic(head: bytes, foot: bytes, ext: str = "") -> Ranking:
    try:
        return _ranking(tables._identify_all(head, foot, ext))
    except puremagic.PureError:
        return []


def _ours(head: bytes, foot: bytes, ext: str = "") -> Ranking:
    try:
        return _ranking(SIGNATURES.identify(head, foot, ext))
    except puremagic.PureError:
        return []


def test_the_lookup_is_in_use() -> None:
    # Without it every file goes through puremagic's scan (correct, but ten times slower).
    assert mediatype._SIGNATURES is not None


def _planted(row: tables.PureMagic, filler: bytes) -> tuple[bytes, bytes]:
    """A head holding *row*'s bytes at its offset (with *filler* around them), and a foot."""
    head = bytearray((filler * (tables.max_head // max(1, len(filler)) + 1))[: max(64, row.offset + 64)])
    head[row.offset : row.offset + len(row.byte_match)] = row.byte_match
    return bytes(head), bytes(head[-tables.max_foot :])


@pytest.mark.parametrize("filler", [b"\x00", b"A", b"\xff\xfe"])
def test_every_header_signature_is_found_as_puremagic_finds_it(filler: bytes) -> None:
    rows = list(tables.magic_header_array)
    assert len(rows) > 1000  # the whole table, not a sample
    for row in rows:
        head, foot = _planted(row, filler)
        assert _ours(head, foot) == _puremagic(head, foot), row


def test_every_multi_part_signature_is_found_as_puremagic_finds_it() -> None:
    checked = 0
    for first, options in tables.multi_part_dict.items():
        firsts = [r for r in tables.magic_header_array if r.byte_match == first] or [
            r for r in tables.magic_footer_array if r.byte_match == first
        ]
        for lead in firsts[:1]:
            for option in options:
                if lead.offset < 0 or option.offset < 0:
                    foot = bytearray(b"\x00" * tables.max_foot)
                    if option.offset < 0:
                        end = len(foot) + option.offset + len(option.byte_match)
                        foot[len(foot) + option.offset : end] = option.byte_match
                    head = bytearray(b"\x00" * 128)
                    if lead.offset >= 0:
                        head[lead.offset : lead.offset + len(lead.byte_match)] = lead.byte_match
                    head_b, foot_b = bytes(head), bytes(foot)
                else:
                    size = max(lead.offset + len(lead.byte_match), option.offset + len(option.byte_match)) + 16
                    head = bytearray(b"\x00" * size)
                    head[lead.offset : lead.offset + len(lead.byte_match)] = lead.byte_match
                    head[option.offset : option.offset + len(option.byte_match)] = option.byte_match
                    head_b, foot_b = bytes(head), bytes(head[-tables.max_foot :])
                assert _ours(head_b, foot_b) == _puremagic(head_b, foot_b), (lead, option)
                checked += 1
    assert checked > 100


signature_rows = st.sampled_from(list(tables.magic_header_array))


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(signature_rows, max_size=4),
    noise=st.binary(max_size=2048),
    ext=st.sampled_from(["", ".jpg", ".mp4", ".zip", ".txt"]),
)
def test_any_head_gives_puremagics_ranking(rows: list[tables.PureMagic], noise: bytes, ext: str) -> None:
    head = bytearray(noise)
    for row in rows:  # several signatures planted at once, later ones over earlier ones
        end = row.offset + len(row.byte_match)
        if len(head) < end:
            head += b"\x00" * (end - len(head))
        head[row.offset : end] = row.byte_match
    head_b = bytes(head[: tables.max_head])
    foot = bytes(head[-tables.max_foot :])
    assert _ours(head_b, foot, ext) == _puremagic(head_b, foot, ext)


def _real_files(tmp_path: Path) -> list[Path]:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PNG")
    (tmp_path / "image.png").write_bytes(out.getvalue())
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="GIF")
    (tmp_path / "image").write_bytes(out.getvalue())
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "text").write_text("statement of a witness\n", encoding="utf-8")
    examples = Path(__file__).parent.parent / "examples"
    found = [p for p in sorted(DATA.iterdir()) if p.is_file()]
    found += [p for p in sorted(examples.rglob("*")) if p.is_file()]
    return found + sorted(tmp_path.iterdir())


def test_real_files_get_puremagics_answer(tmp_path: Path) -> None:
    files = _real_files(tmp_path)
    assert any(p.suffix == ".mp4" for p in files)
    for path in files:
        try:
            expected = next((m.mime_type for m in puremagic.magic_file(str(path)) if m.mime_type), "")
        except (puremagic.PureError, ValueError) as exc:
            with pytest.raises(type(exc)):
                SIGNATURES.media_type(path)
        else:
            assert SIGNATURES.media_type(path) == expected, path
            assert mediatype._best_with_type(path) == expected


def test_sniffing_real_media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sniff_media_type(DATA / "clip-video.mp4") == "video/mp4"
    # puremagic's best match for an .m4a file has no media type (from_file answers ""): the
    # best that has one is MPEG-4, and the brand says audio only.
    assert puremagic.from_file(str(DATA / "clip-audio.m4a"), mime=True) == ""
    assert sniff_media_type(DATA / "clip-audio.m4a") == "audio/mp4"
    monkeypatch.setattr(mediatype, "_SIGNATURES", None)  # as with a puremagic without its tables
    assert sniff_media_type(DATA / "clip-audio.m4a") == "audio/mp4"
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    (tmp_path / "x").write_bytes(png.getvalue())
    assert sniff_media_type(tmp_path / "x") == "image/png"


# The module alone (it imports nothing of the package), not the whole package six times.
MOBI_TIE = """
import importlib.util, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("mediatype", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(module.sniff_media_type(Path(sys.argv[2])))
"""


def test_equally_ranked_matches_give_the_same_media_type_whatever_the_hash_seed(tmp_path: Path) -> None:
    # A MOBI file: "BOOKMOBI" at offset 60 and the end-of-file mark puremagic pairs with it, for
    # which its table has two equally ranked answers (Mobipocket, and Amazon's mobi8).  puremagic
    # orders the pair through a set; the first in its table is taken here, in every process.
    head = bytearray(b"\x00" * 200)
    head[60:68] = b"BOOKMOBI"
    path = tmp_path / "book"
    path.write_bytes(bytes(head) + b"\xe9\x8e\r\n")
    ranking = SIGNATURES.identify(bytes(head[: tables.max_head]), path.read_bytes()[-tables.max_foot :])
    best = [m for m in ranking if (m.confidence, len(m.byte_match)) == (ranking[0].confidence, 12)]
    assert {m.mime_type for m in best} == {"application/x-mobipocket-ebook", "application/vnd.amazon.mobi8-ebook"}
    answers = set()
    for seed in ("0", "1", "2", "3", "4", "5"):
        done = subprocess.run(
            [sys.executable, "-c", MOBI_TIE, str(mediatype.__file__), str(path)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        answers.add(done.stdout.strip())
    assert answers == {"application/x-mobipocket-ebook"}
