"""The investigators' judgements on a record: claims, assessments, relations, flags, notes and
tags, each kept on the record with the custody event that logs it; and the vocabulary of
categories a claim names.

Every function takes the operation's :class:`~evidence_catalog.operations.context.Context`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs

from evidence_catalog import model
from evidence_catalog.custody import Action
from evidence_catalog.errors import InputError
from evidence_catalog.interchange.redact import FieldPathError, check_flag
from evidence_catalog.operations import common
from evidence_catalog.operations.common import check_note, checked_tags, choice, utf8
from evidence_catalog.operations.context import Context
from evidence_catalog.replay import ANNOTATIONS, annotation_details
from evidence_catalog.vocabulary import BUILTIN_CATEGORIES, Category

_Part = TypeVar("_Part")


def claim(
    ctx: Context,
    record_id: str,
    *,
    summary: str | None = None,
    category: str | None = None,
    event_time: model.EventTime | None = None,
    place: model.Place | None = None,
    alleged_perpetrator: str | None = None,
    source_report_id: str | None = None,
    source_description: str | None = None,
) -> model.Claim:
    """Record what the item allegedly shows -- never a finding of fact: a summary, a
    category from the vocabulary (:meth:`categories`), the alleged time and place, the
    alleged perpetrator -- and who says so: a report on the record (*source_report_id*) or
    a person or organisation (*source_description*).  One ``claim.added`` custody event."""
    texts = {
        "summary": summary,
        "alleged perpetrator": alleged_perpetrator,
        "source description": source_description,
    }
    for name, text in texts.items():
        if text is not None and not utf8(text, name).strip():
            raise InputError(f"{name} must not be blank", where=name.replace(" ", "_"))
    if source_report_id is None and source_description is None:
        raise InputError("a claim must name its source: a report on the record or who says so", where="source")
    if event_time is not None and not isinstance(event_time, model.EventTime):
        raise InputError("event_time must be an EventTime", where="event_time")
    if place is not None and not isinstance(place, model.Place):
        raise InputError("place must be a Place", where="place")
    if place is not None:
        for name, text in (("place name", place.name), ("admin area", place.admin_area)):
            if text is not None and not utf8(text, name).strip():
                raise InputError(f"{name} must not be blank", where="place")
        if place.uncertainty_m is not None and place.position is None:
            raise InputError("an uncertainty radius needs a position (latitude and longitude)", where="place")
        if place.name is None and place.position is None and place.admin_area is None:
            place = None  # a place with nothing in it says nothing
    if summary is None and category is None and event_time is None and place is None and alleged_perpetrator is None:
        raise InputError("a claim must say something: a summary, category, time, place or perpetrator", where="claim")
    if category is not None and category not in {c.code for c in categories(ctx)}:
        raise InputError(
            f"unknown category {category!r}; see `evidence-catalog categories`, or define it first",
            where="category",
        )

    def make(session: Any, at: dt.datetime) -> model.Claim:
        if source_report_id is not None:
            found = ctx.db.report(session, source_report_id)
            if found is None or found[0] != record_id:
                raise InputError(f"report {source_report_id} is not on record {record_id}", where="source_report")
        return model.Claim(
            id=model.new_id(),
            stated_by=ctx.operator,
            stated_at=at,
            summary=summary,
            category=category,
            event_time=event_time,
            place=place,
            alleged_perpetrator=alleged_perpetrator,
            source_report_id=source_report_id,
            source_description=source_description,
        )

    return annotate(ctx, record_id, Action.CLAIM_ADDED, make)


def assess(
    ctx: Context,
    record_id: str,
    status: str,
    *,
    methods: Sequence[str] = (),
    confidence: str | None = None,
    note: str | None = None,
) -> model.Assessment:
    """Record a verification assessment.  It supersedes (never overwrites) the record's
    latest assessment; the history stays on the record and in the log."""
    checked_status = choice(model.VerificationStatus, status, "status")
    checked_methods = tuple(choice(model.VerificationMethod, m, "method") for m in dict.fromkeys(methods))
    checked_confidence = None if confidence is None else choice(model.Confidence, confidence, "confidence")
    check_note(note)

    def make(session: Any, at: dt.datetime) -> model.Assessment:
        earlier = ctx.db.record(session, record_id).assessments
        return model.Assessment(
            id=model.new_id(),
            status=checked_status,
            assessor=ctx.operator,
            assessed_at=at,
            methods=checked_methods,
            confidence=checked_confidence,
            note=note,
            supersedes=earlier[-1].id if earlier else None,
        )

    return annotate(ctx, record_id, Action.ASSESSMENT_ADDED, make)


def relate(ctx: Context, record_id: str, kind: str, target_id: str, *, note: str | None = None) -> model.Relation:
    """Record how a record relates to another (duplicate of, derived from, same incident as,
    responds to, contradicts), by whom and why."""
    checked = choice(model.RelationKind, kind, "relation")
    check_note(note)
    if target_id == record_id:
        raise InputError(f"record {record_id} cannot relate to itself", where="relation")

    def make(session: Any, at: dt.datetime) -> model.Relation:
        common.check_record_exists(ctx, session, target_id, where="relation")
        return model.Relation(kind=checked, target_id=target_id, linked_by=ctx.operator, linked_at=at, note=note)

    return annotate(ctx, record_id, Action.RELATION_ADDED, make)


def flag(
    ctx: Context,
    record_id: str,
    kind: str,
    reason: str,
    *,
    artifacts: Sequence[str] = (),
    fields: Sequence[str] = (),
) -> model.SensitivityFlag:
    """Flag a record as sensitive (graphic content, personal data, a protected source,
    minors), with the reason; a redacted export withholds what is flagged.

    The flag is about the *artifacts* named (SHA-256s on the record) and the *fields* named
    (field paths such as ``reports/<report id>/author``, see
    :mod:`evidence_catalog.interchange.redact`); naming neither, it is about every artifact
    of the record.  A field that is not there, or that cannot be withheld, is refused.
    """
    checked = choice(model.SensitivityKind, kind, "flag")
    if not utf8(reason, "reason").strip():
        raise InputError("a flag needs a reason", where="reason")
    if isinstance(artifacts, str) or isinstance(fields, str):
        raise InputError("give artifacts and fields as lists", where="flag")
    for path in fields:
        utf8(path, "field")

    def make(session: Any, at: dt.datetime) -> model.SensitivityFlag:
        made = model.SensitivityFlag(
            kind=checked, reason=reason, set_by=ctx.operator, set_at=at, artifacts=artifacts, fields=fields
        )
        try:
            check_flag(ctx.db.record(session, record_id), made)
        except FieldPathError as exc:
            raise InputError(str(exc), where="field") from exc
        return made

    return annotate(ctx, record_id, Action.FLAG_ADDED, make)


def add_note(ctx: Context, record_id: str, text: str) -> model.Note:
    """Keep a note on a record, attributed to the operator and timed."""
    check_note(text)
    return annotate(
        ctx,
        record_id,
        Action.NOTE_ADDED,
        lambda _session, at: model.Note(id=model.new_id(), text=text, author=ctx.operator, written_at=at),
    )


def tag(ctx: Context, record_id: str, tags: Sequence[str]) -> tuple[str, ...]:
    """Add tags to a record; returns those it did not have (one ``tags.added`` event for
    them, none when every tag was there already)."""
    if isinstance(tags, str):
        tags = [tags]
    checked = checked_tags(tags)
    if not checked:
        raise InputError("no tag given", where="tag")
    common.check_writable(ctx, "; nothing can be changed in it")
    with ctx.write() as session:
        common.check_record_exists(ctx, session, record_id)
        new = tuple(ctx.db.add_tags(session, record_id, checked))  # those it did not have
        if new:
            ctx.db.append_event(
                session,
                at=ctx.clock(),
                actor=ctx.operator,
                action=Action.TAGS_ADDED,
                subject=record_id,
                details={"tags": list(new)},
            )
    return new


def define_category(ctx: Context, code: str, label: str, reference: str | None = None) -> Category:
    """Add a category of alleged violation to this catalog's vocabulary (logged as
    ``category.defined``); a code already defined, built in or not, cannot be changed."""
    try:
        category = Category(
            code=code,
            label=utf8(label, "label"),
            reference=None if reference is None else utf8(reference, "reference"),
        )
    except ValueError as exc:
        raise InputError(str(exc), where="category") from exc
    common.check_writable(ctx, "; nothing can be changed in it")
    with ctx.write() as session:
        if code in {c.code for c in categories_in(ctx, session)}:
            raise InputError(f"category {code!r} is defined already; choose another code", where="category")
        ctx.log_event(Action.CATEGORY_DEFINED, {"category": attrs.asdict(category)}, session)
    return category


def categories(ctx: Context) -> list[Category]:
    """The vocabulary of alleged violations: the built-in ones, then this catalog's own."""
    with ctx.db.read() as session:
        return categories_in(ctx, session)


def categories_in(ctx: Context, session: Any) -> list[Category]:
    """The vocabulary as :func:`categories` gives it, read in the transaction *session*."""
    own = [Category(**event.details["category"]) for event in ctx.db.events_by_action(session, Action.CATEGORY_DEFINED)]
    return [*BUILTIN_CATEGORIES, *own]


def annotate(ctx: Context, record_id: str, action: str, make: Callable[[Any, dt.datetime], _Part]) -> _Part:
    """Put one judgement on a record: the part *make* builds, its custody event, in one
    transaction; nothing is written when the record is missing or *make* refuses."""
    member, _, _ = ANNOTATIONS[action]
    common.check_writable(ctx, "; nothing can be changed in it")
    with ctx.write() as session:
        common.check_record_exists(ctx, session, record_id)
        at = ctx.clock()
        try:
            part = make(session, at)
        except ValueError as exc:  # the model refuses it (an end before its start ...)
            raise InputError(str(exc), where=member) from exc
        event = ctx.db.append_event(
            session,
            at=at,
            actor=ctx.operator,
            action=action,
            subject=record_id,
            details=annotation_details(member, part),
        )
        ctx.db.add_part(session, record_id, member, part, event.seq)
    return part
