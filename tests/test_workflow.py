"""The investigation workflow (claims, assessments, relations, flags, notes, tags, categories),
end to end on real catalogs: each judgement is one custody event, bad input writes nothing,
the log replays to the current state, and ``list`` filters find exactly what they say.

Property tests make a fresh catalog per example (function-scoped fixtures are not reset
between Hypothesis examples).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog, model
from evidence_catalog.custody import Action
from evidence_catalog.errors import InputError, NotFoundError
from evidence_catalog.replay import ANNOTATIONS, replay
from evidence_catalog.schema_files import load_schema
from evidence_catalog.serialize import from_document, structure, to_document, unstructure
from evidence_catalog.vocabulary import BUILTIN_CATEGORIES, BUILTIN_CODES, CODE, Category

from . import strategies as s
from .conftest import CliResult, FixedClock, database_dialect, json_set, run_sql

UTC = dt.UTC
OPERATOR = "Field Analyst <field@example.org>"
ANALYST = Agent(name="Field Analyst", email="field@example.org", host="field-laptop")
#: A well-formed record id (UUIDv7) that no catalog here ever creates.
MISSING = "01a21489-0000-7000-8000-000000000000"
#: Two feed items: each becomes a report on a record of its own.
DIGEST = (
    "Harbour Monitor (Twitter)\n"
    "Two men in uniform shot after surrendering near the depot.\n"
    "Two men in uniform shot after surrendering near the depot.\n"
    "Records Desk (Telegram)\n"
    "Another angle of the depot, filmed from the road.\n"
    "Another angle of the depot, filmed from the road.\n"
)
#: Which member of a part says who made it and when.
ATTRIBUTION = {
    "claim": ("stated_by", "stated_at"),
    "assessment": ("assessor", "assessed_at"),
    "relation": ("linked_by", "linked_at"),
    "flag": ("set_by", "set_at"),
    "note": ("author", "written_at"),
}
RECORD_SCHEMA = jsonschema.Draft202012Validator(load_schema("evidence-record"))
EVENT_SCHEMA = jsonschema.Draft202012Validator(load_schema("custody-event"))
_unique = itertools.count()


# -- helpers ----------------------------------------------------------------------------------


def unsalted(details: dict[str, Any]) -> dict[str, Any]:
    """An event's details without its own random secret (``salt``), which every event has."""
    assert len(details["salt"]) == 64
    return {k: v for k, v in details.items() if k != "salt"}


def add_records(catalog: Catalog, folder: Path, n: int, tags: Sequence[str] = ()) -> list[str]:
    """Add *n* small files with bytes of their own; return the new records' ids."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for _ in range(n):
        number = next(_unique)
        path = folder / f"item-{number}.bin"
        path.write_bytes(f"item {number}".encode())
        paths.append(path)
    results = catalog.add(paths, tags=tags)
    assert all(r.new_record for r in results)
    return [r.record_id for r in results]


@attrs.frozen
class Desk:
    """A catalog with two records made by ingesting :data:`DIGEST`, each with one report."""

    catalog: Catalog
    a: str
    b: str
    report_a: str
    report_b: str


def make_desk(catalog: Catalog, folder: Path) -> Desk:
    folder.mkdir(parents=True, exist_ok=True)
    digest = folder / f"digest-{next(_unique)}.txt"
    digest.write_text(DIGEST, encoding="utf-8")
    result = catalog.ingest(digest)
    assert result.records_added == 2
    a, b = catalog.record_ids()
    [report_a] = catalog.record(a).reports
    [report_b] = catalog.record(b).reports
    return Desk(catalog, a, b, report_a.id, report_b.id)


@pytest.fixture
def desk(catalog: Catalog, tmp_path: Path) -> Desk:
    return make_desk(catalog, tmp_path / "inputs")


def state(catalog: Catalog) -> tuple[list[model.CustodyEvent], list[model.EvidenceRecord], list[Category]]:
    """Everything a refused operation must leave as it was."""
    return catalog.history(), list(catalog.records()), catalog.categories()


def assert_refused(catalog: Catalog, call: Callable[[], object], error: type[Exception], match: str) -> None:
    before = state(catalog)
    with pytest.raises(error, match=match):
        call()
    assert state(catalog) == before


def json_round_trip(record: model.EvidenceRecord) -> model.EvidenceRecord:
    """The record through JSON text and back, its document checked against the schema."""
    document = json.loads(json.dumps(to_document(record), ensure_ascii=False))
    RECORD_SCHEMA.validate(document)
    back: model.EvidenceRecord = from_document(document, model.EvidenceRecord)
    return back


def record_ids_in(output: str) -> list[str]:
    """The record ids of ``list`` output, one line each."""
    return [line.split()[0] for line in output.splitlines()]


def assert_cli_error(result: CliResult, fragment: str) -> None:
    """A user error: exit code 2, one ``error: ...`` line on standard error, no traceback."""
    assert result.code == 2, (result.out, result.err)
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert fragment in result.err, result.err
    assert "Traceback" not in result.err and result.out == ""


# -- 1. one custody event per judgement; show and log -----------------------------------------


def test_each_judgement_is_one_custody_event_by_its_operator_holding_the_whole_part(desk: Desk) -> None:
    clock = FixedClock(dt.datetime(2026, 4, 1, 9, 0, tzinfo=UTC))
    with Catalog.open(desk.catalog.path, operator=ANALYST, clock=clock) as analyst:
        assert analyst.operator == ANALYST != desk.catalog.operator
        alleged_time = model.EventTime(
            start=dt.datetime(2022, 3, 5, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            end=dt.datetime(2022, 3, 5, 12, tzinfo=UTC),
            precision="hour",
        )
        place = model.Place(
            name="Riverside depot",
            position=model.GeoPosition(latitude=48.512, longitude=37.961),
            uncertainty_m=500,
            admin_area="Eastern district",
        )
        steps: list[tuple[str, Callable[[], Any]]] = [
            (
                Action.CLAIM_ADDED,
                lambda: analyst.claim(
                    desk.a,
                    summary="Two men in uniform shot after surrendering",
                    category="rome-8-2-b-vi",
                    event_time=alleged_time,
                    place=place,
                    alleged_perpetrator="unit named in the post",
                    source_report_id=desk.report_a,
                ),
            ),
            (
                Action.ASSESSMENT_ADDED,
                lambda: analyst.assess(
                    desk.a, "verified", methods=["geolocation", "chronolocation"], confidence="high", note="north wall"
                ),
            ),
            (Action.RELATION_ADDED, lambda: analyst.relate(desk.a, "same_incident_as", desk.b, note="same depot")),
            (Action.FLAG_ADDED, lambda: analyst.flag(desk.a, "graphic", "bodies are visible")),
            (Action.NOTE_ADDED, lambda: analyst.add_note(desk.a, "ask the source for the original file")),
        ]
        for action, step in steps:
            member, kind, field = ANNOTATIONS[action]
            events_before, record_before, other_before = (
                analyst.history(),
                analyst.record(desk.a),
                analyst.record(desk.b),
            )
            part = step()
            events = analyst.history()
            assert events[:-1] == events_before  # exactly one event, appended
            event = events[-1]
            assert (event.action, event.subject, event.actor) == (action, desk.a, ANALYST)
            assert unsalted(event.details) == {member: unstructure(part)}  # the whole part, nothing else
            assert structure(event.details[member], kind) == part
            who, when = ATTRIBUTION[member]
            assert getattr(part, who) == ANALYST and getattr(part, when) == event.at
            record = analyst.record(desk.a)
            assert getattr(record, field) == (*getattr(record_before, field), part)
            assert attrs.evolve(record, **{field: getattr(record_before, field)}) == record_before  # nothing else
            assert analyst.record(desk.b) == other_before  # a relation is kept on its source record only
        record = analyst.record(desk.a)
        [claim] = record.claims
        assert claim.event_time == alleged_time and claim.event_time is not None
        assert claim.event_time.start == dt.datetime(2022, 3, 5, 10, tzinfo=UTC)  # kept in UTC
        assert (claim.place, claim.source_report_id, claim.source_description) == (place, desk.report_a, None)
        [assessment] = record.assessments
        assert assessment.methods == (model.VerificationMethod.GEOLOCATION, model.VerificationMethod.CHRONOLOCATION)
        assert assessment.supersedes is None
        assert (
            record.relations[0].target_id == desk.b and record.relations[0].kind is model.RelationKind.SAME_INCIDENT_AS
        )
        assert replay(analyst.history()).records[desk.a] == record
        assert analyst.verify().ok


def test_tag_logs_only_the_tags_a_record_did_not_have(catalog: Catalog, tmp_path: Path) -> None:
    [record_id] = add_records(catalog, tmp_path, 1, tags=["school"])
    before = catalog.history()
    assert catalog.tag(record_id, ["shelling", " night ", "school", "shelling"]) == ("night", "shelling")
    [event] = catalog.history()[len(before) :]
    assert (event.action, event.subject, event.actor) == (Action.TAGS_ADDED, record_id, catalog.operator)
    assert unsalted(event.details) == {"tags": ["night", "shelling"]}
    assert catalog.record(record_id).tags == ("night", "school", "shelling")

    unchanged = state(catalog)
    assert catalog.tag(record_id, ["school", "night"]) == ()
    assert catalog.tag(record_id, "night") == ()
    assert state(catalog) == unchanged
    assert replay(catalog.history()).records[record_id] == catalog.record(record_id)


def test_an_assessment_supersedes_the_latest_one_and_the_history_is_kept(catalog: Catalog, tmp_path: Path) -> None:
    a, b = add_records(catalog, tmp_path, 2)
    first = catalog.assess(a, "in_progress", note="started geolocation")
    elsewhere = catalog.assess(b, "false")
    second = catalog.assess(a, "verified", methods=["geolocation", "geolocation", "source_analysis"], confidence="high")
    third = catalog.assess(a, "disputed", confidence="low", note="a second source says otherwise")
    assert first.supersedes is None and elsewhere.supersedes is None  # chains are per record
    assert second.supersedes == first.id and third.supersedes == second.id
    assert second.methods == (model.VerificationMethod.GEOLOCATION, model.VerificationMethod.SOURCE_ANALYSIS)
    record = catalog.record(a)
    assert record.assessments == (first, second, third)
    assert catalog.record(b).assessments == (elsewhere,)
    events = [e for e in catalog.history(a) if e.action == Action.ASSESSMENT_ADDED]
    assert [e.details["assessment"]["id"] for e in events] == [first.id, second.id, third.id]
    assert [e.details["assessment"]["supersedes"] for e in events] == [None, first.id, second.id]
    assert [r.id for r in catalog.find_records(status="disputed")] == [a]
    assert [r.id for r in catalog.find_records(status="verified")] == []  # only the latest counts
    assert catalog.verify().ok


def test_show_presents_the_current_state_and_log_the_history(desk: Desk, run_cli: Callable[..., CliResult]) -> None:
    path, a, b = desk.catalog.path, desk.a, desk.b

    def ok(*args: str) -> str:
        result = run_cli(*args, "--catalog", path)
        assert result.code == 0 and "Traceback" not in result.err, result.err
        return result.out

    def show() -> list[str]:
        return ok("show", a).splitlines()

    assert "status   unverified (no assessment yet)" in show()
    history_before = desk.catalog.history(a)
    out = ok(
        "claim", a, "--summary", "Two men in uniform shot after surrendering", "--category", "rome-8-2-b-vi",
        "--time", "2022-03-05T10:00Z/2022-03-05T12:00+00:00", "--place", "Riverside depot", "--lat", "48.512",
        "--lon", "37.961", "--radius", "500", "--admin-area", "Eastern district",
        "--perpetrator", "unit named in the post", "--source-report", desk.report_a, "--operator", OPERATOR,
    )  # fmt: skip
    [claim] = desk.catalog.record(a).claims
    assert out == f"claim {claim.id} on record {a}\n"
    assert claim.event_time == model.EventTime(
        start=dt.datetime(2022, 3, 5, 10, tzinfo=UTC), end=dt.datetime(2022, 3, 5, 12, tzinfo=UTC), precision="minute"
    )
    ok("claim", b, "--summary", "Another angle", "--source", "a witness", "--time", "2022-03-05",
       "--operator", OPERATOR)  # fmt: skip
    [other_claim] = desk.catalog.record(b).claims
    assert other_claim.event_time == model.EventTime(start=dt.datetime(2022, 3, 5, tzinfo=UTC), precision="day")
    first = ok("assess", a, "--status", "in_progress", "--operator", OPERATOR)
    [in_progress] = desk.catalog.record(a).assessments
    assert first == f"assessment {in_progress.id} on record {a}: in_progress\n"
    second = ok(
        "assess", a, "--status", "verified", "--method", "geolocation", "--method", "chronolocation",
        "--confidence", "high", "--note", "Matched the north wall", "--operator", OPERATOR,
    )  # fmt: skip
    verified = desk.catalog.record(a).assessments[-1]
    assert second == f"assessment {verified.id} on record {a}: verified (supersedes {in_progress.id})\n"
    assert ok("relate", a, "same_incident_as", b, "--note", "same depot", "--operator", OPERATOR) == (
        f"record {a} same_incident_as {b}\n"
    )
    assert ok("flag", a, "graphic", "--reason", "bodies are visible", "--operator", OPERATOR) == (
        f"record {a} flagged graphic\n"
    )
    ok("note", a, "ask the source for the original file", "--operator", OPERATOR)
    assert ok("tag", a, "shelling", "depot", "--operator", OPERATOR) == f"record {a}: tagged depot, shelling\n"
    assert ok("tag", a, "depot", "--operator", OPERATOR) == f"record {a}: had every tag already\n"

    lines = show()
    text = "\n".join(lines)
    [status] = [line for line in lines if line.startswith("status ")]
    assert status.startswith("status   verified, high confidence (") and "Field Analyst <field@example.org>" in status
    assert "tags     depot, shelling" in lines
    assert any(line.startswith("flag     graphic: bodies are visible (") for line in lines)
    [claim_line] = [line for line in lines if line.startswith("claim ")]
    assert claim_line.startswith(f"claim    {claim.id} (alleged; stated ") and "Field Analyst" in claim_line
    for expected in (
        "  summary  Two men in uniform shot after surrendering",
        "  category rome-8-2-b-vi",
        "  time     2022-03-05T10:00:00Z to 2022-03-05T12:00:00Z (to the minute)",
        "  place    Riverside depot, Eastern district",
        "  position 48.512, 37.961 ± 500 m",
        "  by       unit named in the post",
        f"  source   report {desk.report_a}",
    ):
        assert expected in lines, (expected, text)
    assert any(line.startswith(f"relation same_incident_as {b} (") and line.endswith("): same depot") for line in lines)
    assert any(
        line.startswith("note     ") and line.endswith(": ask the source for the original file") for line in lines
    )
    assessed = [line for line in lines if line.startswith("assessed ")]
    assert len(assessed) == 2  # the history, oldest first
    assert " in_progress by Field Analyst" in assessed[0]
    assert " verified (high confidence) by Field Analyst" in assessed[1]
    assert assessed[1].endswith("; methods: geolocation, chronolocation; Matched the north wall")
    other = ok("show", b).splitlines()
    assert "status   unverified (no assessment yet)" in other
    assert "  time     2022-03-05T00:00:00Z (to the day)" in other and "  source   a witness" in other

    history = desk.catalog.history(a)
    new = history[len(history_before) :]
    assert [e.action for e in new] == [
        Action.CLAIM_ADDED,
        Action.ASSESSMENT_ADDED,
        Action.ASSESSMENT_ADDED,
        Action.RELATION_ADDED,
        Action.FLAG_ADDED,
        Action.NOTE_ADDED,
        Action.TAGS_ADDED,
    ]  # the second `tag` added nothing, and logged nothing
    assert all(e.actor.name == "Field Analyst" and e.actor.email == "field@example.org" for e in new)
    log_lines = ok("log", a).splitlines()
    assert [line.split()[2] for line in log_lines] == [e.action for e in history]
    assert [int(line.split()[0]) for line in log_lines] == [e.seq for e in history]
    assert all("by Field Analyst <field@example.org>" in line for line in log_lines[len(history_before) :])
    logged = json.loads(ok("log", a, "--json"))
    assert logged == [to_document(e) for e in history]
    for document in logged:
        EVENT_SCHEMA.validate(document)
    shown = json.loads(ok("show", a, "--json"))
    RECORD_SCHEMA.validate(shown)
    assert from_document(shown) == desk.catalog.record(a)
    assert desk.catalog.verify().ok


# -- 2. bad input: a clear error, and nothing written -----------------------------------------


Refusal = Callable[[Desk], object]
REFUSALS: list[Any] = [
    # claims
    pytest.param(
        lambda d: d.catalog.claim(d.a, summary="x", category="rome-9-9", source_description="w"),
        InputError,
        "unknown category 'rome-9-9'",
        id="claim-unknown-category",
    ),
    pytest.param(lambda d: d.catalog.claim(d.a, summary="x"), InputError, "must name its source", id="claim-no-source"),
    pytest.param(
        lambda d: d.catalog.claim(d.a, source_description="a witness"),
        InputError,
        "must say something",
        id="claim-saying-nothing",
    ),
    pytest.param(
        lambda d: d.catalog.claim(d.a, source_report_id=d.report_a),
        InputError,
        "must say something",
        id="claim-saying-nothing-with-a-report",
    ),
    pytest.param(
        lambda d: d.catalog.claim(d.a, summary=" \t", source_description="w"),
        InputError,
        "summary must not be blank",
        id="claim-blank-summary",
    ),
    pytest.param(
        lambda d: d.catalog.claim(d.a, summary="x", source_description="  "),
        InputError,
        "source description must not be blank",
        id="claim-blank-source",
    ),
    pytest.param(
        lambda d: d.catalog.claim(d.a, summary="x", alleged_perpetrator=""),
        InputError,
        "alleged perpetrator must not be blank",
        id="claim-blank-perpetrator",
    ),
    pytest.param(
        lambda d: d.catalog.claim(d.a, summary="x", source_report_id=d.report_b),
        InputError,
        "is not on record",
        id="claim-report-of-another-record",
    ),
    pytest.param(
        lambda d: d.catalog.claim(d.a, summary="x", source_report_id=d.b),
        InputError,
        "is not on record",
        id="claim-source-is-a-record-not-a-report",
    ),
    pytest.param(
        lambda d: d.catalog.claim(d.a, summary="x", source_report_id="not-a-report"),
        InputError,
        "is not on record",
        id="claim-source-is-no-id",
    ),
    pytest.param(
        lambda d: d.catalog.claim(d.a, event_time=dt.datetime(2022, 3, 5, tzinfo=UTC), source_description="w"),  # type: ignore[arg-type]
        InputError,
        "event_time must be an EventTime",
        id="claim-time-not-an-event-time",
    ),
    pytest.param(
        lambda d: d.catalog.claim(MISSING, summary="x", source_description="w"),
        NotFoundError,
        "no record with id",
        id="claim-unknown-record",
    ),
    # assessments
    pytest.param(lambda d: d.catalog.assess(d.a, "confirmed"), InputError, "unknown status", id="assess-status"),
    pytest.param(
        lambda d: d.catalog.assess(d.a, "verified", methods=["geolocation", "vibes"]),
        InputError,
        "unknown method 'vibes'",
        id="assess-method",
    ),
    pytest.param(
        lambda d: d.catalog.assess(d.a, "verified", confidence="certain"),
        InputError,
        "unknown confidence",
        id="assess-confidence",
    ),
    pytest.param(
        lambda d: d.catalog.assess(d.a, "verified", note="   "), InputError, "note must not be blank", id="assess-note"
    ),
    pytest.param(
        lambda d: d.catalog.assess(MISSING, "verified"), NotFoundError, "no record", id="assess-unknown-record"
    ),
    # relations
    pytest.param(
        lambda d: d.catalog.relate(d.a, "similar_to", d.b), InputError, "unknown relation", id="relate-unknown-kind"
    ),
    pytest.param(
        lambda d: d.catalog.relate(d.a, "duplicate_of", MISSING), NotFoundError, MISSING, id="relate-to-missing-record"
    ),
    pytest.param(
        lambda d: d.catalog.relate(d.a, "duplicate_of", "nonsense"), NotFoundError, "nonsense", id="relate-to-no-id"
    ),
    pytest.param(
        lambda d: d.catalog.relate(d.a, "duplicate_of", d.a), InputError, "cannot relate to itself", id="relate-to-self"
    ),
    pytest.param(
        lambda d: d.catalog.relate(d.a, "contradicts", d.b, note=""),
        InputError,
        "note must not be blank",
        id="relate-blank-note",
    ),
    pytest.param(
        lambda d: d.catalog.relate(MISSING, "contradicts", d.b), NotFoundError, "no record", id="relate-unknown-record"
    ),
    # flags
    pytest.param(lambda d: d.catalog.flag(d.a, "violent", "why"), InputError, "unknown flag", id="flag-unknown-kind"),
    pytest.param(
        lambda d: d.catalog.flag(d.a, "graphic", " \n "), InputError, "needs a reason", id="flag-blank-reason"
    ),
    pytest.param(
        lambda d: d.catalog.flag(MISSING, "graphic", "why"), NotFoundError, "no record", id="flag-unknown-record"
    ),
    # notes
    pytest.param(lambda d: d.catalog.add_note(d.a, ""), InputError, "note must not be blank", id="note-empty"),
    pytest.param(lambda d: d.catalog.add_note(d.a, "\t \n"), InputError, "note must not be blank", id="note-blank"),
    pytest.param(lambda d: d.catalog.add_note(MISSING, "x"), NotFoundError, "no record", id="note-unknown-record"),
    # tags
    pytest.param(lambda d: d.catalog.tag(d.a, []), InputError, "no tag given", id="tag-none"),
    pytest.param(lambda d: d.catalog.tag(d.a, ["ok", "  "]), InputError, "tag must not be blank", id="tag-blank"),
    pytest.param(lambda d: d.catalog.tag(d.a, ["a\x07b"]), InputError, "control character", id="tag-control-character"),
    pytest.param(lambda d: d.catalog.tag(MISSING, ["x"]), NotFoundError, "no record", id="tag-unknown-record"),
    # categories
    pytest.param(
        lambda d: d.catalog.define_category("rome-8-2-b-vi", "Something else"),
        InputError,
        "defined already",
        id="category-builtin-code",
    ),
    pytest.param(
        lambda d: d.catalog.define_category("Rome-8", "Upper case"), InputError, "category code", id="category-upper"
    ),
    pytest.param(lambda d: d.catalog.define_category("", "Empty"), InputError, "category code", id="category-empty"),
    pytest.param(
        lambda d: d.catalog.define_category("-leading", "Dash"), InputError, "category code", id="category-leading-dash"
    ),
    pytest.param(
        lambda d: d.catalog.define_category("a" * 65, "Too long"), InputError, "category code", id="category-too-long"
    ),
    pytest.param(
        lambda d: d.catalog.define_category("ua 438", "Space"), InputError, "category code", id="category-space"
    ),
    pytest.param(lambda d: d.catalog.define_category("ua-438", "  "), InputError, "needs a label", id="category-label"),
]


@pytest.mark.parametrize(("call", "error", "match"), REFUSALS)
def test_bad_input_is_refused_clearly_and_nothing_is_written(
    desk: Desk, call: Refusal, error: type[Exception], match: str
) -> None:
    assert_refused(desk.catalog, lambda: call(desk), error, match)


def test_an_own_category_cannot_be_defined_twice(catalog: Catalog) -> None:
    catalog.define_category("ua-438", "Violation of the laws and customs of war")
    assert_refused(catalog, lambda: catalog.define_category("ua-438", "Another label"), InputError, "defined already")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: model.GeoPosition(latitude=91, longitude=0), id="latitude-above-90"),
        pytest.param(lambda: model.GeoPosition(latitude=-90.000001, longitude=0), id="latitude-below-minus-90"),
        pytest.param(lambda: model.GeoPosition(latitude=0, longitude=181), id="longitude-above-180"),
        pytest.param(lambda: model.GeoPosition(latitude=0, longitude=-180.5), id="longitude-below-minus-180"),
        pytest.param(lambda: model.GeoPosition(latitude=math.nan, longitude=0), id="latitude-nan"),
        pytest.param(lambda: model.GeoPosition(latitude=0, longitude=math.inf), id="longitude-infinite"),
        pytest.param(lambda: model.Place(name="x", uncertainty_m=-1), id="negative-uncertainty"),
        pytest.param(lambda: model.Place(name="x", uncertainty_m=math.nan), id="nan-uncertainty"),
        pytest.param(
            lambda: model.Place(position=model.GeoPosition(latitude=91, longitude=181)), id="place-out-of-range"
        ),
        pytest.param(
            lambda: model.EventTime(start=dt.datetime(2022, 3, 3, tzinfo=UTC), end=dt.datetime(2022, 3, 1, tzinfo=UTC)),
            id="end-before-start",
        ),
        pytest.param(
            lambda: model.EventTime(
                start=dt.datetime(2022, 3, 5, 10, tzinfo=UTC),
                end=dt.datetime(2022, 3, 5, 11, tzinfo=dt.timezone(dt.timedelta(hours=2))),  # 09:00 UTC
            ),
            id="end-before-start-in-another-zone",
        ),
        pytest.param(lambda: model.EventTime(start=dt.datetime(2022, 3, 5)), id="time-without-zone"),
        pytest.param(lambda: model.EventTime(start=dt.datetime(2022, 3, 5, tzinfo=UTC), precision="week"), id="prec"),
    ],
)
def test_the_model_refuses_impossible_places_and_times(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


def test_the_model_accepts_the_edges_of_the_globe_and_an_instant_as_an_interval() -> None:
    for lat, lon in ((90, 180), (-90, -180), (0.0, -0.0)):
        assert model.GeoPosition(latitude=lat, longitude=lon).latitude == lat
    start = dt.datetime(2022, 3, 5, 10, tzinfo=UTC)
    assert model.EventTime(start=start, end=start).end == start
    assert model.Place(name="x", uncertainty_m=0).uncertainty_m == 0


CLI_REFUSALS: list[Any] = [
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--lat", "91", "--lon", "0"], "latitude", id="lat"
    ),
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--lat", "-90.5", "--lon", "0"], "latitude", id="lat-south"
    ),
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--lat", "0", "--lon", "181"], "longitude", id="lon"
    ),
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--lat", "nan", "--lon", "0"], "latitude", id="nan"
    ),
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--lat", "10"], "give both --lat and --lon", id="lat-only"
    ),
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--place", "p", "--radius", "-5"],
        "uncertainty_m",
        id="negative-radius",
    ),
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--time", "2022-03-03/2022-03-01"],
        "ends before it starts",
        id="end-before-start",
    ),
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--time", "2022-03-05T12:00Z/2022-03-05T13:00+02:00"],
        "ends before it starts",
        id="end-before-start-in-another-zone",
    ),
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--time", "2022-03-05T10:00"],
        "has no time zone",
        id="time-without-zone",
    ),
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--time", "yesterday"], "is not a date", id="time-words"
    ),
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--time", "2022-03-01/2022-03-02/2022-03-03"],
        "is not START or START/END",
        id="time-three-parts",
    ),
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--precision", "day"], "--precision needs --time", id="prec"
    ),
    pytest.param(["claim", "{a}", "--summary", "x"], "must name its source", id="claim-no-source"),
    pytest.param(["claim", "{a}", "--source", "a witness"], "must say something", id="claim-saying-nothing"),
    pytest.param(["claim", "{a}", "--summary", "x", "--source-report", "{rb}"], "is not on record", id="other-report"),
    pytest.param(
        ["claim", "{a}", "--summary", "x", "--source", "w", "--category", "rome-9-9"], "unknown category", id="category"
    ),
    pytest.param(["claim", "{a}", "--summary", " ", "--source", "w"], "summary must not be blank", id="blank-summary"),
    pytest.param(["claim", MISSING, "--summary", "x", "--source", "w"], "no record with id", id="claim-unknown-record"),
    pytest.param(["assess", MISSING, "--status", "verified"], "no record with id", id="assess-unknown-record"),
    pytest.param(["assess", "{a}", "--status", "verified", "--note", " "], "note must not be blank", id="assess-note"),
    pytest.param(["relate", "{a}", "duplicate_of", "{a}"], "cannot relate to itself", id="relate-self"),
    pytest.param(["relate", "{a}", "duplicate_of", MISSING], f"no record with id {MISSING}", id="relate-missing"),
    pytest.param(["relate", MISSING, "duplicate_of", "{a}"], f"no record with id {MISSING}", id="relate-from-missing"),
    pytest.param(["relate", "{a}", "contradicts", "{b}", "--note", ""], "note must not be blank", id="relate-note"),
    pytest.param(["flag", "{a}", "graphic", "--reason", "  "], "needs a reason", id="flag-blank-reason"),
    pytest.param(["flag", MISSING, "graphic", "--reason", "x"], "no record with id", id="flag-unknown-record"),
    pytest.param(["note", "{a}", "   "], "note must not be blank", id="note-blank"),
    pytest.param(["note", "not-a-record", "x"], "no record with id not-a-record", id="note-unknown-record"),
    pytest.param(["tag", "{a}", " "], "tag must not be blank", id="tag-blank"),
    pytest.param(["tag", MISSING, "x"], "no record with id", id="tag-unknown-record"),
    pytest.param(["categories", "--define", "rome-8-2-b-vi", "--label", "x"], "defined already", id="builtin-code"),
    pytest.param(["categories", "--define", "Bad Code", "--label", "x"], "category code", id="bad-code"),
    pytest.param(["categories", "--define", "ok-code", "--label", " "], "needs a label", id="blank-label"),
    pytest.param(["show", MISSING], "no record with id", id="show-unknown-record"),
    pytest.param(["show", "nonsense"], "is not a record id", id="show-no-id"),
    pytest.param(["log", MISSING], "no record with id", id="log-unknown-record"),
    pytest.param(["list", "--bbox", "1,2"], "is not WEST,SOUTH,EAST,NORTH", id="bbox-two-numbers"),
    pytest.param(["list", "--bbox", "1,2,3,4,5"], "is not WEST,SOUTH,EAST,NORTH", id="bbox-five-numbers"),
    pytest.param(["list", "--bbox", "a,b,c,d"], "is not WEST,SOUTH,EAST,NORTH", id="bbox-words"),
    pytest.param(["list", "--bbox", "0,10,5,5"], "south not above north", id="bbox-south-above-north"),
    pytest.param(["list", "--bbox", "0,0,181,5"], "longitudes from -180 to 180", id="bbox-longitude"),
    pytest.param(["list", "--since", "2022-03-02", "--until", "2022-03-01"], "until is before since", id="until-first"),
    pytest.param(["list", "--since", "March"], "is not a date", id="since-words"),
    pytest.param(["list", "--category", "rome-9-9"], "unknown category", id="list-unknown-category"),
    pytest.param(["list", "--until", "2022-03-01T10:00"], "has no time zone", id="until-without-zone"),
]


@pytest.mark.parametrize(("args", "fragment"), CLI_REFUSALS)
def test_cli_refuses_bad_input_with_one_line_and_writes_nothing(
    desk: Desk, run_cli: Callable[..., CliResult], args: list[str], fragment: str
) -> None:
    before = state(desk.catalog)
    names = {"{a}": desk.a, "{b}": desk.b, "{ra}": desk.report_a, "{rb}": desk.report_b}
    result = run_cli(*[names.get(arg, arg) for arg in args], "--catalog", desk.catalog.path)
    assert_cli_error(result, fragment)
    assert state(desk.catalog) == before


@pytest.mark.parametrize(
    ("args", "value"),
    [
        (["assess", "{a}", "--status", "confirmed"], "confirmed"),
        (["assess", "{a}", "--status", "verified", "--method", "vibes"], "vibes"),
        (["assess", "{a}", "--status", "verified", "--confidence", "certain"], "certain"),
        (["relate", "{a}", "similar_to", "{b}"], "similar_to"),
        (["flag", "{a}", "violent", "--reason", "why"], "violent"),
        (["claim", "{a}", "--summary", "x", "--source", "w", "--time", "2022-03-05", "--precision", "week"], "week"),
        (["claim", "{a}", "--summary", "x", "--source", "w", "--lat", "north", "--lon", "0"], "north"),
        (["list", "--status", "confirmed"], "confirmed"),
        (["list", "--flag", "violent"], "violent"),
        (["categories", "--define", "ua-438"], "--define needs --label"),
    ],
)
def test_cli_refuses_values_outside_its_choices_as_a_usage_error(
    desk: Desk, run_cli: Callable[..., CliResult], args: list[str], value: str
) -> None:
    before = state(desk.catalog)
    names = {"{a}": desk.a, "{b}": desk.b}
    result = run_cli(*[names.get(arg, arg) for arg in args], "--catalog", desk.catalog.path)
    assert result.code == 2 and value in result.err and "Traceback" not in result.err, result.err
    assert state(desk.catalog) == before


# -- 3. properties: replay, JSON, filters -----------------------------------------------------

OWN_CODE = "ua-438"
TAG_POOL = ("school", "shelling", "night")
places = st.builds(
    model.Place,
    name=s.optional_nonblank,
    position=st.none() | s.positions,
    uncertainty_m=st.none() | st.floats(min_value=0, max_value=2.1e7),
    admin_area=s.optional_nonblank,
).filter(
    lambda p: (
        (p.name is not None or p.position is not None or p.admin_area is not None)
        and (p.uncertainty_m is None or p.position is not None)
    )  # a radius is around a position
)
tag_texts = st.sampled_from(TAG_POOL) | st.text(min_size=1, max_size=12).filter(
    lambda t: t == t.strip() and not model.has_control_characters(t)
)
#: One annotation: (kind, index of the record, the operator doing it, its arguments).
Op = tuple[str, int, Agent, dict[str, Any]]


def operations(n: int) -> st.SearchStrategy[Op]:
    index = st.integers(min_value=0, max_value=n - 1)
    claim = st.fixed_dictionaries(
        {
            "summary": s.optional_nonblank,
            "category": st.sampled_from([None, "rome-8-2-b-vi", "rome-7-1-d", OWN_CODE]),
            "event_time": st.none() | s.event_times(),
            "place": st.none() | places,
            "alleged_perpetrator": s.optional_nonblank,
            "source_description": s.nonblank,
        }
    )
    assess = st.fixed_dictionaries(
        {
            "status": st.sampled_from([v.value for v in model.VerificationStatus]),
            "methods": st.lists(st.sampled_from([v.value for v in model.VerificationMethod]), max_size=4),
            "confidence": st.none() | st.sampled_from([v.value for v in model.Confidence]),
            "note": s.optional_nonblank,
        }
    )
    relate = st.fixed_dictionaries(
        {
            "kind": st.sampled_from([v.value for v in model.RelationKind]),
            "offset": st.integers(min_value=1, max_value=max(1, n - 1)),
            "note": s.optional_nonblank,
        }
    )
    flag = st.fixed_dictionaries(
        {"kind": st.sampled_from([v.value for v in model.SensitivityKind]), "reason": s.nonblank}
    )
    note = st.fixed_dictionaries({"text": s.nonblank})
    tag = st.fixed_dictionaries({"tags": st.lists(tag_texts, min_size=1, max_size=3)})
    define = st.fixed_dictionaries(
        {
            "code": st.sampled_from([OWN_CODE, "rome-8-2-b-vi"]) | st.from_regex(r"\A[a-z0-9][a-z0-9.-]{0,8}\Z"),
            "label": s.nonblank,
        }
    )
    kinds = [("claim", claim), ("assess", assess), ("flag", flag), ("note", note), ("tag", tag), ("define", define)]
    if n > 1:
        kinds.append(("relate", relate))
    return st.one_of([st.tuples(st.just(name), index, s.agents, args) for name, args in kinds])


@attrs.define
class Expected:
    """What a record should hold, built from the operations alone."""

    claims: list[model.Claim] = attrs.field(factory=list)
    assessments: list[model.Assessment] = attrs.field(factory=list)
    relations: list[model.Relation] = attrs.field(factory=list)
    flags: list[model.SensitivityFlag] = attrs.field(factory=list)
    notes: list[model.Note] = attrs.field(factory=list)
    tags: set[str] = attrs.field(factory=set)


def perform(catalog: Catalog, ids: list[str], expected: dict[str, Expected], own: list[Category], op: Op) -> None:
    """Do one operation and check its outcome and its custody event against *expected*."""
    kind, index, agent, args = op
    catalog.operator = agent
    record_id = ids[index]
    want = expected[record_id]
    before = catalog.history()
    known = BUILTIN_CODES | {c.code for c in own}
    part: Any
    if kind == "claim":
        says = any(args[k] is not None for k in ("summary", "category", "event_time", "place", "alleged_perpetrator"))
        if not says or (args["category"] is not None and args["category"] not in known):
            assert_refused(catalog, lambda: catalog.claim(record_id, **args), InputError, "must say|unknown category")
            return
        part = catalog.claim(record_id, **args)
        assert all(getattr(part, k) == v for k, v in args.items())
        want.claims.append(part)
    elif kind == "assess":
        part = catalog.assess(record_id, **args)
        assert part.status.value == args["status"] and part.confidence == (
            None if args["confidence"] is None else model.Confidence(args["confidence"])
        )
        assert [m.value for m in part.methods] == list(dict.fromkeys(args["methods"]))
        assert part.supersedes == (want.assessments[-1].id if want.assessments else None)
        want.assessments.append(part)
    elif kind == "relate":
        target = ids[(index + args["offset"]) % len(ids)]
        part = catalog.relate(record_id, args["kind"], target, note=args["note"])
        assert (part.kind.value, part.target_id, part.note) == (args["kind"], target, args["note"])
        want.relations.append(part)
    elif kind == "flag":
        part = catalog.flag(record_id, args["kind"], args["reason"])
        assert (part.kind.value, part.reason) == (args["kind"], args["reason"])
        want.flags.append(part)
    elif kind == "note":
        part = catalog.add_note(record_id, args["text"])
        assert part.text == args["text"]
        want.notes.append(part)
    elif kind == "tag":
        new = sorted(set(args["tags"]) - want.tags)
        assert catalog.tag(record_id, args["tags"]) == tuple(new)
        want.tags.update(new)
        events = catalog.history()[len(before) :]
        if not new:
            assert events == []
            return
        [event] = events
        assert (event.action, event.subject, event.actor, unsalted(event.details)) == (
            Action.TAGS_ADDED,
            record_id,
            agent,
            {"tags": new},
        )
        return
    else:  # define a category
        if args["code"] in known:
            assert_refused(catalog, lambda: catalog.define_category(**args), InputError, "defined already")
            return
        category = catalog.define_category(**args)
        assert category == Category(code=args["code"], label=args["label"])
        own.append(category)
        [event] = catalog.history()[len(before) :]
        assert (event.action, event.subject, event.actor) == (Action.CATEGORY_DEFINED, "catalog", agent)
        assert unsalted(event.details) == {
            "category": {"code": args["code"], "label": args["label"], "reference": None}
        }
        return
    [event] = catalog.history()[len(before) :]
    member = event.action.split(".")[0]
    assert (event.subject, event.actor, unsalted(event.details)) == (record_id, agent, {member: unstructure(part)})
    who, when = ATTRIBUTION[member]
    assert (getattr(part, who), getattr(part, when)) == (agent, event.at)


def check_state(catalog: Catalog, ids: list[str], expected: dict[str, Expected], own: list[Category]) -> None:
    """The catalog holds what the operations made; the log replays to it; it round-trips JSON."""
    replayed = replay(catalog.history())
    assert replayed.problems == ()
    assert sorted(replayed.records) == sorted(ids) == sorted(catalog.record_ids())
    for record_id in ids:
        record = catalog.record(record_id)
        want = expected[record_id]
        assert record.claims == tuple(want.claims)
        assert record.assessments == tuple(want.assessments)
        assert record.relations == tuple(want.relations)
        assert record.flags == tuple(want.flags)
        assert record.notes == tuple(want.notes)
        assert record.tags == tuple(sorted(want.tags))
        assert replayed.records[record_id] == record
        assert json_round_trip(record) == record
    assert catalog.categories() == [*BUILTIN_CATEGORIES, *own]
    report = catalog.verify()
    assert report.ok, report.findings


@pytest.mark.slow
@settings(max_examples=25)
@given(
    st.integers(min_value=1, max_value=3).flatmap(lambda n: st.tuples(st.just(n), st.lists(operations(n), max_size=12)))
)
def test_any_sequence_of_judgements_replays_from_the_log_to_the_current_state(case: tuple[int, list[Op]]) -> None:
    n, ops = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalog"
        with Catalog.init(path, operator=ANALYST, clock=FixedClock()) as catalog:
            ids = add_records(catalog, Path(folder) / "files", n, tags=["intake"])
            expected = {record_id: Expected(tags={"intake"}) for record_id in ids}
            own: list[Category] = []
            for op in ops:
                perform(catalog, ids, expected, own, op)
            check_state(catalog, ids, expected, own)
            records = list(catalog.records())
        with Catalog.open(path) as reopened:
            assert list(reopened.records()) == records
            check_state(reopened, ids, expected, own)


claim_parts = st.fixed_dictionaries(
    {
        "summary": s.optional_nonblank,
        "category": st.sampled_from(sorted(BUILTIN_CODES)),
        "event_time": s.event_times(),
        "place": places,
        "alleged_perpetrator": s.optional_nonblank,
    }
)


@pytest.mark.slow
@settings(max_examples=20)
@given(
    claim_parts,
    st.lists(st.sampled_from([v.value for v in model.VerificationStatus]), min_size=1, max_size=3),
    st.sampled_from([v.value for v in model.RelationKind]),
    st.sampled_from([v.value for v in model.SensitivityKind]),
    s.nonblank,
    st.lists(tag_texts, min_size=1, max_size=3),
    # An operator may hold what the model allows, but no NUL: a catalog refuses one (PostgreSQL
    # cannot store it).
    s.agents.filter(lambda a: all("\x00" not in (v or "") for v in attrs.astuple(a) if isinstance(v, str))),
)
def test_a_record_with_every_kind_of_part_round_trips_through_json_and_validates(
    claim: dict[str, Any],
    statuses: list[str],
    relation: str,
    flag: str,
    text: str,
    tags: list[str],
    agent: Agent,
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        with Catalog.init(Path(folder) / "catalog", operator=agent, clock=FixedClock()) as catalog:
            desk = make_desk(catalog, Path(folder) / "inputs")
            catalog.claim(desk.a, source_report_id=desk.report_a, **claim)
            catalog.claim(desk.a, summary=text, source_description=text)
            for status in statuses:
                catalog.assess(desk.a, status, methods=["technical_analysis"], confidence="medium", note=text)
            catalog.relate(desk.a, relation, desk.b, note=text)
            catalog.flag(desk.a, flag, text)
            catalog.add_note(desk.a, text)
            catalog.tag(desk.a, tags)
            record = catalog.record(desk.a)
            assert all(getattr(record, f.name) for f in attrs.fields(model.EvidenceRecord))  # every part present
            assert json_round_trip(record) == record
            for event in catalog.history():
                EVENT_SCHEMA.validate(json.loads(json.dumps(to_document(event))))
            assert replay(catalog.history()).records[desk.a] == record


# Values on a small grid, so that edges, poles, the antimeridian and day boundaries come up.
LATITUDES = (-90.0, -45.0, 0.0, 45.0, 90.0)
LONGITUDES = (-180.0, -179.5, -10.0, 0.0, 10.0, 179.5, 180.0)
INSTANTS = (
    dt.datetime(2022, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(2022, 3, 1, tzinfo=UTC),
    dt.datetime(2022, 3, 1, 12, tzinfo=UTC),
    dt.datetime(2022, 3, 2, 6, tzinfo=dt.timezone(dt.timedelta(hours=8))),  # 2022-03-01T22:00Z
    dt.datetime(2022, 3, 1, 23, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(2022, 3, 1, 23, 30, tzinfo=UTC),
    dt.datetime(2022, 3, 2, tzinfo=UTC),
    dt.datetime(2022, 3, 3, 10, tzinfo=UTC),
)
DAYS = (dt.date(2022, 2, 28), dt.date(2022, 3, 1), dt.date(2022, 3, 2), dt.date(2022, 3, 3))
CATEGORIES = ("rome-8-2-b-vi", "rome-8-2-b-i")


@st.composite
def alleged_times(draw: st.DrawFn) -> model.EventTime:
    start = draw(st.sampled_from(INSTANTS))
    later = st.sampled_from([t for t in INSTANTS if t >= start])
    end = draw(st.one_of(st.none(), later, later))
    return model.EventTime(start=start, end=end)


record_parts = st.fixed_dictionaries(
    {
        "statuses": st.lists(st.sampled_from([v.value for v in model.VerificationStatus]), max_size=2),
        "claims": st.lists(
            st.fixed_dictionaries(
                {
                    "category": st.none() | st.sampled_from(CATEGORIES),
                    "place": st.none()
                    | st.builds(model.Place, name=st.just("named only"))
                    | st.builds(
                        lambda lat, lon: model.Place(position=model.GeoPosition(latitude=lat, longitude=lon)),
                        st.sampled_from(LATITUDES),
                        st.sampled_from(LONGITUDES),
                    ),
                    "event_time": st.one_of(st.none(), alleged_times(), alleged_times()),
                }
            ),
            max_size=3,
        ),
        "tags": st.lists(st.sampled_from(("a", "b", "c")), max_size=3),
        "flags": st.lists(st.sampled_from([v.value for v in model.SensitivityKind]), max_size=2),
    }
)


def queries(
    latitudes: Sequence[float], longitudes: Sequence[float], instants: Sequence[dt.datetime]
) -> st.SearchStrategy[dict[str, Any]]:
    """Criteria for ``find_records``; box edges and time bounds often fall on what claims hold."""
    lons = st.sampled_from((*LONGITUDES, 170.0, -170.0)) | st.sampled_from(longitudes or LONGITUDES)
    lats = st.sampled_from(LATITUDES) | st.sampled_from(latitudes or LATITUDES)
    times = st.sampled_from(INSTANTS) | st.sampled_from(instants or INSTANTS)
    days = st.sampled_from(DAYS) | times.map(lambda t: t.astimezone(UTC).date())
    bounds = (
        st.none()
        | times
        | times.map(dt.datetime.isoformat)
        | days
        | days.map(dt.date.isoformat)
        | times.map(lambda t: (t + dt.timedelta(microseconds=1)).isoformat())
    )
    return st.fixed_dictionaries(
        {
            "status": st.none() | st.sampled_from([v.value for v in model.VerificationStatus]),
            "category": st.none() | st.sampled_from((*CATEGORIES, "rome-7-1-d", "no-such-code")),
            "tags": st.lists(st.sampled_from(("a", "b", "c")), max_size=2),
            "flags": st.lists(st.sampled_from([v.value for v in model.SensitivityKind]), max_size=2),
            "bbox": st.none()
            | st.builds(
                lambda west, south_north, east: (west, south_north[0], east, south_north[1]),
                lons,
                st.tuples(lats, lats).map(sorted),
                lons,
            ),
            "since": bounds,
            "until": bounds,
        }
    )


Bound = dt.datetime | dt.date | str | None


def _day(value: Bound) -> dt.date | None:
    """The day a bound names when it is a date (object or ``YYYY-MM-DD``), else None."""
    if isinstance(value, str) and len(value) == 10:
        return dt.date.fromisoformat(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    return None


def _instant(value: dt.datetime | str) -> dt.datetime:
    return (dt.datetime.fromisoformat(value) if isinstance(value, str) else value).astimezone(UTC)


def brute_force(
    records: list[model.EvidenceRecord],
    *,
    status: str | None,
    category: str | None,
    tags: list[str],
    flags: list[str],
    bbox: tuple[float, float, float, float] | None,
    since: Bound,
    until: Bound,
) -> list[str] | str:
    """The ids of the records that match, written from the filters' documented semantics; or
    why the criteria must be refused (an unknown category, ``until`` before ``since``)."""
    # A time range as [low, high] with high inclusive, or exclusive for a whole day.
    low: dt.datetime | None = None
    high: dt.datetime | None = None
    high_exclusive = False
    if since is not None:
        day = _day(since)
        low = dt.datetime.combine(day, dt.time(), tzinfo=UTC) if day else _instant(since)  # type: ignore[arg-type]
    if until is not None:
        day = _day(until)
        if day is not None:
            high, high_exclusive = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=UTC), True
        else:
            high = _instant(until)  # type: ignore[arg-type]
    if category is not None and category not in BUILTIN_CODES:
        return "unknown category"
    if low is not None and high is not None and (high <= low if high_exclusive else high < low):
        return "until is before since"

    def placed_inside(place: model.Place | None) -> bool:
        if bbox is None or place is None or place.position is None:
            return False
        west, south, east, north = bbox
        lat, lon = place.position.latitude, place.position.longitude
        if not south <= lat <= north:
            return False
        if west <= east:
            return west <= lon <= east
        return lon >= west or lon <= east  # across the antimeridian

    def alleged_within(time: model.EventTime | None) -> bool:
        if time is None:
            return False
        first, last = time.start, time.end if time.end is not None else time.start
        after = low is None or last >= low
        before = high is None or (first < high if high_exclusive else first <= high)
        return after and before

    found = []
    for record in records:
        current = record.assessments[-1].status.value if record.assessments else "unverified"
        if status is not None and current != status:
            continue
        if category is not None and category not in [c.category for c in record.claims]:
            continue
        if any(t not in record.tags for t in tags):
            continue
        if any(f not in [flagged.kind.value for flagged in record.flags] for f in flags):
            continue
        if bbox is not None and not any(placed_inside(c.place) for c in record.claims):
            continue
        if (since is not None or until is not None) and not any(alleged_within(c.event_time) for c in record.claims):
            continue
        found.append(record.id)
    return found


@pytest.mark.slow
@settings(max_examples=25)
@given(st.lists(record_parts, min_size=1, max_size=5), st.data())
def test_find_records_agrees_with_a_brute_force_filter(parts: list[dict[str, Any]], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as folder:
        with Catalog.init(Path(folder) / "catalog", operator=ANALYST, clock=FixedClock()) as catalog:
            ids = add_records(catalog, Path(folder) / "files", len(parts))
            for record_id, made in zip(ids, parts, strict=True):
                for status in made["statuses"]:
                    catalog.assess(record_id, status)
                for claim in made["claims"]:
                    catalog.claim(record_id, summary="alleged", source_description="a witness", **claim)
                if made["tags"]:
                    catalog.tag(record_id, made["tags"])
                for kind in made["flags"]:
                    catalog.flag(record_id, kind, "reason")
            records = list(catalog.records())
            assert [r.id for r in records] == ids
            positions = [c.place.position for r in records for c in r.claims if c.place and c.place.position]
            times = [c.event_time for r in records for c in r.claims if c.event_time]
            asked = queries(
                sorted({p.latitude for p in positions}),
                sorted({p.longitude for p in positions}),
                sorted({t.start for t in times} | {t.end for t in times if t.end}),
            )
            for drawn in data.draw(st.lists(asked, min_size=1, max_size=20)):
                # A few criteria at a time, so that queries find something more often than not.
                kept = data.draw(st.sets(st.sampled_from(sorted(drawn)), min_size=1, max_size=2))
                query = {k: v if k in kept else [] if k in ("tags", "flags") else None for k, v in drawn.items()}
                expected = brute_force(records, **query)
                if isinstance(expected, str):  # refused: nothing is found by a filter that cannot be met
                    with pytest.raises(InputError, match=expected):
                        catalog.find_records(**query)
                    continue
                found = catalog.find_records(**query)
                assert [r.id for r in found] == expected, query
                assert found == [r for r in records if r.id in expected]


# -- 4. the vocabulary --------------------------------------------------------------------------


def test_the_builtin_vocabulary_holds_the_codes_investigators_use(catalog: Catalog) -> None:
    found = catalog.categories()
    assert found == list(BUILTIN_CATEGORIES)
    by_code = {c.code: c for c in found}
    assert len(by_code) == len(found)  # each code once
    for code in ("rome-8-2-a-i", "rome-8-2-b-vi", "rome-8-2-b-i", "rome-8-2-b-ii"):
        assert code in by_code
    assert "killing" in by_code["rome-8-2-a-i"].label.lower()
    assert "surrendered" in by_code["rome-8-2-b-vi"].label
    assert "civilians" in by_code["rome-8-2-b-i"].label and "civilian objects" in by_code["rome-8-2-b-ii"].label
    torture = {c.code for c in found if "torture" in c.label.lower()}
    assert {"rome-8-2-a-ii", "rome-7-1-f"} <= torture
    displacement = {c.code for c in found if "deportation" in c.label.lower() or "transfer" in c.label.lower()}
    assert {"rome-7-1-d", "rome-8-2-b-viii", "rome-8-2-a-vii"} <= displacement
    for category in found:
        assert CODE.fullmatch(category.code) and category.label.strip()
        assert category.reference is not None and category.reference.startswith("Rome Statute art. ")
        article = category.code.removeprefix("rome-").split("-")[0]
        assert f"art. {article}(" in category.reference  # the code names the provision


def test_a_defined_category_is_logged_survives_reopening_and_can_then_be_claimed(
    tmp_path: Path, operator: Agent
) -> None:
    path = tmp_path / "catalog"
    with Catalog.init(path, operator=operator, clock=FixedClock()) as catalog:
        [record_id] = add_records(catalog, tmp_path / "files", 1)
        assert_refused(
            catalog,
            lambda: catalog.claim(record_id, category=OWN_CODE, source_description="prosecutor"),
            InputError,
            "unknown category",
        )
        before = catalog.history()
        made = catalog.define_category(
            OWN_CODE, "Violation of the laws and customs of war", "Criminal Code of Ukraine art. 438"
        )
        [event] = catalog.history()[len(before) :]
        assert (event.action, event.subject, event.actor) == ("category.defined", "catalog", operator)
        assert unsalted(event.details) == {
            "category": {
                "code": OWN_CODE,
                "label": "Violation of the laws and customs of war",
                "reference": "Criminal Code of Ukraine art. 438",
            }
        }
        second = catalog.define_category("local.1", "A second own category")
    with Catalog.open(path, operator=ANALYST) as reopened:
        assert reopened.categories() == [*BUILTIN_CATEGORIES, made, second]
        claim = reopened.claim(record_id, category=OWN_CODE, source_description="prosecutor")
        assert claim.category == OWN_CODE and reopened.record(record_id).claims == (claim,)
        assert [r.id for r in reopened.find_records(category=OWN_CODE)] == [record_id]
        assert_refused(reopened, lambda: reopened.define_category(OWN_CODE, "Another"), InputError, "defined already")
        assert replay(reopened.history()).records[record_id] == reopened.record(record_id)
        assert reopened.verify().ok


def test_cli_categories_lists_the_vocabulary_and_defines_new_ones(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    [record_id] = add_records(catalog, tmp_path / "files", 1)
    listed = run_cli("categories", "--catalog", catalog.path)
    assert listed.code == 0
    assert [line.split()[0] for line in listed.out.splitlines()] == [c.code for c in BUILTIN_CATEGORIES]
    assert "rome-8-2-b-vi    Killing or wounding a combatant who has surrendered  (Rome Statute art. 8(2)(b)(vi))" in (
        listed.out.splitlines()
    )
    defined = run_cli(
        "categories", "--catalog", catalog.path, "--define", OWN_CODE,
        "--label", "Violation of the laws and customs of war", "--reference", "Criminal Code of Ukraine art. 438",
        "--operator", OPERATOR,
    )  # fmt: skip
    assert defined.code == 0, defined.err
    lines = defined.out.splitlines()
    assert len(lines) == len(BUILTIN_CATEGORIES) + 1
    assert lines[-1] == f"{OWN_CODE:<16} Violation of the laws and customs of war  (Criminal Code of Ukraine art. 438)"
    [event] = [e for e in catalog.history() if e.action == Action.CATEGORY_DEFINED]
    assert event.actor.name == "Field Analyst" and event.details["category"]["code"] == OWN_CODE
    as_json = run_cli("categories", "--catalog", catalog.path, "--json")
    assert json.loads(as_json.out)[-1] == {
        "code": OWN_CODE,
        "label": "Violation of the laws and customs of war",
        "reference": "Criminal Code of Ukraine art. 438",
    }
    log = run_cli("log", "--catalog", catalog.path)
    assert any(line.split()[2:4] == ["category.defined", "catalog"] for line in log.out.splitlines())
    before = state(catalog)
    assert_cli_error(
        run_cli("categories", "--catalog", catalog.path, "--define", OWN_CODE, "--label", "again"), "defined already"
    )
    assert state(catalog) == before
    claimed = run_cli(
        "claim", record_id, "--catalog", catalog.path, "--category", OWN_CODE, "--source", "prosecutor", "--json"
    )
    assert claimed.code == 0 and json.loads(claimed.out)["category"] == OWN_CODE
    assert [c.category for c in catalog.record(record_id).claims] == [OWN_CODE]


# -- 5. list filters on the command line --------------------------------------------------------


@pytest.mark.slow
def test_cli_list_filters_print_exactly_the_matching_records(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    r0, r1, r2, r3, r4 = add_records(catalog, tmp_path / "files", 5)

    def claim(record_id: str, **kwargs: Any) -> None:
        catalog.claim(record_id, summary="alleged", source_description="a witness", **kwargs)

    def at(lat: float, lon: float) -> model.Place:
        return model.Place(position=model.GeoPosition(latitude=lat, longitude=lon))

    minus_two = dt.timezone(dt.timedelta(hours=-2))
    catalog.assess(r0, "verified")
    claim(
        r0,
        category="rome-8-2-b-vi",
        place=at(48.512, 37.961),
        event_time=model.EventTime(
            start=dt.datetime(2022, 3, 5, 10, tzinfo=UTC), end=dt.datetime(2022, 3, 5, 12, tzinfo=UTC)
        ),
    )
    catalog.tag(r0, ["school", "shelling"])
    catalog.flag(r0, "graphic", "bodies")
    catalog.assess(r1, "verified")
    catalog.assess(r1, "disputed")
    claim(
        r1,
        category="rome-8-2-b-i",
        place=at(0, 179.5),
        event_time=model.EventTime(start=dt.datetime(2022, 3, 1, tzinfo=UTC)),
    )
    catalog.tag(r1, ["school"])
    catalog.flag(r1, "graphic", "blood")
    catalog.flag(r1, "minors", "children")
    claim(r2, category="rome-8-2-b-vi", place=model.Place(name="named only"))
    catalog.tag(r2, ["shelling"])
    claim(r3, place=at(-10, -179.5), event_time=model.EventTime(start=dt.datetime(2022, 2, 28, 23, tzinfo=minus_two)))
    catalog.assess(r4, "in_progress")
    claim(r4, event_time=model.EventTime(start=dt.datetime(2022, 3, 1, 23, 30, tzinfo=UTC)))

    cases: list[tuple[list[str], list[str]]] = [
        ([], [r0, r1, r2, r3, r4]),
        (["--status", "verified"], [r0]),
        (["--status", "disputed"], [r1]),
        (["--status", "unverified"], [r2, r3]),
        (["--status", "false"], []),
        (["--category", "rome-8-2-b-vi"], [r0, r2]),
        (["--category", "rome-7-1-d"], []),
        (["--tag", "school"], [r0, r1]),
        (["--tag", "school", "--tag", "shelling"], [r0]),
        (["--flag", "graphic"], [r0, r1]),
        (["--flag", "graphic", "--flag", "minors"], [r1]),
        (["--bbox", "36.1,47.9,38.4,49.2"], [r0]),
        (["--bbox", "170,-20,-170,20"], [r1, r3]),  # across the antimeridian
        (["--bbox=-180,-10,-179.5,0"], [r3]),  # edges included
        (["--bbox", "179.5,-10,-179.5,0"], [r1, r3]),  # edges included, across the antimeridian
        (["--bbox", "179.6,-10,-179.6,0"], []),
        (["--bbox", "-180,-90,180,90"], [r0, r1, r3]),  # a place without a position is never inside
        (["--since", "2022-03-01", "--until", "2022-03-01"], [r1, r3, r4]),  # r3: 2022-03-01T01:00Z
        (["--since", "2022-03-01T23:00Z", "--until", "2022-03-01"], [r4]),  # a date as the end: the whole day
        (["--since", "2022-03-02"], [r0]),
        (["--until", "2022-02-28"], []),  # r3 is on 28 February only in its own zone
        (["--since", "2022-03-05T11:00Z"], [r0]),
        (["--since", "2022-03-05T13:00+01:00"], [r0]),  # 12:00Z, the end of r0's interval
        (["--since", "2022-03-05T12:00:00.000001Z"], []),
        (["--until", "2022-03-01T00:00Z"], [r1]),
        (["--status", "verified", "--category", "rome-8-2-b-i"], []),
        (["--tag", "school", "--flag", "graphic", "--bbox", "170,-20,-170,20", "--status", "disputed"], [r1]),
    ]
    for args, expected in cases:
        result = run_cli("list", "--catalog", catalog.path, *args)
        assert result.code == 0 and result.err == ("" if expected else "no matches\n"), (args, result.err)
        assert record_ids_in(result.out) == expected, args
        as_json = run_cli("list", "--catalog", catalog.path, "--json", *args)
        assert [d["id"] for d in json.loads(as_json.out)] == expected, args
    assert [r.id for r in catalog.find_records(bbox=(170, -20, -170, 20))] == [r1, r3]


def test_cli_list_with_a_bbox_of_two_numbers_is_an_error(catalog: Catalog, run_cli: Callable[..., CliResult]) -> None:
    result = run_cli("list", "--catalog", catalog.path, "--bbox", "1,2")
    assert_cli_error(result, "'1,2' is not WEST,SOUTH,EAST,NORTH")


# -- edge cases of input (each was a bug once: see the commit that fixed them) --------------------


def test_a_claim_alleging_a_time_before_the_year_1000_is_kept_readable(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    [record_id] = add_records(catalog, tmp_path, 1)
    old = model.EventTime(start=dt.datetime(999, 3, 1, tzinfo=UTC), precision="year")
    claim = catalog.claim(record_id, summary="a chronicle", event_time=old, source_description="a chronicler")
    record = catalog.record(record_id)
    assert record.claims == (claim,) and json_round_trip(record) == record
    [event] = catalog.history(record_id)[-1:]
    assert event.details["claim"]["event_time"]["start"] == "0999-03-01T00:00:00Z"
    result = run_cli("claim", record_id, "--catalog", catalog.path, "--summary", "x", "--source", "w", "--time", "0999")
    assert_cli_error(result, "is not a date")  # a year alone is not a date
    assert run_cli("claim", record_id, "--catalog", catalog.path, "--summary", "y", "--source", "w",
                   "--time", "0999-03-01").code == 0  # fmt: skip
    shown = run_cli("show", record_id, "--catalog", catalog.path)
    assert "  time     0999-03-01T00:00:00Z (to the year)" in shown.out.splitlines()
    assert "  time     0999-03-01T00:00:00Z (to the day)" in shown.out.splitlines()
    assert catalog.verify().ok


@pytest.mark.parametrize("moment", ["0001-01-01T00:00+01:00", "9999-12-31T23:30-01:00"])
def test_a_time_outside_the_range_of_utc_is_an_input_error(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult], moment: str
) -> None:
    [record_id] = add_records(catalog, tmp_path, 1)
    with pytest.raises(ValueError):
        model.EventTime(start=dt.datetime.fromisoformat(moment))
    before = state(catalog)
    result = run_cli(
        "claim", record_id, "--catalog", catalog.path, "--summary", "x", "--source", "w", "--time", moment
    )  # fmt: skip
    assert_cli_error(result, "time")
    assert state(catalog) == before
    with pytest.raises(InputError):
        catalog.find_records(since=moment)
    assert_cli_error(run_cli("list", "--catalog", catalog.path, "--since", moment), "outside the range of times in UTC")


def test_the_last_day_of_the_calendar_is_a_whole_day(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    [record_id] = add_records(catalog, tmp_path, 1)
    result = run_cli(
        "claim", record_id, "--catalog", catalog.path, "--summary", "x", "--source", "w",
        "--time", "9999-12-30/9999-12-31",
    )  # fmt: skip
    assert result.code == 0, result.err
    [claim] = catalog.record(record_id).claims
    assert claim.event_time is not None and claim.event_time.end == dt.datetime(
        9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC
    )
    assert [r.id for r in catalog.find_records(since="9999-12-31", until="9999-12-31")] == [record_id]


def test_place_and_category_text_that_is_not_utf8_is_an_input_error(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    [record_id] = add_records(catalog, tmp_path, 1)
    for place in (model.Place(name="\udcff"), model.Place(name="x", admin_area="\udcff")):
        assert_refused(
            catalog,
            functools.partial(catalog.claim, record_id, place=place, source_description="w"),
            InputError,
            "UTF-8",
        )
    assert_refused(catalog, lambda: catalog.define_category("ua-438", "L", "\udcff"), InputError, "UTF-8")
    before = state(catalog)
    for args in (
        ["claim", record_id, "--place", "\udcff", "--source", "w"],
        ["claim", record_id, "--place", "p", "--admin-area", "\udcff", "--source", "w"],
        ["categories", "--define", "ua-438", "--label", "L", "--reference", "\udcff"],
    ):
        assert_cli_error(run_cli(*args, "--catalog", catalog.path), "UTF-8")
    assert state(catalog) == before


def test_a_claim_whose_place_holds_nothing_says_nothing(catalog: Catalog, tmp_path: Path) -> None:
    [record_id] = add_records(catalog, tmp_path, 1)
    for place, why in (
        (model.Place(), "must say something"),
        (model.Place(uncertainty_m=10), "uncertainty radius needs a position"),
        (model.Place(name="depot", uncertainty_m=10), "uncertainty radius needs a position"),
    ):
        assert_refused(
            catalog,
            functools.partial(catalog.claim, record_id, place=place, source_description="a witness"),
            InputError,
            why,
        )
    for blank in (model.Place(name=" "), model.Place(name="depot", admin_area="")):
        assert_refused(
            catalog,
            functools.partial(catalog.claim, record_id, place=blank, source_description="a witness"),
            InputError,
            "must not be blank",
        )


def test_find_records_takes_one_tag_or_flag_as_text_like_tag_does(catalog: Catalog, tmp_path: Path) -> None:
    [record_id, other] = add_records(catalog, tmp_path, 2, tags=["school"])
    catalog.tag(other, "shelling")
    catalog.flag(record_id, "minors", "children")
    assert [r.id for r in catalog.find_records(tags="school")] == [record_id, other]
    assert [r.id for r in catalog.find_records(tags="shelling")] == [other]
    assert [r.id for r in catalog.find_records(flags="minors")] == [record_id]


def test_a_bad_until_is_named_as_until(catalog: Catalog, run_cli: Callable[..., CliResult]) -> None:
    for until in ("2022-03-01T10:00", "March", "0001-01-01T00:00+01:00"):
        with pytest.raises(InputError) as refused:
            catalog.find_records(until=until)
        assert refused.value.where == "until", (until, str(refused.value))
        assert_cli_error(run_cli("list", "--catalog", catalog.path, "--until", until), "error: until: ")


def test_list_with_a_filter_names_an_unreadable_record_and_still_lists_the_rest(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    damaged, kept = add_records(catalog, tmp_path, 2, tags=["school"])
    body = json_set(database_dialect(catalog), "body", "$.method", "teleported")
    run_sql(catalog, f"update acquisition set body = {body} where record_id = :id", {"id": damaged})
    plain = run_cli("list", "--catalog", catalog.path)
    assert plain.code == 1 and record_ids_in(plain.out) == [kept] and f"record {damaged}" in plain.err
    filtered = run_cli("list", "--catalog", catalog.path, "--tag", "school")
    assert filtered.code == 1 and record_ids_in(filtered.out) == [kept] and f"record {damaged}" in filtered.err


def test_a_radius_without_a_place_is_refused_or_kept(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    [record_id] = add_records(catalog, tmp_path, 1)
    before = state(catalog)
    result = run_cli(
        "claim", record_id, "--catalog", catalog.path, "--summary", "x", "--source", "w", "--radius", "500"
    )  # fmt: skip
    assert result.code == 2 and "uncertainty radius needs a position" in result.err, result.err
    assert state(catalog) == before


def test_search_keeps_only_reports_on_records_that_meet_the_record_filters(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    digest = tmp_path / "digest.txt"
    digest.write_text("Feed (Twitter)\nSchool shelled\nSchool shelled\nSchool rebuilt\nSchool rebuilt\n", "utf-8")
    catalog.ingest(digest)
    shelled, rebuilt = catalog.record_ids()
    catalog.claim(
        shelled,
        category="rome-8-2-b-ix",
        event_time=model.EventTime(start=dt.datetime(2022, 3, 5, 10, tzinfo=dt.UTC)),
        source_description="a teacher",
    )
    catalog.assess(shelled, "verified", methods=["geolocation"])
    assert [h.record_id for h in catalog.search("school")] != [shelled]  # both reports match the words
    for criteria in (
        catalog.record_filter(status="verified"),
        catalog.record_filter(category="rome-8-2-b-ix"),
        catalog.record_filter(since="2022-03-05", until="2022-03-05"),
    ):
        hits = catalog.search("school", record_filter=criteria)
        assert [h.record_id for h in hits] == [shelled], criteria
    assert catalog.search("school", record_filter=catalog.record_filter(since="2022-03-06")) == []
    catalog.close()
    out = run_cli(
        "search", "school", "--alleged-since", "2022-03-05", "--status", "verified", "--catalog", catalog.path
    )
    assert out.code == 0 and len(out.out.splitlines()) == 1 and shelled in out.out
    none = run_cli("search", "school", "--alleged-until", "2022-03-04", "--catalog", catalog.path)
    assert (none.code, none.out, none.err) == (0, "", "no matches\n")
    assert rebuilt not in out.out
