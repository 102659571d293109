"""docs/verify_bag.py checks real export bags with the standard library and openssl only: run
with ``python -I -S`` (no site-packages), on bags this library made, with a real RFC 3161 TSA."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog, merkle
from tests.tsa_server import LocalTSA

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "verify_bag.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_bag", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


verify_bag = load_script()


def run(bag: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT), str(bag), *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTSA]:
    with LocalTSA() as server:
        yield server


@pytest.fixture
def catalog(tmp_path: Path, tsa: LocalTSA) -> Iterator[Catalog]:
    with Catalog.init(tmp_path / "catalog", operator="Field Analyst <field@example.org>") as made:
        for name, text in (("a.txt", "first"), ("b.txt", "second, with é and 😀"), ("c.txt", "third")):
            (tmp_path / name).write_text(text, encoding="utf-8")
        results = made.add([tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"])
        made.tag(results[0].record_id, ["school"])
        made.add_note(results[1].record_id, "Seen on 3 channels; 1.5e-7 of doubt")
        made.timestamp(url=tsa.url)
        yield made


def reseal(bag: Path) -> None:
    """Rewrite the manifests and the Payload-Oxum after an edit, so that only the edit remains."""
    files = sorted(p for p in (bag / "data").rglob("*") if p.is_file())
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(bag).as_posix()}\n" for p in files]
    (bag / "manifest-sha256.txt").write_text("".join(lines), encoding="utf-8")
    info = (bag / "bag-info.txt").read_text(encoding="utf-8").splitlines()
    octets = sum(p.stat().st_size for p in files)
    info = [f"Payload-Oxum: {octets}.{len(files)}" if line.startswith("Payload-Oxum:") else line for line in info]
    (bag / "bag-info.txt").write_text("\n".join(info) + "\n", encoding="utf-8")
    tags = ["bagit.txt", "bag-info.txt", "manifest-sha256.txt"]
    (bag / "tagmanifest-sha256.txt").write_text(
        "".join(f"{hashlib.sha256((bag / t).read_bytes()).hexdigest()}  {t}\n" for t in tags), encoding="utf-8"
    )


def test_a_whole_catalog_bag_verifies_with_the_standard_library_and_openssl(
    catalog: Catalog, tmp_path: Path, tsa: LocalTSA
) -> None:
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    result = run(bag, "--tsa-ca", str(tsa.ca_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PROBLEM" not in result.stdout
    assert "events give the checkpoint's root" in result.stdout
    assert "Signature Verified Successfully" in result.stdout
    assert "openssl ts -verify" in result.stdout and "Verification: OK" in result.stdout


def test_a_selection_verifies_by_its_inclusion_proofs(catalog: Catalog, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit", record_ids=catalog.record_ids()[1:2])
    result = run(bag)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "inclusion proofs of" in result.stdout
    assert "SKIPPED" in result.stdout  # the time-stamp, without --tsa-ca


def test_an_edited_event_is_found_even_with_the_manifests_resealed(catalog: Catalog, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    custody = bag / "data" / "custody.jsonl"
    lines = custody.read_text(encoding="utf-8").splitlines()
    event = json.loads(lines[2])
    event["details"]["tags"] = ["someone-else"]
    lines[2] = json.dumps(event, ensure_ascii=False)
    custody.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reseal(bag)
    result = run(bag)
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    assert any(f"custody event {event['seq']}: content hashes to" in line for line in problems)
    assert any("give the checkpoint's root" in line for line in problems)


def test_a_removed_event_is_found(catalog: Catalog, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    custody = bag / "data" / "custody.jsonl"
    lines = custody.read_text(encoding="utf-8").splitlines()
    custody.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    reseal(bag)
    result = run(bag)
    assert result.returncode == 1
    assert "PROBLEM  the " in result.stdout and "give the checkpoint's root" in result.stdout


def test_a_forged_checkpoint_signature_is_found(catalog: Catalog, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    note_path = bag / "data" / "log" / "checkpoint.note"
    text, signature = note_path.read_text(encoding="utf-8").rsplit(" ", 1)
    forged = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    note_path.write_text(text + " " + forged, encoding="utf-8")
    reseal(bag)
    result = run(bag)
    assert result.returncode == 1
    assert any(line.startswith("PROBLEM") and "Ed25519 signature" in line for line in result.stdout.splitlines())


def test_a_token_checked_with_another_tsa_is_refused(catalog: Catalog, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    with LocalTSA() as other:
        result = run(bag, "--tsa-ca", str(other.ca_file))
    assert result.returncode == 1
    assert any(line.startswith("PROBLEM") and "ts -verify" in line for line in result.stdout.splitlines())


def test_a_changed_payload_file_is_found(catalog: Catalog, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    victim = next((bag / "data" / "records").rglob("a.txt"))
    victim.write_text("changed", encoding="utf-8")
    result = run(bag)
    assert result.returncode == 1
    assert "PROBLEM  every payload file has its SHA-256" in result.stdout


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_script_canonicalises_as_rfc_8785_does(value: object) -> None:
    assert verify_bag.canonical(value).encode("utf-8") == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70))
def test_the_scripts_merkle_root_is_rfc_6962s(leaves: list[bytes]) -> None:
    assert verify_bag.mth(leaves) == merkle.root(merkle.perfect_from_leaves(leaves), len(leaves))
    for index in range(len(leaves)):
        proof = merkle.inclusion_proof(merkle.perfect_from_leaves(leaves), index, len(leaves))
        assert verify_bag.root_from_proof(index, len(leaves), leaves[index], proof) == verify_bag.mth(leaves)


def test_tsa_ca_on_a_bag_without_tokens_is_not_a_verified_time_stamp(tmp_path: Path, tsa: LocalTSA) -> None:
    with Catalog.init(tmp_path / "plain", operator="Field Analyst <field@example.org>") as plain:
        (tmp_path / "a.txt").write_text("first", encoding="utf-8")
        plain.add([tmp_path / "a.txt"])
        bag = tmp_path / "bag"
        plain.export(bag, format="bagit")
    result = run(bag, "--tsa-ca", str(tsa.ca_file))
    assert result.returncode == 1, result.stdout
    assert "no time-stamp was checked" in result.stdout
    assert "verified" not in result.stdout.splitlines()[-1]
    without = run(bag)  # not asked for: a pass that says what it did not check
    assert without.returncode == 0, without.stdout
    assert without.stdout.splitlines()[-1].startswith("verified") and "no time-stamp" in without.stdout.splitlines()[-1]


def test_a_tsa_ca_file_that_does_not_exist_is_a_usage_error(catalog: Catalog, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    result = run(bag, "--tsa-ca", str(tmp_path / "missing.pem"))
    assert result.returncode == 2
    assert "verified" not in result.stdout
    assert "missing.pem" in result.stderr


def test_unchecked_tokens_are_named_in_the_last_line(catalog: Catalog, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    result = run(bag)
    assert result.returncode == 0, result.stdout
    assert "not checked: time-stamp token" in result.stdout.splitlines()[-1]


def peak_rss_of_script(bag: Path) -> int:
    """Peak resident memory (KiB, the child's own VmHWM) of the script checking *bag*."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = [sys.argv[1], sys.argv[2]]\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    status = exc.code\n"
        "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0].split()[1]\n"
        "print('PEAK', peak, status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, str(SCRIPT), str(bag)], capture_output=True, text=True, timeout=120
    )
    last = result.stdout.splitlines()[-1].split()
    assert last[0] == "PEAK" and last[2] == "0", result.stdout + result.stderr
    return int(last[1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak from /proc")
def test_the_script_reads_files_in_blocks_so_memory_does_not_grow_with_a_file(tmp_path: Path) -> None:
    sizes = {"small": 1024, "large": 96 * 1024 * 1024}
    peaks = {}
    for label, size in sizes.items():
        with Catalog.init(tmp_path / f"{label}-catalog", operator="Field Analyst <field@example.org>") as made:
            source = tmp_path / f"{label}.bin"
            with open(source, "wb") as out:
                out.truncate(size)  # zeros: the content does not matter, its size does
            made.add([source])
            made.export(tmp_path / f"{label}-bag", format="bagit")
        peaks[label] = peak_rss_of_script(tmp_path / f"{label}-bag")
    # Read whole, the 96 MiB file alone would add 96 MiB to the peak; in blocks, nothing of note.
    assert peaks["large"] - peaks["small"] < 16 * 1024, peaks


@pytest.mark.parametrize("forgery", ["other bytes", "another record's file"])
def test_an_artifact_file_replaced_is_found_even_with_the_manifests_resealed(
    catalog: Catalog, tmp_path: Path, forgery: str
) -> None:
    """The manifests are only as good as whoever wrote them last: an artifact file's SHA-256 must
    be one the custody events about its record hold (they, not the manifests, are signed)."""
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    victim = next((bag / "data" / "records").rglob("a.txt"))
    other = next((bag / "data" / "records").rglob("c.txt"))
    victim.write_bytes(b"forged" if forgery == "other bytes" else other.read_bytes())
    reseal(bag)
    result = run(bag)
    assert result.returncode == 1, result.stdout
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    assert problems == [
        "PROBLEM  each of the 3 artifact files has a SHA-256 the custody events about its record hold"
        f" (not: {victim.relative_to(bag).as_posix()})"
    ]


@pytest.fixture(scope="module")
def analysed_bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Bags of a catalog whose photo and video were analysed (analysis documents, keyframes, a
    contact sheet): whole, the video's record alone, and redacted with the video withheld."""
    from tests.test_media import make_video
    from tests.test_perceptual import picture

    root = tmp_path_factory.mktemp("analysed")
    picture(4).save(root / "street.jpg", "JPEG")
    clip = make_video(root / "clip.mp4", size=(160, 120), frames=50)
    with Catalog.init(root / "catalog", operator="Field Analyst <field@example.org>") as made:
        [photo, video] = made.add([root / "street.jpg", clip])
        assert len(made.record(video.record_id).artifacts) >= 4  # the video, its analysis, keyframe(s), a sheet
        made.export(root / "whole", format="bagit")
        made.export(root / "video", format="bagit", record_ids=[video.record_id])
        made.flag(video.record_id, "graphic", "shows the dead", artifacts=[video.sha256])
        made.export(root / "redacted", format="bagit", redact=True)
        assert photo.record_id
    return {name: root / name for name in ("whole", "video", "redacted")}


@pytest.mark.parametrize("which", ["whole", "video", "redacted"])
def test_a_bag_of_analysed_records_verifies(analysed_bags: dict[str, Path], which: str) -> None:
    """What an analysis derived is vouched for by the ``media.analyzed`` events that hold its
    SHA-256s; a redacted bag leaves the video and all that was made from it out, and says so."""
    result = run(analysed_bags[which])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PROBLEM" not in result.stdout
    assert result.stdout.splitlines()[-1].startswith("verified")


def test_a_keyframe_replaced_is_found_even_with_the_manifests_resealed(
    analysed_bags: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    bag = tmp_path / "bag"
    shutil.copytree(analysed_bags["video"], bag)
    derived = sorted((bag / "data" / "records").rglob("artifacts/*.jpg"))
    assert derived  # the keyframes and the contact sheet
    victim = derived[0]
    victim.chmod(0o644)
    victim.write_bytes(victim.read_bytes() + b"\x00")
    reseal(bag)
    result = run(bag)
    assert result.returncode == 1, result.stdout
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == 1 and victim.relative_to(bag).as_posix() in problems[0], problems
