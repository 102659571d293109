"""The investigators' judgements: ``claim``, ``assess``, ``relate``, ``flag``, ``note``, ``tag``
and ``categories``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from evidence_catalog.cli.app import cli
from evidence_catalog.cli.options import catalog_option, choices, json_option, open_catalog, operator_option
from evidence_catalog.cli.output import echo_json, printable
from evidence_catalog.errors import InputError

if TYPE_CHECKING:
    from evidence_catalog import model


def _event_time(text: str | None, precision: str | None) -> model.EventTime | None:
    """``--time START[/END]``: dates or times with their zone; a date alone means that day."""
    from evidence_catalog import model
    from evidence_catalog.operations.common import parse_time

    if text is None:
        if precision is not None:
            raise InputError("--precision needs --time", where="time")
        return None
    ends = text.split("/")
    if len(ends) > 2 or not all(e.strip() for e in ends):
        raise InputError(f"{printable(text)!r} is not START or START/END", where="time")
    points = [parse_time(end.strip(), where="time", end_of_day=n == 1) for n, end in enumerate(ends)]
    inferred = "day" if all(len(e.strip()) == 10 for e in ends) else "minute"
    try:
        return model.EventTime(
            start=points[0], end=points[1] if len(points) > 1 else None, precision=precision or inferred
        )
    except ValueError as exc:
        raise InputError(str(exc), where="time") from exc


def _place(
    name: str | None, lat: float | None, lon: float | None, radius: float | None, admin_area: str | None
) -> model.Place | None:
    from evidence_catalog import model

    if (lat is None) != (lon is None):
        raise InputError("give both --lat and --lon, or neither", where="place")
    if all(v is None for v in (name, lat, radius, admin_area)):
        return None
    try:
        position = None if lat is None or lon is None else model.GeoPosition(latitude=lat, longitude=lon)
        return model.Place(name=name, position=position, uncertainty_m=radius, admin_area=admin_area)
    except ValueError as exc:
        raise InputError(str(exc), where="place") from exc


@cli.command()
@click.argument("record_id", metavar="ID")
@catalog_option
@click.option("--summary", help="What the item allegedly shows, in a sentence.")
@click.option("--category", metavar="CODE", help="Alleged violation, from `evidence-catalog categories`.")
@click.option(
    "--time", "time_text", metavar="START[/END]", help="Alleged time: 2022-03-05, 2022-03-05T10:00Z, or START/END."
)
@click.option("--precision", type=choices("TimePrecision"), help="How precisely the time is known.")
@click.option("--place", "place_name", metavar="NAME", help="Alleged place, by name.")
@click.option("--lat", type=float, help="Latitude, WGS 84 decimal degrees.")
@click.option("--lon", type=float, help="Longitude, WGS 84 decimal degrees.")
@click.option("--radius", type=float, metavar="METRES", help="Uncertainty radius of the position.")
@click.option("--admin-area", help="Administrative area (region, district).")
@click.option("--perpetrator", help="Alleged perpetrator: unit or party.")
@click.option("--source-report", metavar="REPORT_ID", help="The report on this record that makes the claim.")
@click.option("--source", "source_description", metavar="TEXT", help="Who makes the claim, when it is not a report.")
@operator_option
@json_option
def claim(
    record_id: str,
    catalog_path: str,
    summary: str | None,
    category: str | None,
    time_text: str | None,
    precision: str | None,
    place_name: str | None,
    lat: float | None,
    lon: float | None,
    radius: float | None,
    admin_area: str | None,
    perpetrator: str | None,
    source_report: str | None,
    source_description: str | None,
    operator: str | None,
    as_json: bool,
) -> None:
    """Record what a record's item allegedly shows, and who says so.

    A claim is never a finding of fact: it says what is alleged (summary, category of
    violation, time, place, perpetrator) and its source (--source-report or --source).
    """
    from evidence_catalog.serialize import unstructure

    event_time = _event_time(time_text, precision)
    place = _place(place_name, lat, lon, radius, admin_area)
    with open_catalog(catalog_path, operator) as catalog:
        made = catalog.claim(
            record_id,
            summary=summary,
            category=category,
            event_time=event_time,
            place=place,
            alleged_perpetrator=perpetrator,
            source_report_id=source_report,
            source_description=source_description,
        )
    echo_json(unstructure(made)) if as_json else click.echo(f"claim {made.id} on record {record_id}")


@cli.command()
@click.argument("record_id", metavar="ID")
@catalog_option
@click.option("--status", required=True, type=choices("VerificationStatus"), help="Verification status.")
@click.option(
    "--method", "methods", multiple=True, type=choices("VerificationMethod"), help="Method used (repeatable)."
)
@click.option("--confidence", type=choices("Confidence"), help="How sure the assessor is.")
@click.option("--note", help="What was done and found.")
@operator_option
@json_option
def assess(
    record_id: str,
    catalog_path: str,
    status: str,
    methods: Sequence[str],
    confidence: str | None,
    note: str | None,
    operator: str | None,
    as_json: bool,
) -> None:
    """Record a verification assessment; it supersedes the latest one, which stays in the history."""
    from evidence_catalog.serialize import unstructure

    with open_catalog(catalog_path, operator) as catalog:
        made = catalog.assess(record_id, status, methods=methods, confidence=confidence, note=note)
    if as_json:
        echo_json(unstructure(made))
    else:
        after = f" (supersedes {made.supersedes})" if made.supersedes else ""
        click.echo(f"assessment {made.id} on record {record_id}: {made.status.value}{after}")


@cli.command()
@click.argument("record_id", metavar="ID1")
@click.argument("kind", metavar="KIND", type=choices("RelationKind"))
@click.argument("target_id", metavar="ID2")
@catalog_option
@click.option("--note", help="Why they are related.")
@operator_option
def relate(
    record_id: str, kind: str, target_id: str, catalog_path: str, note: str | None, operator: str | None
) -> None:
    """Record that record ID1 is KIND of record ID2.

    KIND is duplicate_of, derived_from, same_incident_as, responds_to or contradicts.
    """
    with open_catalog(catalog_path, operator) as catalog:
        catalog.relate(record_id, kind, target_id, note=note)
    click.echo(f"record {record_id} {kind} {target_id}")


@cli.command()
@click.argument("record_id", metavar="ID")
@click.argument("tags", metavar="TAG...", nargs=-1, required=True)
@catalog_option
@operator_option
def tag(record_id: str, tags: Sequence[str], catalog_path: str, operator: str | None) -> None:
    """Add tags to a record (those it has already are left as they are)."""
    with open_catalog(catalog_path, operator) as catalog:
        added = catalog.tag(record_id, tags)
    click.echo(
        f"record {record_id}: " + (f"tagged {printable(', '.join(added))}" if added else "had every tag already")
    )


@cli.command()
@click.argument("record_id", metavar="ID")
@click.argument("kind", metavar="FLAG", type=choices("SensitivityKind"))
@catalog_option
@click.option("--reason", required=True, help="Why (kept with the flag; exports can state it).")
@click.option("--artifact", "artifacts", multiple=True, metavar="SHA256", help="An artifact the flag is about.")
@click.option(
    "--field", "fields", multiple=True, metavar="PATH", help="A field the flag is about, e.g. reports/<id>/author."
)
@operator_option
def flag(
    record_id: str,
    kind: str,
    catalog_path: str,
    reason: str,
    artifacts: Sequence[str],
    fields: Sequence[str],
    operator: str | None,
) -> None:
    """Flag a record as sensitive: graphic, personal_data, protected_source or minors.

    The flag is about the artifacts and fields named; naming neither, every artifact of the
    record.  `export --redact` withholds what flags name.
    """
    with open_catalog(catalog_path, operator) as catalog:
        catalog.flag(record_id, kind, reason, artifacts=list(artifacts), fields=list(fields))
    click.echo(f"record {record_id} flagged {kind}")


@cli.command()
@click.argument("record_id", metavar="ID")
@click.argument("text")
@catalog_option
@operator_option
def note(record_id: str, text: str, catalog_path: str, operator: str | None) -> None:
    """Keep a note on a record, attributed to the operator and timed."""
    with open_catalog(catalog_path, operator) as catalog:
        made = catalog.add_note(record_id, text)
    click.echo(f"note {made.id} on record {record_id}")


@cli.command()
@catalog_option
@click.option("--define", "code", metavar="CODE", help="Add a category with this code to the catalog's vocabulary.")
@click.option("--label", help="The new category's label (with --define).")
@click.option("--reference", help="The provision it follows, e.g. a criminal code article (with --define).")
@operator_option
@json_option
def categories(
    catalog_path: str, code: str | None, label: str | None, reference: str | None, operator: str | None, as_json: bool
) -> None:
    """List the categories of alleged violation claims can name, or add one with --define."""
    import attrs

    with open_catalog(catalog_path, operator) as catalog:
        if code is not None:
            if label is None:
                raise click.UsageError("--define needs --label")
            catalog.define_category(code, label, reference)
        elif label is not None or reference is not None:
            raise click.UsageError("--label and --reference go with --define")
        found = catalog.categories()
    if as_json:
        echo_json([attrs.asdict(c) for c in found])
        return
    for category in found:
        reference_text = f"  ({category.reference})" if category.reference else ""
        click.echo(f"{category.code:<16} {printable(category.label)}{printable(reference_text)}")
