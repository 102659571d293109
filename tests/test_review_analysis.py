"""A hostile review of media analysis: a writer with access to the catalog who plants or hides a
"looks like" match, or forges a Content Credentials verdict, must not get a "verified"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from evidence_catalog import Catalog
from evidence_catalog.analysis import ContentCredentials, MediaAnalysis
from evidence_catalog.errors import InputError
from evidence_catalog.findings import AnalysisMismatch, AnalysisNotRechecked, HashIndexMismatch
from evidence_catalog.operations import analyzing
from tests.conftest import run_sql
from tests.test_analyze import picture


def _forge(catalog: Catalog, record_id: str, sha256: str, change: Callable[[MediaAnalysis], MediaAnalysis]) -> None:
    """Record an analysis through the library's own functions, its values changed by *change*."""
    real = analyzing.derive

    def forged(*args: Any, **kwargs: Any) -> tuple[MediaAnalysis, list[tuple[str, Path]]]:
        analysis, files = real(*args, **kwargs)
        return change(analysis), files

    analyzing.derive = forged  # type: ignore[assignment]
    try:
        assert analyzing.analyze_artifact(catalog._ctx, record_id, sha256).new
    finally:
        analyzing.derive = real


def _other_versions(analysis: MediaAnalysis) -> MediaAnalysis:
    return attrs.evolve(analysis, tools=tuple(attrs.evolve(t, version="0.0.1") for t in analysis.tools))


@pytest.mark.parametrize("column", ["artifact_sha256", "algorithm"])
def test_a_hash_row_moved_to_another_artifact_or_algorithm_is_found(
    catalog: Catalog, tmp_path: Path, column: str
) -> None:
    """Moving a row to another artifact moves a match to another record; another algorithm
    hides it from every search: both are edits of the index, not what the document holds."""
    (a,) = catalog.add([picture(tmp_path / "a.jpg", 1)])
    (b,) = catalog.add([picture(tmp_path / "b.jpg", 3)])
    (c,) = catalog.add([picture(tmp_path / "c.jpg", 1, (321, 240))])
    assert [m.record_id for m in catalog.similar(a.record_id)] == [c.record_id]
    value = b.sha256 if column == "artifact_sha256" else "xx"
    run_sql(catalog, f"UPDATE perceptual_hash SET {column} = :v WHERE record_id = :c", {"v": value, "c": c.record_id})
    report = catalog.verify()
    assert [type(f) for f in report.findings] == [HashIndexMismatch]
    assert report.findings[0].record_id == c.record_id  # type: ignore[attr-defined]


def test_a_trusted_verdict_forged_with_the_same_tools_is_found(catalog: Catalog, tmp_path: Path) -> None:
    """A file with no Content Credentials said to carry credentials trusted, signed by a news
    agency: made again, there are none (this read as a notice, "read differently now")."""
    (added,) = catalog.add([picture(tmp_path / "a.jpg")], analyze=False)
    fake = ContentCredentials(state="trusted", signer="CN=Reuters")
    _forge(catalog, added.record_id, added.sha256, lambda a: attrs.evolve(a, credentials=fake))
    report = catalog.verify(deep=True)
    assert [type(f) for f in report.findings] == [AnalysisMismatch]
    assert report.findings[0].what == "credentials"  # type: ignore[attr-defined]


def test_a_trusted_verdict_forged_under_another_trust_list_is_found(catalog: Catalog, tmp_path: Path) -> None:
    """Naming a trust list the catalog does not have left the credentials out of the comparison
    (a notice): the trust verdict cannot be checked, but the rest of them can."""
    (added,) = catalog.add([picture(tmp_path / "a.jpg")], analyze=False)
    fake = ContentCredentials(state="trusted", signer="CN=Reuters")

    def change(analysis: MediaAnalysis) -> MediaAnalysis:
        parameters = {**analysis.parameters, "c2pa.trust_anchors_sha256": "ab" * 32}
        return attrs.evolve(analysis, parameters=parameters, credentials=fake)

    _forge(catalog, added.record_id, added.sha256, change)
    report = catalog.verify(deep=True)
    assert [type(f) for f in report.findings] == [AnalysisMismatch]


def test_a_match_planted_under_other_tool_versions_is_found(catalog: Catalog, tmp_path: Path) -> None:
    """Any writer can name other tool versions: the analysis was then only a notice, whatever
    it said.  A hash far from the one made here of the same picture is no version's doing."""
    (a,) = catalog.add([picture(tmp_path / "a.jpg", 1)])
    (b,) = catalog.add([picture(tmp_path / "b.jpg", 3)], analyze=False)
    ((_, first),) = catalog.analyses(a.record_id)
    assert first is not None
    _forge(catalog, b.record_id, b.sha256, lambda x: attrs.evolve(_other_versions(x), hashes=first.hashes))
    assert [m.record_id for m in catalog.similar(a.record_id)] == [b.record_id]  # the planted match
    report = catalog.verify(deep=True)
    assert [type(f) for f in report.findings] == [AnalysisMismatch]
    assert "other tool versions" in str(report.findings[0])


def test_an_honest_analysis_of_other_tool_versions_is_a_notice(catalog: Catalog, tmp_path: Path) -> None:
    (added,) = catalog.add([picture(tmp_path / "a.jpg")], analyze=False)
    _forge(catalog, added.record_id, added.sha256, _other_versions)
    report = catalog.verify(deep=True)
    assert report.ok, report.findings
    assert [type(n) for n in report.notices] == [AnalysisNotRechecked]


@pytest.mark.parametrize("kind", ["not PEM", "a pipe", "a huge file"])
def test_a_hostile_trust_list_neither_hangs_nor_stops_verify(catalog: Catalog, tmp_path: Path, kind: str) -> None:
    """The trust list is a file of the catalog's folder anyone with the folder can replace: a
    pipe blocked every analysis and verification (and a link to /dev/zero read until memory
    ran out: refused the same way, as no regular file), and a file that is not PEM made verify
    raise instead of checking the catalog."""
    import os
    import threading

    catalog.add([picture(tmp_path / "a.jpg")])
    pem = catalog.path / analyzing.TRUST_ANCHORS_FILE
    if kind == "not PEM":
        pem.write_bytes(b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n")
    elif kind == "a pipe":
        os.mkfifo(pem)
    else:
        with pem.open("wb") as stream:
            stream.truncate(analyzing.MAX_TRUST_ANCHORS_BYTES + 1)
    reports: list[Any] = []
    worker = threading.Thread(target=lambda: reports.append(catalog.verify(deep=True)), daemon=True)
    worker.start()
    worker.join(120)
    assert reports, "verify did not finish (or raised)"
    assert reports[0].ok and reports[0].analyses_rechecked == 1
    with pytest.raises(InputError, match=r"c2pa-trust-anchors\.pem"):
        analyzing.trust_anchors(catalog._ctx)


def test_a_credentials_report_nested_too_deep_is_unreadable_not_a_crash() -> None:
    """c2pa's report, passed on verbatim by the reader's child process, is parsed in the
    catalog's own process: JSON nested deeper than Python parses raised RecursionError there."""
    from evidence_catalog.extract import credentials

    deep = "[" * 100_000 + "]" * 100_000
    found = credentials._credentials({"outcome": "read", "report": deep}, [], has_store=True, media_type="image/jpeg")
    assert found.state.value == "unreadable"


def test_tampered_credentials_said_intact_under_other_tool_versions_are_found(catalog: Catalog, tmp_path: Path) -> None:
    """A signed picture changed after signing reads ``invalid`` (``assertion.dataHash.mismatch``):
    said ``trusted`` by an analysis naming other tool versions, it was only a notice."""
    from tests.test_credentials import make_jpeg, make_pki, sign

    signed, _ = sign(make_pki(), make_jpeg(), "image/jpeg")
    tampered = bytearray(signed)
    tampered[-200] ^= 0xFF
    path = tmp_path / "tampered.jpg"
    path.write_bytes(bytes(tampered))
    (added,) = catalog.add([path], analyze=False)

    def change(analysis: MediaAnalysis) -> MediaAnalysis:
        assert analysis.credentials is not None and analysis.credentials.state.value == "invalid"
        intact = attrs.evolve(analysis.credentials, state="trusted", failure_codes=(), errors=())
        return attrs.evolve(_other_versions(analysis), credentials=intact)

    _forge(catalog, added.record_id, added.sha256, change)
    report = catalog.verify(deep=True)
    assert [type(f) for f in report.findings] == [AnalysisMismatch]


def test_a_forged_analysis_imported_from_a_bag_is_found_by_a_deep_verify(
    catalog: Catalog, tmp_path: Path, operator: Any
) -> None:
    """A bag made by the forger's own catalog (sealed and signed by its own key) brings an
    analysis that says a plain picture carries trusted credentials and names other tool
    versions: the import takes it (it is consistent), a deep verify must not call it verified."""
    (added,) = catalog.add([picture(tmp_path / "a.jpg")], analyze=False)
    fake = ContentCredentials(state="trusted", signer="CN=Reuters")
    _forge(catalog, added.record_id, added.sha256, lambda a: attrs.evolve(_other_versions(a), credentials=fake))
    bag = catalog.export(tmp_path / "bag", format="bagit").path
    with Catalog.init(tmp_path / "other", operator=operator) as other:
        other.import_records(bag)
        report = other.verify(deep=True)
        assert [type(f) for f in report.findings] == [AnalysisMismatch]


@pytest.mark.parametrize("what", ["tools", "settings", "other_artifacts"])
def test_an_acquisition_that_says_other_than_its_analysis_is_found(catalog: Catalog, tmp_path: Path, what: str) -> None:
    """``show``, the exports and PROV tell an analysis's tools and parameters from the
    acquisition that logged it, and ``analyze`` never analyses what an analysis's acquisition
    says it made: an acquisition naming a forensic suite, another trust list, or the original
    itself among what it made (which left the picture out of every later analysis) passed
    verify while its document said otherwise."""
    from evidence_catalog.model import Agent
    from evidence_catalog.operations import common

    (added,) = catalog.add([picture(tmp_path / "a.jpg")], analyze=False)
    changed = {
        "tools": (Agent(name="Forensic Suite", version="9"),),
        "settings": ("c2pa.trust_anchors_sha256=" + "cd" * 32,),
        "other_artifacts": (added.sha256,),
    }
    real = common.new_acquisition

    def forged(*args: Any, **kwargs: Any) -> Any:
        return real(*args, **{**kwargs, what: changed[what]})

    common.new_acquisition = forged  # type: ignore[assignment]
    try:
        assert analyzing.analyze_artifact(catalog._ctx, added.record_id, added.sha256).new
    finally:
        common.new_acquisition = real
    report = catalog.verify()
    assert "acquisition that logged it" in str(report.findings[0]), report.findings


def test_an_import_refuses_an_analysis_its_acquisition_contradicts(
    catalog: Catalog, tmp_path: Path, operator: Any
) -> None:
    """What verify would report at once is not imported (as for a document of another source)."""
    from evidence_catalog.model import Agent
    from evidence_catalog.operations import common

    (added,) = catalog.add([picture(tmp_path / "a.jpg")], analyze=False)
    real = common.new_acquisition

    def forged(*args: Any, **kwargs: Any) -> Any:
        return real(*args, **{**kwargs, "tools": (Agent(name="Forensic Suite", version="9"),)})

    common.new_acquisition = forged  # type: ignore[assignment]
    try:
        analyzing.analyze_artifact(catalog._ctx, added.record_id, added.sha256)
    finally:
        common.new_acquisition = real
    bag = catalog.export(tmp_path / "bag", format="bagit").path
    with Catalog.init(tmp_path / "other", operator=operator) as other:
        with pytest.raises(InputError, match="acquisition that logged it"):
            other.import_records(bag)
        assert other.verify().ok


def test_a_frame_dropped_under_other_tool_versions_is_found(catalog: Catalog, tmp_path: Path) -> None:
    """A video's analysis naming other tool versions, one frame's hash left out (the one that
    would match): the same sampling here hashes that frame."""
    from tests.test_perceptual import make_video
    from tests.test_perceptual import picture as scene

    video = make_video(tmp_path / "clip.mp4", [scene(20), scene(21)], seconds_each=1.0)
    (added,) = catalog.add([video], analyze=False)

    def change(analysis: MediaAnalysis) -> MediaAnalysis:
        usable = [h for h in analysis.hashes if h.usable]
        assert len(usable) >= 2, analysis.hashes
        return attrs.evolve(_other_versions(analysis), hashes=tuple(h for h in analysis.hashes if h != usable[-1]))

    _forge(catalog, added.record_id, added.sha256, change)
    report = catalog.verify(deep=True)
    assert [type(f) for f in report.findings] == [AnalysisMismatch]


def test_credentials_expired_since_the_analysis_are_a_notice_not_a_mismatch(catalog: Catalog, tmp_path: Path) -> None:
    """What time changes (a certificate judged at the time of reading) stays a notice: the
    stricter comparison of credentials must not call an honest analysis forged."""
    import datetime as dt
    import time

    from evidence_catalog.findings import AnalysisNotRechecked as NotRechecked
    from tests.test_credentials import make_jpeg, make_pki, sign

    expiring = make_pki(not_after=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3))
    signed, _ = sign(expiring, make_jpeg(), "image/jpeg")
    path = tmp_path / "signed.jpg"
    path.write_bytes(signed)
    (added,) = catalog.add([path])
    ((_, analysis),) = catalog.analyses(added.record_id)
    assert analysis is not None and analysis.credentials is not None
    assert analysis.credentials.state.value == "valid"
    time.sleep(4)
    report = catalog.verify(deep=True)
    assert report.ok, report.findings
    assert [type(n) for n in report.notices] == [NotRechecked]
    assert "read differently now" in str(report.notices[0])
