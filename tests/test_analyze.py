"""``analyze`` on real catalogs: what an analysis writes and logs, that it is idempotent, that
``verify`` (and ``--deep``) check it, that a forged or edited analysis is found, that exports,
redactions and imports carry it, and that a hostile file is still catalogued exactly."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from evidence_catalog import Catalog
from evidence_catalog.analysis import MediaAnalysis, PerceptualHash
from evidence_catalog.custody import Action
from evidence_catalog.findings import AnalysisMismatch, CredentialsFailed, HashIndexMismatch
from evidence_catalog.model import AcquisitionMethod, ArtifactRole
from tests.conftest import CliResult, run_sql
from tests.test_credentials import make_jpeg as plain_jpeg
from tests.test_credentials import make_pki, sign
from tests.test_media import make_video


def picture(path: Path, seed: int = 1, size: tuple[int, int] = (320, 240)) -> Path:
    """A JPEG with structure (PDQ gives a featureless picture a low quality)."""
    image = Image.new("RGB", size, (20, 20, 20))
    for x in range(size[0]):
        for y in range(0, size[1], 7):
            image.putpixel((x, y), ((x * seed) % 256, (y * 3 * seed) % 256, (x + y) % 256))
    for y in range(size[1]):
        image.putpixel(((y * seed * 5) % size[0], y), (255, 255, 0))
    image.save(path, "JPEG", quality=92)
    return path


def analysis_entries(catalog: Catalog, record_id: str) -> list[tuple[str, MediaAnalysis | None]]:
    return catalog.analyses(record_id)


def test_add_analyses_an_image_and_logs_it(catalog: Catalog, tmp_path: Path) -> None:
    (added,) = catalog.add([picture(tmp_path / "a.jpg")])
    record = catalog.record(added.record_id)
    (document, analysis) = analysis_entries(catalog, added.record_id)[0]
    assert analysis is not None and analysis.source_sha256 == added.sha256
    assert len(analysis.hashes) == 1 and analysis.hashes[0].offset_s is None and analysis.hashes[0].usable
    entry = record.artifact(document)
    assert entry is not None and entry.role is ArtifactRole.DERIVED and entry.derived_from == (added.sha256,)
    derived = [a for a in record.acquisitions if a.method is AcquisitionMethod.DERIVED]
    assert len(derived) == 1 and derived[0].artifact_sha256 == document
    assert {t.name for t in derived[0].tools} >= {"pdqhash", "c2pa-python"}
    assert any(s.startswith("pdq.") for s in derived[0].settings)
    events = [e for e in catalog.history(added.record_id) if e.action == Action.MEDIA_ANALYZED]
    assert len(events) == 1
    # The document is what the stored bytes say, and its schema validates it.
    with catalog.open_artifact(document) as stream:
        body = json.loads(stream.read())
    assert body["schema"] == "urn:evidence-catalog:schema:media-analysis:1.0.0"
    report = catalog.verify()
    assert report.ok, report.findings
    assert report.analyses_rechecked == 1


def test_analyze_again_writes_nothing(catalog: Catalog, tmp_path: Path) -> None:
    (added,) = catalog.add([picture(tmp_path / "a.jpg")])
    before = len(catalog.history())
    (again,) = catalog.analyze([added.record_id])
    assert not again.new and again.hashes == 1
    (forced,) = catalog.analyze([added.record_id], force=True)
    assert not forced.new  # the same document: nothing new
    assert len(catalog.history()) == before
    assert len(analysis_entries(catalog, added.record_id)) == 1


def test_no_analyze_leaves_it_for_analyze(catalog: Catalog, tmp_path: Path) -> None:
    (added,) = catalog.add([picture(tmp_path / "a.jpg")], analyze=False)
    assert analysis_entries(catalog, added.record_id) == []
    (result,) = catalog.analyze(all_records=True)
    assert result.new and result.record_id == added.record_id
    assert len(analysis_entries(catalog, added.record_id)) == 1
    assert catalog.verify(deep=True).ok


def test_a_video_gets_frame_hashes_keyframes_and_a_sheet(catalog: Catalog, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", size=(160, 120), frames=75)
    (added,) = catalog.add([video])
    ((_, analysis),) = analysis_entries(catalog, added.record_id)
    assert analysis is not None
    offsets = [h.offset_s for h in analysis.hashes]
    assert offsets and all(o is not None for o in offsets) and offsets == sorted(offsets)  # type: ignore[type-var]
    assert analysis.keyframes and analysis.contact_sheet_sha256 is not None
    record = catalog.record(added.record_id)
    for sha in analysis.derived_sha256s():
        entry = record.artifact(sha)
        assert entry is not None and entry.derived_from == (added.sha256,)
        assert entry.artifact.media_type.startswith("image/")
    report = catalog.verify(deep=True)
    assert report.ok, report.findings
    assert report.analyses_rechecked == 1


def test_an_analysis_forged_with_the_librarys_own_functions_is_found_by_a_deep_verify(
    catalog: Catalog, tmp_path: Path
) -> None:
    """Someone with write access records an analysis whose hashes are not the file's (to hide a
    match, or make one up): every hash, link and signature checks, but made again it differs."""
    from evidence_catalog.operations import analyzing

    (added,) = catalog.add([picture(tmp_path / "a.jpg")], analyze=False)
    ctx = catalog._ctx
    real_derive = analyzing.derive

    def forged(*args: object, **kwargs: object) -> tuple[MediaAnalysis, list[tuple[str, Path]]]:
        analysis, files = real_derive(*args, **kwargs)  # type: ignore[arg-type]
        fake = PerceptualHash("ab" * 32, 90)
        import attrs

        return attrs.evolve(analysis, hashes=(fake,)), files

    analyzing.derive = forged  # type: ignore[assignment]
    try:
        analyzing.analyze_artifact(ctx, added.record_id, added.sha256)
    finally:
        analyzing.derive = real_derive
    report = catalog.verify(deep=True)
    assert [type(f) for f in report.findings] == [AnalysisMismatch]
    assert "hashes" in str(report.findings[0])


def test_an_edited_similarity_index_is_found(catalog: Catalog, tmp_path: Path) -> None:
    catalog.add([picture(tmp_path / "a.jpg")])
    run_sql(catalog, "UPDATE perceptual_hash SET quality = 12")
    report = catalog.verify()
    assert [type(f) for f in report.findings] == [HashIndexMismatch]
    run_sql(catalog, "DELETE FROM perceptual_hash")
    assert [type(f) for f in catalog.verify().findings] == [HashIndexMismatch]


def test_invalid_credentials_are_a_notice_not_a_problem(catalog: Catalog, tmp_path: Path) -> None:
    signed, _ = sign(make_pki(), plain_jpeg(), "image/jpeg")
    tampered = bytearray(signed)
    tampered[-200] ^= 0xFF  # inside the picture's data, covered by the hash binding
    path = tmp_path / "tampered.jpg"
    path.write_bytes(bytes(tampered))
    (added,) = catalog.add([path])
    ((_, analysis),) = analysis_entries(catalog, added.record_id)
    assert analysis is not None and analysis.credentials is not None
    assert analysis.credentials.state.value == "invalid"
    assert analysis.credentials.manifest_store_sha256 in {
        e.artifact.sha256 for e in catalog.record(added.record_id).artifacts
    }
    report = catalog.verify()
    assert report.ok
    assert [type(n) for n in report.notices] == [CredentialsFailed]


def test_a_trust_list_makes_a_signer_trusted(catalog: Catalog, tmp_path: Path) -> None:
    pki = make_pki()
    signed, _ = sign(pki, plain_jpeg(), "image/jpeg")
    path = tmp_path / "signed.jpg"
    path.write_bytes(signed)
    (added,) = catalog.add([path])
    ((_, first),) = analysis_entries(catalog, added.record_id)
    assert first is not None and first.credentials is not None and first.credentials.state.value == "valid"
    (catalog.path / "c2pa-trust-anchors.pem").write_bytes(pki.ca_pem)
    (again,) = catalog.analyze([added.record_id])
    assert again.new and again.credentials == "trusted"  # a new trust list is a new analysis
    assert catalog.verify(deep=True).ok


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty.jpg", b""),
        ("cut.jpg", None),
        ("not-really.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\xff" * 400),
    ],
)
def test_a_hostile_file_is_kept_exactly_and_its_analysis_says_what_failed(
    catalog: Catalog, tmp_path: Path, name: str, data: bytes | None
) -> None:
    if data is None:
        data = picture(tmp_path / "whole.jpg").read_bytes()[:700]
    path = tmp_path / name
    path.write_bytes(data)
    (added,) = catalog.add([path])
    with catalog.open_artifact(added.sha256) as stream:
        assert stream.read() == data
    for _, analysis in analysis_entries(catalog, added.record_id):
        assert analysis is not None
    assert catalog.verify(deep=True).ok


def test_a_failed_write_leaves_the_record_as_it_was(catalog: Catalog, tmp_path: Path) -> None:
    (added,) = catalog.add([picture(tmp_path / "a.jpg")], analyze=False)
    before = catalog.record(added.record_id)
    db = catalog._ctx.db
    real = db.append_event

    def refuse(*args: object, **kwargs: object) -> object:
        raise OSError("No space left on device")

    db.append_event = refuse  # type: ignore[method-assign]
    try:
        with pytest.raises(OSError):
            catalog.analyze([added.record_id])
    finally:
        db.append_event = real  # type: ignore[method-assign]
    assert catalog.record(added.record_id) == before
    assert catalog.verify().ok
    (done,) = catalog.analyze([added.record_id])
    assert done.new


def test_a_redacted_export_withholds_what_was_made_from_a_withheld_video(catalog: Catalog, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", size=(160, 120), frames=50)
    (added,) = catalog.add([video])
    catalog.flag(added.record_id, "graphic", "shows the dead", artifacts=[added.sha256])
    derived = catalog.record(added.record_id).artifacts[1:]
    assert derived
    result = catalog.export(tmp_path / "bag", format="bagit", redact=True)
    contents = json.loads((result.path / "data" / "contents.json").read_text())
    withheld = {item["sha256"] for item in contents["redaction"]["withheld_artifacts"]}
    assert withheld == {added.sha256, *(e.artifact.sha256 for e in derived)}


def test_an_analysed_record_exports_and_imports(catalog: Catalog, tmp_path: Path, operator: object) -> None:
    (added,) = catalog.add([picture(tmp_path / "a.jpg")])
    bag = catalog.export(tmp_path / "bag", format="bagit").path
    with Catalog.init(tmp_path / "other", operator=operator) as other:  # type: ignore[arg-type]
        other.import_records(bag)
        assert len(other.analyses(added.record_id)) == 1
        assert other.verify(deep=True).ok


def test_the_cli_analyses_and_verifies_deep(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    (added,) = catalog.add([picture(tmp_path / "a.jpg")], analyze=False)
    folder = str(catalog.path)
    result = run_cli("analyze", "--all", "--catalog", folder)
    assert result.code == 0, result.err
    assert f"{added.record_id}\t{added.sha256}\tanalysed" in result.out
    shown = run_cli("show", added.record_id, "--catalog", folder)
    assert "pdq        1 hash(es), 1 usable" in shown.out
    assert "c2pa       none (no manifest" in shown.out
    deep = run_cli("verify", "--deep", "--catalog", folder)
    assert deep.code == 0, deep.out + deep.err
    assert deep.out.rstrip().endswith("; 1 media analysis(es), 1 made again")
    nothing = run_cli("analyze", "--catalog", folder)
    assert nothing.code == 2  # neither ids nor --all
    assert "name the records to analyse" in nothing.err


def _forge(catalog: Catalog, record_id: str, sha256: str, change: Callable[[MediaAnalysis], MediaAnalysis]) -> None:
    """Record an analysis of *sha256* changed by *change*, through the library's own functions
    (what someone with write access and the log key can do)."""
    from evidence_catalog.operations import analyzing

    real_derive = analyzing.derive

    def forged(*args: object, **kwargs: object) -> tuple[MediaAnalysis, list[tuple[str, Path]]]:
        analysis, files = real_derive(*args, **kwargs)  # type: ignore[arg-type]
        return change(analysis), files

    analyzing.derive = forged  # type: ignore[assignment]
    try:
        analyzing.analyze_artifact(catalog._ctx, record_id, sha256, force=True)
    finally:
        analyzing.derive = real_derive


def _other_versions(analysis: MediaAnalysis) -> MediaAnalysis:
    import attrs

    tools = tuple(attrs.evolve(t, version="0.0.1") if t.name == "pdqhash" else t for t in analysis.tools)
    return attrs.evolve(analysis, tools=tools)


def test_a_forged_credentials_verdict_is_found_by_a_deep_verify(catalog: Catalog, tmp_path: Path) -> None:
    import attrs

    signed, _ = sign(make_pki(), plain_jpeg(), "image/jpeg")
    path = tmp_path / "signed.jpg"
    path.write_bytes(signed)
    (added,) = catalog.add([path], analyze=False)

    def trusted(analysis: MediaAnalysis) -> MediaAnalysis:
        assert analysis.credentials is not None and analysis.credentials.state.value == "valid"
        return attrs.evolve(analysis, credentials=attrs.evolve(analysis.credentials, state="trusted"))

    _forge(catalog, added.record_id, added.sha256, trusted)
    report = catalog.verify(deep=True)
    assert [type(f) for f in report.findings] == [AnalysisMismatch]
    assert str(report.findings[0]).endswith("in its credentials")


def test_other_tool_versions_are_held_to_what_no_version_changes(catalog: Catalog, tmp_path: Path) -> None:
    """Claiming other tool versions does not escape a deep verify: the hashes must still be
    near what this machine's tools make; an honest analysis by other versions is a notice."""
    import attrs

    from evidence_catalog.findings import AnalysisNotRechecked

    (honest,) = catalog.add([picture(tmp_path / "a.jpg", seed=1)], analyze=False)
    _forge(catalog, honest.record_id, honest.sha256, _other_versions)
    report = catalog.verify(deep=True)
    assert report.ok, report.findings
    assert any(isinstance(n, AnalysisNotRechecked) and "other tool versions" in str(n) for n in report.notices)

    (forged,) = catalog.add([picture(tmp_path / "b.jpg", seed=3)], analyze=False)

    def planted(analysis: MediaAnalysis) -> MediaAnalysis:
        return attrs.evolve(_other_versions(analysis), hashes=(PerceptualHash("ab" * 32, 90),))

    _forge(catalog, forged.record_id, forged.sha256, planted)
    report = catalog.verify(deep=True)
    assert [type(f) for f in report.findings] == [AnalysisMismatch]
    assert forged.record_id in str(report.findings[0]) and "made by other tool versions" in str(report.findings[0])


def test_credentials_claimed_of_a_file_without_any_are_found_across_versions(catalog: Catalog, tmp_path: Path) -> None:
    import attrs

    from evidence_catalog.analysis import ContentCredentials

    (added,) = catalog.add([picture(tmp_path / "a.jpg")], analyze=False)

    def claimed(analysis: MediaAnalysis) -> MediaAnalysis:
        return attrs.evolve(_other_versions(analysis), credentials=ContentCredentials("trusted", signer="Ministry"))

    _forge(catalog, added.record_id, added.sha256, claimed)
    report = catalog.verify(deep=True)
    assert [type(f) for f in report.findings] == [AnalysisMismatch]
    assert "credentials presence (made by other tool versions)" in str(report.findings[0])
