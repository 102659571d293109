"""A catalog whose database is on a PostgreSQL server (a real one, tests/pg_server.py), in what
only such a server brings: passwords, other processes making a catalog in the same database, and
accounts with fewer rights.

1. A database password (in the URL's user part or as a ``password`` or ``sslpassword`` query
   parameter) is used and then forgotten: it is in no file, output or log afterwards.
2. Two ``init`` calls racing for one empty PostgreSQL database: one wins, the other is refused
   and undoes nothing of the winner's.
3. A PostgreSQL account that may only read verifies a catalog (the verification is not logged).

These tests choose their databases themselves: the Makefile's PostgreSQL run leaves this module
out (PG_IGNORE), and the SQLite run starts the server they need.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.config import CONFIG_FILE, CatalogConfig
from evidence_catalog.custody import Action
from evidence_catalog.errors import CatalogError, EvidenceError
from evidence_catalog.store.database import PG_WRITE_LOCK, safe_url

from .conftest import CliResult
from .pg_server import PostgresServer

RunCli = Callable[..., CliResult]


def _psycopg_url(url: str | sa.URL) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq (psycopg) takes it."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# -- 1. a database password is never stored ------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://alice:{secret}@db.example.org:5433/evidence?sslmode=require",
        "postgresql+psycopg://alice@db.example.org/evidence?password={secret}&sslmode=require",
        "postgresql+psycopg://alice@db.example.org/evidence?sslpassword={secret}&sslmode=require",
        "postgresql+psycopg:///evidence?host=db.example.org&user=alice&password={secret}&sslmode=require",
        "postgresql+psycopg://alice:{secret}@db.example.org/evidence?password={secret}&sslpassword={secret}"
        "&sslmode=require",
    ],
)
def test_safe_url_leaves_out_every_password_and_keeps_the_rest(url: str) -> None:
    secret = "Hunter2-" + uuid.uuid4().hex
    safe = safe_url(url.format(secret=secret))
    assert secret not in safe
    parsed = sa.make_url(safe)
    assert parsed.password is None
    assert not {"password", "sslpassword"} & set(parsed.query)
    assert parsed.database == "evidence" and parsed.query["sslmode"] == "require"
    assert "alice" in safe and "db.example.org" in safe


@settings(max_examples=60)
@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", min_size=1),
    where=st.sets(st.sampled_from(["user info", "password", "sslpassword"]), min_size=1),
    other=st.dictionaries(st.sampled_from(["sslmode", "application_name", "connect_timeout"]), st.just("x")),
)
def test_no_password_survives_safe_url(secret: str, where: set[str], other: dict[str, str]) -> None:
    marked = f"S3CR3T{secret}"  # nothing else in the URL holds it
    url = sa.make_url("postgresql+psycopg://auditor@db.example.org:5432/evidence").update_query_dict(other)
    if "user info" in where:
        url = url.set(password=marked)
    url = url.update_query_dict(dict.fromkeys(where - {"user info"}, marked))
    safe = safe_url(url)
    assert marked not in safe
    parsed = sa.make_url(safe)
    assert parsed.password is None and dict(parsed.query) == other
    assert (parsed.username, parsed.host, parsed.port, parsed.database) == (
        "auditor",
        "db.example.org",
        5432,
        "evidence",
    )


@pytest.mark.parametrize("given_as", ["user info", "password parameter", "sslpassword parameter"])
def test_a_database_password_is_used_once_and_written_nowhere(
    pg_database: str, run_cli: RunCli, tmp_path: Path, given_as: str
) -> None:
    """The test server trusts every connection, so any password is accepted: what matters is
    where it ends up (nowhere)."""
    secret = "TopSecret-" + uuid.uuid4().hex
    base = sa.make_url(pg_database)
    if given_as == "user info":
        url = base.set(password=secret)
    else:
        url = base.update_query_dict({given_as.split()[0]: secret})
    folder = tmp_path / "catalog"
    evidence = tmp_path / "statement.txt"
    evidence.write_text("a witness statement")
    exported = tmp_path / "export.json"
    results = [run_cli("init", folder, "--database", url.render_as_string(hide_password=False))]
    assert results[0].code == 0, results[0].err
    for args in (
        ("add", evidence, "--catalog", folder),
        ("list", "--catalog", folder),
        ("verify", "--catalog", folder),
        ("log", "--catalog", folder),
        ("export", "--catalog", folder, "--format", "json", "-o", exported),
    ):
        result = run_cli(*args)
        assert result.code == 0, (args, result.err)
        results.append(result)
    for result in results:
        assert secret not in result.out + result.err
    written = [*_files_under(folder), exported]
    assert folder / CONFIG_FILE in written and (folder / "keys" / "log.pub") in written
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
    stored = sa.make_url(CatalogConfig.load(folder).database_url or "")
    assert stored.password is None and not {"password", "sslpassword"} & set(stored.query)
    assert (stored.host, stored.port, stored.database) == (base.host, base.port, base.database)
    with Catalog.open(folder) as catalog:  # what is kept is enough to open it again
        assert len(catalog.record_ids()) == 1 and catalog.verify(record_event=False).ok


# -- 2. two inits racing for one PostgreSQL database ------------------------------------------


def _waiting_for_the_write_lock(holder: psycopg.Connection[Any]) -> int:
    row = holder.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    return int(row[0]) if row else 0


def _race_inits(
    url: str, folders: list[Path], *, hold_lock: bool, before_release: Callable[[], None] | None = None
) -> dict[str, BaseException | None]:
    """``Catalog.init`` of each folder on the database *url*, in threads at once; what each
    raised (``None``: it made its catalog).

    With *hold_lock*, the catalog's write lock is held meanwhile (as a slow migration of another
    process would hold it) until every init waits for it, in the order of *folders*: they have
    all looked at the database by then, and then get the lock in that order."""
    outcomes: dict[str, BaseException | None] = {}
    start = threading.Barrier(len(folders))

    def init(folder: Path) -> None:
        if not hold_lock:
            start.wait()
        try:
            Catalog.init(folder, database=url, operator=f"Analyst {folder.name} <a@example.org>").close()
        except Exception as exc:  # noqa: BLE001  (what each raised is the result)
            outcomes[folder.name] = exc
        else:
            outcomes[folder.name] = None

    threads = [threading.Thread(target=init, args=(folder,)) for folder in folders]
    with psycopg.connect(_psycopg_url(url), autocommit=True) as holder:
        if hold_lock:
            holder.execute("SELECT pg_advisory_lock(%s)", (PG_WRITE_LOCK,))
        for count, thread in enumerate(threads, start=1):
            thread.start()
            if hold_lock:
                deadline = time.monotonic() + 30
                while _waiting_for_the_write_lock(holder) < count:
                    assert time.monotonic() < deadline, "the inits never waited for the write lock"
                    time.sleep(0.01)
        if before_release is not None:
            before_release()
        if hold_lock:
            holder.execute("SELECT pg_advisory_unlock(%s)", (PG_WRITE_LOCK,))
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive()
    return outcomes


def _assert_one_intact_catalog(folder: Path) -> None:
    with Catalog.open(folder) as catalog:
        assert catalog.verify().ok
        assert [e.action for e in catalog.history()].count(Action.CATALOG_CREATED) == 1


@pytest.mark.parametrize("hold_lock", [True, False], ids=["one waits for the other", "started together"])
def test_of_two_inits_racing_for_one_database_exactly_one_makes_a_catalog(
    pg_server: PostgresServer, tmp_path: Path, hold_lock: bool
) -> None:
    for attempt in range(3):
        url = pg_server.new_database()
        try:
            folders = [tmp_path / f"{attempt}-first", tmp_path / f"{attempt}-second"]
            outcomes = _race_inits(url, folders, hold_lock=hold_lock)
            made = [name for name, error in outcomes.items() if error is None]
            assert len(made) == 1, outcomes
            [refused] = [error for error in outcomes.values() if error is not None]
            assert isinstance(refused, CatalogError) and "already holds a catalog" in str(refused), repr(refused)
            [winner] = [f for f in folders if f.name in made]
            [loser] = [f for f in folders if f.name not in made]
            assert not loser.exists()  # the refused init leaves nothing behind
            _assert_one_intact_catalog(winner)
        finally:
            pg_server.drop_database(url)


def test_an_init_that_loses_the_race_and_fails_later_leaves_the_winners_tables(
    pg_database: str, tmp_path: Path
) -> None:
    """The loser would fail late (its catalog.toml cannot be written): it must never get that
    far, nor drop tables it did not make."""
    first, second = tmp_path / "first", tmp_path / "second"

    def block_the_seconds_settings() -> None:
        (second / (CONFIG_FILE + ".tmp")).mkdir()

    outcomes = _race_inits(pg_database, [first, second], hold_lock=True, before_release=block_the_seconds_settings)
    assert outcomes["first"] is None, outcomes
    assert isinstance(outcomes["second"], EvidenceError), outcomes
    with psycopg.connect(_psycopg_url(pg_database)) as connection:
        tables = {row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"alembic_version", "custody_event", "record", "artifact"} <= tables
    _assert_one_intact_catalog(first)


def _public_tables(url: str) -> list[str]:
    with psycopg.connect(_psycopg_url(url)) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        return [row[0] for row in rows]


def test_init_refuses_a_database_holding_another_programs_tables_and_leaves_them_as_they_were(
    pg_database: str, tmp_path: Path
) -> None:
    """The schema is made without looking for each table first: a table of another program
    (here one named as a catalog table is) must never be taken over, nor the server said to be
    unreachable."""
    with psycopg.connect(_psycopg_url(pg_database)) as connection:
        connection.execute("CREATE TABLE record (id INTEGER PRIMARY KEY, note TEXT)")
        connection.execute("INSERT INTO record (id, note) VALUES (1, 'someone else''s row')")
    with pytest.raises(CatalogError, match=r"not empty \(it holds the tables record\)") as raised:
        Catalog.init(tmp_path / "catalog", operator="tester", database=pg_database)
    assert "cannot reach" not in str(raised.value)
    assert not (tmp_path / "catalog").exists()
    assert _public_tables(pg_database) == ["record"]
    with psycopg.connect(_psycopg_url(pg_database)) as connection:
        assert connection.execute("SELECT id, note FROM record").fetchall() == [(1, "someone else's row")]


def test_an_init_that_fails_late_leaves_the_database_empty_and_init_can_run_again(
    pg_database: str, tmp_path: Path
) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / (CONFIG_FILE + ".tmp")).mkdir()  # catalog.toml cannot be written: init fails last
    with pytest.raises(EvidenceError):
        Catalog.init(folder, operator="tester", database=pg_database)
    assert _public_tables(pg_database) == []
    (folder / (CONFIG_FILE + ".tmp")).rmdir()
    with Catalog.init(folder, operator="tester", database=pg_database) as catalog:
        assert catalog.verify().ok


# -- 3. an account that may only read ------------------------------------------------------------


def test_an_account_allowed_only_to_read_verifies_without_logging(
    pg_database: str, tmp_path: Path, run_cli: RunCli
) -> None:
    folder = tmp_path / "catalog"
    with Catalog.init(folder, database=pg_database, operator="Analyst <a@example.org>") as catalog:
        (tmp_path / "f.txt").write_text("evidence")
        catalog.add([tmp_path / "f.txt"])
        events = len(catalog.history())
    role = f"auditor_{uuid.uuid4().hex[:12]}"
    admin = _psycopg_url(pg_database)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {role} LOGIN")
        connection.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        auditor = tmp_path / "auditor"
        shutil.copytree(folder, auditor)
        config = CatalogConfig.load(folder)
        url = sa.make_url(config.database_url or "").set(username=role).render_as_string(hide_password=False)
        (auditor / CONFIG_FILE).write_text(attrs.evolve(config, database_url=url).to_toml(), encoding="utf-8")

        result = run_cli("verify", "--catalog", auditor)
        assert result.code == 0, result.out + result.err
        assert "PROBLEM" not in result.out + result.err
        assert "not logged" in result.err
        with Catalog.open(auditor, read_only=True) as catalog:
            report = catalog.verify()
            assert report.ok and not report.logged
        with Catalog.open(auditor) as catalog:  # not said to be read-only: found out when logging
            report = catalog.verify()
            assert report.ok and not report.logged
            assert len(catalog.history()) == events
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP OWNED BY {role}")
            connection.execute(f"DROP ROLE {role}")
