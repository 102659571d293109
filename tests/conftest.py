"""Shared fixtures: real catalogs in temporary directories, real image files, a fixed clock."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import settings
from PIL import Image
from PIL.ExifTags import GPS, IFD, Base

from evidence_catalog import Agent, Catalog
from evidence_catalog.cli import main
from tests.media_server import MediaServer
from tests.pg_server import EXISTING_SERVER_ENV, PostgresServer, find_bindir

# Property tests here do real I/O (SQLite files, blobs): time limits per example would only make
# them flaky on a loaded machine.  Failing examples are printed so that CI failures reproduce.
settings.register_profile("evidence-catalog", deadline=None, print_blob=True)
settings.load_profile("evidence-catalog")


class ZeroStream:
    """A stream of zero bytes of any length that never exists in memory at once."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readinto(self, buffer: memoryview) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


class FixedClock:
    """A clock that starts at a fixed instant and ticks one millisecond per reading."""

    def __init__(self, start: dt.datetime = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(milliseconds=1)
        return self.now


@pytest.fixture(params=["c", "python"])
def commitments_walk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each way the fast paths make an event's salted commitments: the C module's walk (skipped
    where it is not built) and the pure-Python one.  A test that takes it runs once with each."""
    from evidence_catalog import sealing

    if request.param == "python":
        monkeypatch.setattr(sealing, "_native", None)
    elif sealing._native is None:
        pytest.skip("the C module of the commitments is not built here")
    return str(request.param)


@pytest.fixture
def operator() -> Agent:
    return Agent(name="Test Analyst", email="analyst@example.org", organization="Example NGO", host="test-host")


@pytest.fixture
def catalog(tmp_path: Path, operator: Agent) -> Iterator[Catalog]:
    with Catalog.init(tmp_path / "catalog", operator=operator, clock=FixedClock()) as cat:
        yield cat


def make_jpeg(
    *,
    make: str | None = "DemoCam",
    model: str | None = "Model 1",
    taken: str | None = "2024:03:01 10:15:30",
    offset: str | None = "+02:00",
    gps: tuple[float, float, float | None] | None = (50.450333, 30.5235, 179.5),
    colour: tuple[int, int, int] = (120, 130, 140),
) -> bytes:
    """A real JPEG written by Pillow, with the EXIF fields asked for."""
    image = Image.new("RGB", (64, 48), colour)
    exif = Image.Exif()
    if make:
        exif[Base.Make] = make
    if model:
        exif[Base.Model] = model
    exif[Base.Software] = "tests"
    if taken:
        exif.get_ifd(IFD.Exif)[Base.DateTimeOriginal] = taken
    if offset:
        exif.get_ifd(IFD.Exif)[Base.OffsetTimeOriginal] = offset
    if gps is not None:
        lat, lon, alt = gps
        info = exif.get_ifd(IFD.GPSInfo)
        info[GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
        info[GPS.GPSLatitude] = _dms(abs(lat))
        info[GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
        info[GPS.GPSLongitude] = _dms(abs(lon))
        if alt is not None:
            info[GPS.GPSAltitudeRef] = b"\x01" if alt < 0 else b"\x00"
            info[GPS.GPSAltitude] = abs(alt)
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600, 4)
    return float(degrees), float(minutes), seconds


@pytest.fixture
def jpeg_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a real JPEG with EXIF into the test's directory and return its path."""
    counter = iter(range(10_000))

    def write(name: str | None = None, **kwargs: object) -> Path:
        path = tmp_path / (name or f"photo-{next(counter)}.jpg")
        path.write_bytes(make_jpeg(**kwargs))  # type: ignore[arg-type]
        return path

    return write


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run the CLI in-process through its real entry point; return exit code and output."""

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([str(a) if isinstance(a, Path) else a for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="module")
def server() -> Iterator[MediaServer]:
    """A real HTTP server on 127.0.0.1, one per test module; each test serves under its own path
    prefix (see ``base``)."""
    with MediaServer() as running:
        yield running


@pytest.fixture
def base() -> str:
    """A path prefix of this test's own on the shared server."""
    return f"/{uuid.uuid4().hex[:12]}"


@pytest.fixture(autouse=True)
def _verifier_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints a verification remembers go to a folder of each test's own, never the home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


# -- database back-ends -----------------------------------------------------------------------
#
# `pytest` runs every test on SQLite (each catalog's own catalog.db); `pytest --backend
# postgresql` runs the same tests with every catalog that `Catalog.init` makes in a new, empty
# database of a real PostgreSQL server the tests start themselves (tests/pg_server.py).  Tests
# that look inside the SQLite file itself are marked `sqlite_only` (skipped there).  Tests marked
# `no_postgresql_pass` are left out of that run (deselected, not skipped), like the modules the
# Makefile's PG_IGNORE names: they choose their databases themselves (starting PostgreSQL where
# they need it), or reproduce races and faults on the SQLite run's catalogs only.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("sqlite", "postgresql"),
        default=os.environ.get("EVIDENCE_CATALOG_TEST_BACKEND", "sqlite"),
        help="the database every catalog made by a test lives in",
    )
    parser.addoption(
        "--update-public-api",
        action="store_true",
        help="rewrite tests/data/public_api.txt from the library as it is (a change of API, on purpose)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: looks inside the SQLite database file itself")
    config.addinivalue_line(
        "markers", "no_postgresql_pass: left out of the `--backend postgresql` run (deselected); the SQLite run runs it"
    )
    config.addinivalue_line(
        "markers", "slow: takes long (kills, concurrency, big property runs, scale); `make test-fast` leaves it out"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--backend") != "postgresql":
        return
    left_out = [item for item in items if "no_postgresql_pass" in item.keywords]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if "no_postgresql_pass" not in item.keywords]
    skip = pytest.mark.skip(reason="looks inside the SQLite file itself; the PostgreSQL run covers the rest")
    fewer: set[int] = set()
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(skip)
        _fewer_examples(getattr(item, "obj", None), fewer)


#: The PostgreSQL run's share of a property test's examples.  The SQLite run draws them all; this
#: run is there for what the database changes (types, transactions, ordering, search), which a
#: quarter of them reaches: it keeps the suite's time within bounds on a 2-core machine.
PG_EXAMPLES_SHARE = 4


def _fewer_examples(test: object, done: set[int]) -> None:
    """Give a hypothesis test a quarter of its examples (at least 5), once per function (the
    items of a parametrised test share it)."""
    current = getattr(test, "_hypothesis_internal_use_settings", None)
    if current is None or id(test) in done or not getattr(test, "is_hypothesis_test", False):
        return
    done.add(id(test))
    share = max(5, current.max_examples // PG_EXAMPLES_SHARE)
    test._hypothesis_internal_use_settings = settings(current, max_examples=min(share, current.max_examples))  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def needs_pdf() -> None:
    """Skip, saying why, a test that makes an exhibit's PDF where WeasyPrint cannot be loaded
    (it needs Pango from the system); in CI, which installs it, fail instead."""
    from evidence_catalog.errors import InputError
    from evidence_catalog.interchange.exhibit_pdf import weasyprint_version

    try:
        weasyprint_version()
    except InputError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc.message}: .ci/run installs it")
        pytest.skip(exc.message)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system's Chromium, for a test that drives it with Playwright (no browser is ever
    downloaded): skipped, saying why, where it or Playwright is not installed; in CI, which
    installs both, failed instead."""
    from evidence_catalog.capture.page import chromium_path
    from evidence_catalog.errors import InputError

    try:
        return chromium_path()
    except InputError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc.message}: .ci/run installs it")
        pytest.skip(exc.message)


#: Where ``make test`` installs case-utils (its own virtualenv: it pins pandas, numpy, pyshacl).
CASE_VALIDATE_ENV = "EVIDENCE_CATALOG_CASE_VALIDATE"


@pytest.fixture(scope="session")
def case_validate() -> str:
    """The ``case_validate`` command of case-utils 0.18.0: ``$EVIDENCE_CATALOG_CASE_VALIDATE``, else
    the one ``make test`` installs in build/case-venv; skipped, saying why, where neither is
    there; in CI, where make installs it, failed instead."""
    given = os.environ.get(CASE_VALIDATE_ENV)
    found = (
        Path(given)
        if given
        else Path(__file__).resolve().parent.parent / "build" / "case-venv" / "bin" / "case_validate"
    )
    if found.is_file() and os.access(found, os.X_OK):
        return str(found)
    reason = f"case_validate not found at {found} (`make case-venv` makes it; or set {CASE_VALIDATE_ENV})"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for this test session (started from the machine's PostgreSQL
    binaries; CI installs them, elsewhere the tests that need one are skipped without them)."""
    if find_bindir() is None and not os.environ.get(EXISTING_SERVER_ENV):
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run installs it (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_database(pg_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (dropped afterwards)."""
    url = pg_server.new_database()
    yield url
    pg_server.drop_database(url)


#: Databases made for catalogs outside a test's own tmp_path (shared by several tests of a
#: module): dropped when the session ends, with the server.
_KEPT_DATABASES: list[str] = []


@pytest.fixture(autouse=True)
def _database_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.config.getoption("--backend") != "postgresql":
        yield
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    own_folder = request.getfixturevalue("tmp_path")
    made: list[str] = []

    def new_database(directory: Path) -> str:
        url = server.new_database()
        (made if Path(directory).resolve().is_relative_to(own_folder.resolve()) else _KEPT_DATABASES).append(url)
        return url

    monkeypatch.setattr(Catalog, "_default_database", staticmethod(new_database))
    yield
    for url in made:  # this test's catalogs: nothing after it opens them again
        server.drop_database(url)


# -- the database behind the library's back -----------------------------------------------------
#
# Tests that tamper with a catalog's database (as someone with direct access to it would) or look
# at its rows do it through these helpers, on whichever back-end the catalog lives in.


def catalog_database_url(where: Path | Catalog) -> str:
    """The database of a catalog (or of the catalog folder *where*): ``[database] url`` of its
    ``catalog.toml``, else its folder's ``catalog.db``."""
    from evidence_catalog.config import CatalogConfig
    from evidence_catalog.store.database import check_database_url

    directory = where.path if isinstance(where, Catalog) else Path(where)
    url = CatalogConfig.load(directory).database_url
    if url is None:
        return f"sqlite:///{directory / 'catalog.db'}"
    return check_database_url(url).render_as_string(hide_password=False)


def database_dialect(where: Path | Catalog) -> str:
    """``sqlite`` or ``postgresql``: the SQL a statement for *where*'s database must be written in."""
    return sa.make_url(catalog_database_url(where)).get_backend_name()


@contextmanager
def raw_database(where: Path | Catalog, *, foreign_keys: bool = True) -> Iterator[sa.Connection]:
    """A plain connection to a catalog's database, in one transaction committed at the end.

    With ``foreign_keys=False`` it makes edits that leave rows pointing at nothing (SQLite's
    ``PRAGMA foreign_keys``; PostgreSQL's ``session_replication_role = replica``).
    """
    engine = sa.create_engine(catalog_database_url(where))
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":  # outside a transaction, or SQLite ignores it
                connection.exec_driver_sql(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
                connection.commit()
            with connection.begin():
                if engine.dialect.name == "postgresql" and not foreign_keys:
                    connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
                yield connection
    finally:
        engine.dispose()


def run_sql(
    where: Path | Catalog, statement: str, params: dict[str, Any] | None = None, *, foreign_keys: bool = True
) -> list[tuple[Any, ...]]:
    """Run one SQL statement (``:name`` parameters) on a catalog's database and commit; the rows
    it returns, if any."""
    with raw_database(where, foreign_keys=foreign_keys) as connection:
        result = connection.execute(sa.text(statement), params or {})
        return [tuple(row) for row in result] if result.returns_rows else []


def json_set(dialect: str, column: str, path: str, value: object) -> str:
    """SQL for the JSON in *column* with the member at *path* (``$.a.b``) set to *value*."""
    literal = json.dumps(value).replace("'", "''")
    if dialect == "postgresql":
        keys = ",".join(path.removeprefix("$.").split("."))
        return f"jsonb_set({column}::jsonb, '{{{keys}}}', '{literal}'::jsonb)::json"
    return f"json_set({column}, '{path}', json('{literal}'))"


def copy_catalog(source: Path, target: Path) -> None:
    """Copy the closed catalog in folder *source* to *target*, database and all: a catalog whose
    database is not in its folder gets a copy of that database, a new one of this test's own."""
    import shutil

    import attrs
    import psycopg

    from evidence_catalog.config import CONFIG_FILE, CatalogConfig

    shutil.copytree(source, target)
    config = CatalogConfig.load(source)
    if config.database_url is None:
        return
    if Catalog._default_database is None:
        raise RuntimeError("copying a catalog's database needs a test of the postgresql back-end")
    copy = sa.make_url(Catalog._default_database(target))  # made empty, dropped after the test
    original = sa.make_url(config.database_url)
    admin = copy.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{copy.database}"')
        connection.execute(f'CREATE DATABASE "{copy.database}" TEMPLATE "{original.database}"')
    evolved = attrs.evolve(config, database_url=copy.render_as_string(hide_password=False))
    (target / CONFIG_FILE).write_text(evolved.to_toml(), encoding="utf-8")
