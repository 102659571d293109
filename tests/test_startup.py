"""Start-up: a command imports what it needs when it needs it.

Every ``evidence-catalog`` call pays for the imports it makes before it does anything; the
heavy ones (SQLAlchemy and SQLModel, yt-dlp, feedparser, the prov package, asn1crypto, exifread,
puremagic, rich ...) cost tenths of a second each.  These tests run the command as a user runs it,
in a new interpreter, and list the modules it loaded: a heavy import put back at the top of a
module fails them.  How long start-up takes is measured in ``benchmarks/startup.py``, not here.

What ``list``, ``show`` and ``verify`` cannot do without, and so may load:

- SQLAlchemy, SQLModel and pydantic: the catalog's database is read through them (``store/``);
- cryptography: opening a catalog for writing checks its log key (a wrong passphrase is refused
  there, before any change), and ``verify`` checks the checkpoints' signatures;
- attrs, cattrs and rfc8785: the records themselves and their canonical JSON;

and each command the module of the CLI that defines it, not the others'.  ``verify`` also loads
the kinds of finding and the result types; ``list`` and ``show`` need neither (see
:data:`NEVER_FOR_LIST_OR_SHOW`).
"""

from __future__ import annotations

import gc
import importlib
import json
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import evidence_catalog
from evidence_catalog import Catalog
from evidence_catalog.cli import cli
from tests.conftest import database_dialect
from tests.spawned import in_new_interpreter

#: Run the command as the console script does (``evidence_catalog.cli:run``), in a new
#: interpreter, and write the names of the modules it loaded to the file named first.
PROBE = """
import json, sys
out = sys.argv.pop(1)
sys.argv[0] = "evidence-catalog"
try:
    from evidence_catalog.cli import run
    run()
finally:
    with open(out, "w", encoding="utf-8") as stream:
        json.dump(sorted(sys.modules), stream)
"""

#: Never needed to print versions or help, to list, show or verify a catalog of files in a folder
#: with its database in SQLite: capture, ingest, export and import, time-stamps, sniffing and
#: EXIF, progress bars, schema upgrades, PostgreSQL and object storage.
NEVER_FOR_READING = frozenset(
    {
        "yt_dlp",  # capture
        "feedparser",  # ingest of RSS/Atom
        "bagit",  # (tests only) bag checks
        "jsonschema",  # (tests only) schema checks
        "prov",  # export --format prov
        "asn1crypto",  # RFC 3161 time-stamps: none in these catalogs
        "exifread",  # add and import: metadata of new bytes
        "puremagic",  # add and import: media types of new bytes
        "av",  # add and import of audio and video: only in the media reader's own process
        "evidence_catalog.extract.media",
        "PIL",
        "rich",  # progress bars, on a terminal only
        "alembic",  # schema upgrades: a catalog at the newest revision needs none
        "fsspec",  # object storage
        "s3fs",
        "botocore",
        "tomli_w",  # writing catalog.toml (init)
        "numpy",  # near-duplicate search (similar) and media analysis
        "evidence_catalog.similarity",
        # Media analysis: its adapters and their decoders, for add, capture, analyze and the
        # analyses verify makes again (a catalog here has none); show reads the documents only.
        "pdqhash",
        "c2pa",
        "evidence_catalog.extract.perceptual",
        "evidence_catalog.extract.credentials",
        # The operations that neither opening nor reading a catalog uses, and their adapters:
        # the facade imports each when one of its methods is first looked up.
        "evidence_catalog.operations.adding",
        "evidence_catalog.operations.capturing",
        "evidence_catalog.operations.exporting",
        "evidence_catalog.operations.housekeeping",
        "evidence_catalog.operations.importing",
        "evidence_catalog.operations.ingesting",
        "evidence_catalog.operations.log_proofs",
        "evidence_catalog.operations.similar",
        "evidence_catalog.capture",  # yt-dlp's driver
        "evidence_catalog.ingest.formats",  # the ingest readers
        "evidence_catalog.ingest.fetch",
        "evidence_catalog.interchange.bag",  # export and import
        "evidence_catalog.interchange.export",
        "evidence_catalog.interchange.importing",
        "http.client",  # fetching (ingest of a URL, time-stamps); yt-dlp brings its own
        "urllib.request",
    }
)

#: Never needed by ``list`` and ``show`` either (``verify`` needs the findings and results; no
#: command on a small catalog starts worker processes): what only verifying, searching,
#: linking, judging or making ids uses.
NEVER_FOR_LIST_OR_SHOW = frozenset(
    {
        "evidence_catalog.findings",
        "evidence_catalog.results",
        "evidence_catalog.replay",
        "evidence_catalog.interchange.redact",
        "evidence_catalog.ingest.links",
        "evidence_catalog.operations.judging",
        "evidence_catalog.operations.verifying",
        "evidence_catalog.operations.verify_tree",
        "evidence_catalog.operations.record_checks",
    }
)

#: Never needed by a command on a small catalog: worker processes.
NEVER_FOR_SMALL = frozenset({"multiprocessing", "concurrent.futures.process"})

#: Also never needed for ``--version`` and ``--help``: the library behind the commands.
NEVER_FOR_HELP = NEVER_FOR_READING | {
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
    "psycopg",
    "cryptography",
    "attr",
    "attrs",
    "cattrs",
    "rfc8785",
    "evidence_catalog.catalog",
    "evidence_catalog.model",
    "evidence_catalog.store",
    "evidence_catalog.operations",
}


def loaded_by(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``evidence-catalog ARGS`` in a new interpreter; its result and every module it loaded."""
    out = tmp_path / f"modules-{len(list(tmp_path.glob('modules-*')))}.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args], capture_output=True, text=True, timeout=120, check=False
    )
    return done, set(json.loads(out.read_text(encoding="utf-8")))


def heavy(modules: set[str], forbidden: frozenset[str] | set[str]) -> list[str]:
    """The modules of *modules* that are, or are inside, a package of *forbidden*."""
    parts = {m: m.split(".") for m in modules}
    return sorted(m for m, p in parts.items() if any(".".join(p[:n]) in forbidden for n in range(1, len(p) + 1)))


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_load_no_library(args: list[str], tmp_path: Path) -> None:
    done, modules = loaded_by(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "evidence-catalog" in done.stdout
    assert heavy(modules, NEVER_FOR_HELP) == []
    assert "evidence_catalog.errors" in modules  # the probe did run the command


def test_help_is_the_same_whether_the_library_is_loaded_or_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--help`` in a new interpreter, having loaded no library, lists every command with its
    short help exactly as it is printed once everything is loaded (this process has it all)."""
    monkeypatch.setenv("COLUMNS", "100")  # the child's terminal: help 98 columns wide
    done, _ = loaded_by(["--help"], tmp_path)
    here = CliRunner().invoke(cli, ["--help"], prog_name="evidence-catalog", terminal_width=98)
    assert "evidence_catalog.catalog" in sys.modules
    assert done.stdout == here.output
    assert all(f"  {name} " in done.stdout for name in cli.commands)


@pytest.fixture
def small_catalog(catalog: Catalog, tmp_path: Path) -> tuple[Catalog, str]:
    """A catalog of a few small files, and one of its record ids."""
    files = []
    for n in range(3):
        path = tmp_path / f"file-{n}.bin"
        path.write_bytes(bytes([n]) * (1000 + n))
        files.append(path)
    results = catalog.add(files)
    catalog.close()
    return catalog, results[0].record_id


@pytest.mark.parametrize("command", ["list", "show", "verify"])
def test_reading_a_catalog_loads_only_what_reading_needs(
    small_catalog: tuple[Catalog, str], command: str, tmp_path: Path
) -> None:
    catalog, record_id = small_catalog
    args = [command, "--catalog", str(catalog.path)] + ([record_id] if command == "show" else [])
    done, modules = loaded_by(args, tmp_path)
    assert done.returncode == 0, done.stderr
    if command == "verify":
        assert done.stdout.startswith("verified: 3 record(s)"), done.stdout
    else:
        assert record_id in done.stdout
    forbidden = set(NEVER_FOR_READING) | NEVER_FOR_SMALL | other_commands(command)
    if command != "verify":
        forbidden |= NEVER_FOR_LIST_OR_SHOW
    if database_dialect(catalog) == "sqlite":
        forbidden.add("psycopg")
    assert heavy(modules, forbidden) == []
    assert {"sqlalchemy", "evidence_catalog.catalog"} <= modules  # it did read the catalog


def other_commands(command: str) -> set[str]:
    """The modules of the CLI that define commands other than *command*."""
    from evidence_catalog.cli.app import COMMAND_MODULES

    own = COMMAND_MODULES[command]
    return {f"evidence_catalog.cli.{module}" for module in COMMAND_MODULES.values() if module != own}


@pytest.mark.no_postgresql_pass  # no catalog: the same on both runs
def test_each_command_is_found_in_the_module_the_group_imports_for_it() -> None:
    """The command group imports a command's module by :data:`COMMAND_MODULES` when the
    command is run: every command is there, under the module that defines it, and no name
    there is not a command."""
    from evidence_catalog.cli.app import COMMAND_MODULES

    defined = {name: command.callback.__module__ for name, command in cli.commands.items() if command.callback}
    assert set(defined) == set(cli.commands) == set(COMMAND_MODULES)
    assert {name: f"evidence_catalog.cli.{module}" for name, module in COMMAND_MODULES.items()} == defined


@pytest.mark.parametrize("command", ["list", "show"])
def test_reading_a_catalog_of_analysed_photos_loads_no_decoder(
    catalog: Catalog, jpeg_file: Any, command: str, tmp_path: Path
) -> None:
    """``show`` prints what the analyses found from their stored documents: no decoder, no
    analyser is loaded to read them."""
    [added] = catalog.add([jpeg_file()])
    assert len(catalog.analyses(added.record_id)) == 1
    catalog.close()
    args = [command, "--catalog", str(catalog.path)] + ([added.record_id] if command == "show" else [])
    done, modules = loaded_by(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert added.record_id in done.stdout
    if command == "show":
        assert f"analysis of {added.sha256}" in done.stdout
    forbidden = set(NEVER_FOR_READING)
    if database_dialect(catalog) == "sqlite":
        forbidden.add("psycopg")
    assert heavy(modules, forbidden) == []


def test_similar_loads_the_search_and_numpy_and_nothing_else_reading_does_not_need(
    catalog: Catalog, tmp_path: Path
) -> None:
    from evidence_catalog.analysis import PerceptualHash

    made = []
    for n in range(2):
        media, document = tmp_path / f"media-{n}.bin", tmp_path / f"analysis-{n}.json"
        media.write_bytes(bytes([n]) * 100)
        document.write_text(f'{{"n": {n}}}', encoding="utf-8")
        [added] = catalog.add([media])
        assert added.record_id is not None
        [analysis] = catalog.add([document], record_id=added.record_id)
        with catalog._ctx.write() as session:
            catalog.db.add_hashes(
                session, added.record_id, added.sha256, analysis.sha256, [PerceptualHash(f"{n:064x}", quality=80)]
            )
        made.append(added)
    catalog.close()
    done, modules = loaded_by(["similar", made[0].record_id or "", "--catalog", str(catalog.path)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", made[1].record_id, made[1].sha256]
    needed = {"numpy", "evidence_catalog.similarity", "evidence_catalog.operations.similar"}
    assert needed <= modules
    forbidden = set(NEVER_FOR_READING) - needed
    if database_dialect(catalog) == "sqlite":
        forbidden.add("psycopg")
    assert heavy(modules, forbidden) == []


def run_python(code: str) -> set[str]:
    """The modules a new interpreter has loaded after running *code*."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_package_loads_no_library() -> None:
    """``import evidence_catalog`` costs a script nothing it has not asked for yet."""
    assert heavy(run_python("import evidence_catalog"), NEVER_FOR_HELP | {"importlib.metadata"}) == []


def test_a_script_that_opens_a_catalog_loads_no_more_than_opening_needs() -> None:
    modules = run_python("from evidence_catalog import Catalog, EvidenceRecord, VerificationReport")
    assert heavy(modules, NEVER_FOR_READING) == []
    assert "sqlalchemy" in modules


def test_a_catalog_method_imports_its_operation_when_first_looked_up(tmp_path: Path) -> None:
    """``Catalog.capture`` (on the class or on an open catalog) imports its operation then, and
    is from then on the same function of the class as a method made at once; the names the
    facade's module offers from those operations are there when asked for."""
    run_python(
        "import inspect, sys\n"
        "from evidence_catalog import Catalog\n"
        "later = 'evidence_catalog.operations.capturing', 'evidence_catalog.operations.adding'\n"
        "assert not any(name in sys.modules for name in later)\n"
        "method = Catalog.capture\n"
        "assert later[0] in sys.modules and later[1] not in sys.modules\n"
        "assert inspect.isfunction(vars(Catalog)['capture']) and Catalog.capture is method\n"
        "assert method.__qualname__ == 'Catalog.capture' and method.__module__ == 'evidence_catalog.catalog'\n"
        "assert list(inspect.signature(method).parameters)[:2] == ['self', 'urls']\n"
        f"catalog = Catalog.init({str(tmp_path / 'c')!r}, operator='Tester <t@example.org>')\n"
        f"[added] = catalog.add([{str(Path(__file__))!r}])\n"
        "assert added.ok if hasattr(added, 'ok') else added.sha256\n"
        "assert inspect.isfunction(vars(Catalog)['add'])\n"
        "catalog.close()\n"
        "from evidence_catalog.catalog import EXPORT_FORMATS, INGEST_FORMATS, TSA_ENV\n"
        "assert 'bagit' in EXPORT_FORMATS and 'rss' in INGEST_FORMATS and TSA_ENV\n"
    )
    with pytest.raises(ImportError):
        exec("from evidence_catalog.catalog import NO_SUCH_NAME")


def test_every_exported_name_imports_in_a_new_interpreter() -> None:
    """Each name of ``__all__``, imported alone first thing (as a script does), is the object
    the library defines; ``dir()`` lists them all."""
    names = sorted(evidence_catalog.__all__)
    code = (
        "import importlib, evidence_catalog\n"
        f"for name in {names!r}:\n"
        "    exec(f'from evidence_catalog import {name} as value')\n"
        "    assert value is getattr(evidence_catalog, name), name\n"
        "assert set(evidence_catalog.__all__) <= set(dir(evidence_catalog))\n"
    )
    run_python(code)
    for name in names:  # the same objects in this process, loaded in another order
        assert getattr(evidence_catalog, name) is not None


def test_versions_stays_the_function_when_its_module_is_imported_first() -> None:
    """``versions`` is both a function of the package and the module it lives in: importing
    the module by name, before or after, must not put the module where the function is."""
    run_python(
        "import evidence_catalog.versions\n"
        "from evidence_catalog import versions, __version__\n"
        "assert callable(versions) and versions()['evidence-catalog'] == __version__\n"
    )
    from evidence_catalog import __version__, versions

    assert versions()["evidence-catalog"] == __version__ == evidence_catalog.__version__


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = evidence_catalog.no_such_name  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        exec("from evidence_catalog import no_such_name")


def test_every_name_is_either_imported_with_the_package_or_found_where_it_is_said_to_be() -> None:
    """The names not in ``_LAZY`` (the errors and ``versions``) are there as soon as the package
    is imported; each name in ``_LAZY`` is defined by the module it names."""
    lazy: dict[str, str] = evidence_catalog._LAZY
    assert set(lazy) <= set(evidence_catalog.__all__)
    run_python(
        "import evidence_catalog\n"
        "at_once = set(evidence_catalog.__all__) - set(evidence_catalog._LAZY)\n"
        "missing = [name for name in at_once if name not in vars(evidence_catalog)]\n"
        "assert not missing, missing\n"
    )
    for name, module in lazy.items():
        assert hasattr(importlib.import_module(f"evidence_catalog.{module}"), name), name


def test_the_choices_found_late_are_the_librarys() -> None:
    """Options whose values come from the library (found when first needed, not when the
    command is made) offer exactly those values, in the order they had."""
    from evidence_catalog import model
    from evidence_catalog.ingest.formats import INGEST_FORMATS
    from evidence_catalog.operations.exporting import EXPORT_FORMATS
    from evidence_catalog.schema_files import SCHEMA_FILES

    def choice(command: str, param: str) -> tuple[str, ...]:
        [found] = [p for p in cli.commands[command].params if p.name == param]
        assert isinstance(found.type, click.Choice)
        return tuple(found.type.choices)

    assert choice("ingest", "fmt") == tuple(INGEST_FORMATS)
    assert choice("export", "fmt") == tuple(EXPORT_FORMATS)
    assert choice("schema", "name") == tuple(sorted(SCHEMA_FILES))
    assert choice("list", "status") == tuple(s.value for s in model.VerificationStatus)
    assert choice("flag", "kind") == tuple(k.value for k in model.SensitivityKind)
    assert choice("relate", "kind") == tuple(k.value for k in model.RelationKind)
    assert choice("assess", "methods") == tuple(m.value for m in model.VerificationMethod)
    assert choice("claim", "precision") == tuple(p.value for p in model.TimePrecision)


def test_a_value_not_among_late_choices_is_refused_as_before(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["list", "--catalog", str(tmp_path), "--status", "nope"])
    assert result.exit_code == 2
    assert result.output.endswith(
        "Error: Invalid value for '--status': 'nope' is not one of "
        "'unverified', 'in_progress', 'verified', 'disputed', 'false'.\n"
    )


#: A command's process, reporting the collector's state after the command ran: whether it
#: collects, how many objects it holds in its permanent generation, and how many it tracks.
GC_PROBE = """
import gc, json, sys
how = sys.argv.pop(1)
sys.argv[0] = "evidence-catalog"
from evidence_catalog.cli.app import main, run
if how == "run":  # as the console script runs it
    try:
        run()
    except SystemExit as exc:
        code = exc.code
else:
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def test_a_command_imports_the_library_uncollected_and_collects_after(small_catalog: tuple[Catalog, str]) -> None:
    """In the console script's process, the library's import (hundreds of thousands of objects
    that live as long as the command) is made with the collector paused, and then frozen out of
    its walks; the command itself runs with the collector on, as before."""
    catalog, _ = small_catalog
    states = {}
    for how in ("run", "main"):
        done = subprocess.run(
            [sys.executable, "-c", GC_PROBE, how, "list", "--catalog", str(catalog.path)],
            capture_output=True,
            text=True,
            check=True,
        )
        states[how] = json.loads(done.stdout.splitlines()[-1])
        assert states[how]["code"] == 0 and states[how]["enabled"], how
    assert states["run"]["frozen"] > 100_000  # SQLAlchemy's, SQLModel's and the model's objects
    assert states["main"]["frozen"] == 0  # main() may run many commands in one process: nothing frozen


def test_a_script_that_opens_a_catalog_keeps_its_collector_as_it_was(small_catalog: tuple[Catalog, str]) -> None:
    """A script's process is its own: opening a catalog through the library freezes nothing."""
    catalog, _ = small_catalog
    script = (
        "import gc, json, sys\n"
        "from evidence_catalog import Catalog\n"
        "with Catalog.open(sys.argv[1]) as catalog:\n"
        "    count = len(list(catalog.records()))\n"
        "print(json.dumps({'count': count, 'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(catalog.path)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.splitlines()[-1]) == {"count": 3, "enabled": True, "frozen": 0}


class _Cycle:
    def __init__(self) -> None:
        self.me = self
        self.payload = bytearray(1 << 20)


def _commands_then_collect(catalog: str) -> dict[str, Any]:
    from evidence_catalog.cli.app import main

    assert main(["init", catalog]) == 0  # the library imported, frozen once
    finalized: list[int] = []
    cycle = _Cycle()
    weakref.finalize(cycle, finalized.append, 1)
    gc.collect()  # (it lived a while: the oldest generation, as what a long process drops is)
    del cycle  # garbage now, in a reference cycle: for the collector
    assert main(["list", "--catalog", catalog]) == 0
    gc.collect()
    return {"finalized": len(finalized), "frozen": gc.get_freeze_count()}


def test_a_command_does_not_freeze_the_garbage_its_process_made_before(tmp_path: Path) -> None:
    """(From a review.) A process that runs commands through ``cli.main`` -- a script, the
    tests' ``run_cli`` -- may drop what each made: nothing is frozen there, and its garbage is
    collected, finalizers and all."""
    result = in_new_interpreter(_commands_then_collect, str(tmp_path / "c"))
    assert result["finalized"] == 1, result
