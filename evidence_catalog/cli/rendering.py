"""The text ``show`` prints: a record with everything on it, one labelled line per fact, free
text escaped so that a terminal cannot be tricked by it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from evidence_catalog import model
from evidence_catalog.cli.output import agent_text, printable
from evidence_catalog.paths import display_path
from evidence_catalog.serialize import format_timestamp

if TYPE_CHECKING:
    from evidence_catalog.analysis import MediaAnalysis


def echo_record(record: model.EvidenceRecord) -> None:
    """Print *record* as ``show`` does: the record, its status and flags, then its artifacts,
    reports, claims, relations, acquisitions, notes and assessments."""
    click.echo(f"record   {record.id}")
    click.echo(f"title    {display_path(record.title or '')}")
    click.echo(f"created  {format_timestamp(record.created_at)} by {agent_text(record.created_by)}")
    if record.tags:
        # The import machinery is loaded only for a record that has tags to look through.
        from evidence_catalog.interchange.importing import UNSIGNED_PROVENANCE_TAG

        click.echo(f"tags     {printable(', '.join(record.tags))}")
        if UNSIGNED_PROVENANCE_TAG in record.tags:
            click.echo("provenance UNSIGNED: imported with --accept-unsigned; its history is not tied to a signed log")
    current = record.assessments[-1] if record.assessments else None
    click.echo(
        "status   "
        + (
            "unverified (no assessment yet)"
            if current is None
            else f"{current.status.value}"
            + (f", {current.confidence.value} confidence" if current.confidence else "")
            + f" ({format_timestamp(current.assessed_at)} {agent_text(current.assessor)})"
        )
    )
    for flagged in record.flags:
        click.echo(
            f"flag     {flagged.kind.value}: {printable(flagged.reason)} "
            f"({format_timestamp(flagged.set_at)} {agent_text(flagged.set_by)})"
        )
    for entry in record.artifacts:
        artifact = entry.artifact
        click.echo(f"artifact {artifact.sha256} ({entry.role.value})")
        if entry.derived_from:
            click.echo(f"  made from  {', '.join(entry.derived_from)}: {printable(entry.derivation or '')}")
        if entry.version_of:
            click.echo(f"  version of {entry.version_of} (same source, different bytes)")
        click.echo(f"  size       {artifact.size} bytes")
        click.echo(f"  media type {artifact.media_type}")
        for algorithm, value in artifact.digests.as_dict().items():
            if algorithm != "sha256":
                click.echo(f"  {algorithm:<10} {value}")
        _show_metadata(artifact.metadata)
    for report in record.reports:
        _show_report(report)
    for alleged in record.claims:
        _show_claim(alleged)
    for relation in record.relations:
        why = f": {printable(relation.note)}" if relation.note else ""
        click.echo(
            f"relation {relation.kind.value} {relation.target_id} "
            f"({format_timestamp(relation.linked_at)} {agent_text(relation.linked_by)}){why}"
        )
    for acquisition in record.acquisitions:
        when, how = format_timestamp(acquisition.ended_at), acquisition.method.value
        failed = " FAILED" if acquisition.outcome is model.Outcome.FAILED else ""
        click.echo(f"acquired {when} {how}{failed} by {agent_text(acquisition.operator)}")
        if acquisition.original_path:
            click.echo(f"  from     {display_path(acquisition.original_path)}")
        if acquisition.source_url:
            click.echo(f"  source   {printable(acquisition.source_url)}")
        _show_capture(acquisition)
        if acquisition.artifact_sha256:
            click.echo(f"  artifact {acquisition.artifact_sha256}")
        for other in acquisition.other_artifacts:
            click.echo(f"  also     {other}")
    for kept in record.notes:
        click.echo(f"note     {format_timestamp(kept.written_at)} {agent_text(kept.author)}: {printable(kept.text)}")
    for assessment in record.assessments:  # the history, oldest first; the last is current
        methods = ", ".join(m.value for m in assessment.methods)
        click.echo(
            f"assessed {format_timestamp(assessment.assessed_at)} {assessment.status.value}"
            + (f" ({assessment.confidence.value} confidence)" if assessment.confidence else "")
            + f" by {agent_text(assessment.assessor)}"
            + (f"; methods: {methods}" if methods else "")
            + (f"; {printable(assessment.note)}" if assessment.note else "")
        )


def _show_claim(alleged: model.Claim) -> None:
    """A claim, said to be one: what is alleged, and by whom."""
    click.echo(
        f"claim    {alleged.id} "
        f"(alleged; stated {format_timestamp(alleged.stated_at)} by {agent_text(alleged.stated_by)})"
    )
    time = alleged.event_time
    place = alleged.place
    position = None if place is None or place.position is None else place.position
    lines = [
        ("summary", alleged.summary),
        ("category", alleged.category),
        (
            "time",
            None
            if time is None
            else format_timestamp(time.start)
            + (f" to {format_timestamp(time.end)}" if time.end else "")
            + f" (to the {time.precision.value})",
        ),
        ("place", None if place is None else ", ".join(filter(None, (place.name, place.admin_area))) or None),
        (
            "position",
            None
            if position is None
            else f"{position.latitude}, {position.longitude}"
            + (f" ± {place.uncertainty_m:g} m" if place is not None and place.uncertainty_m is not None else ""),
        ),
        ("by", alleged.alleged_perpetrator),
        ("source", f"report {alleged.source_report_id}" if alleged.source_report_id else alleged.source_description),
    ]
    for label, value in lines:
        if value:
            click.echo(f"  {label:<8} {printable(value)}")


def _show_report(report: model.Report) -> None:
    """A report: where it was published, by whom, when, and what it says (escaped, line by line)."""
    source = report.source
    where = " / ".join(filter(None, (source.platform, source.feed_name, source.account_handle)))
    click.echo(f"report   {report.id}" + (f" ({printable(where)})" if where else ""))
    lines = [
        ("author", report.author),
        ("post id", report.post_id),
        ("posted", format_timestamp(report.published_at) if report.published_at else None),
        ("updated", format_timestamp(report.updated_at) if report.updated_at else None),
        ("url", report.url if report.url_known else "unknown (the source did not give one)"),
        ("identity", report.identity),
    ]
    if report.repost is not None:
        lines.append(("repost", f"{report.repost.reposted_by} reposted {report.repost.original_author}"))
    if report.line_span is not None:
        lines.append(("lines", f"{report.line_span.first}-{report.line_span.last} of {report.document_sha256}"))
    for label, value in lines:
        if value:
            click.echo(f"  {label:<8} {printable(value)}")
    for text_line in report.text.split("\n"):
        click.echo(f"  | {printable(text_line)}")
    for card in report.link_cards:
        cut = " (cut short)" if card.truncated else ""
        click.echo(f"  card     {printable(card.site_name or '')}: {printable(card.title or '')}{cut}")
    for link in report.links:
        click.echo(f"  link     {printable(link)}")
    for media in report.media:
        stated = ", ".join(filter(None, (media.media_type, None if media.length is None else f"{media.length} B")))
        click.echo(f"  media    {printable(media.url)}" + (f" ({printable(stated)})" if stated else ""))


def _show_capture(acquisition: model.Acquisition) -> None:
    """The capture-specific lines of an acquisition (nothing for other methods)."""
    lines = [
        ("url", acquisition.requested_url),
        ("final", acquisition.final_url if acquisition.final_url != acquisition.requested_url else None),
        ("status", None if acquisition.http_status is None else str(acquisition.http_status)),
        ("platform", " ".join(filter(None, (acquisition.extractor, acquisition.platform_id))) or None),
        ("error", acquisition.error),
    ]
    info = acquisition.platform_info
    if info is not None:
        uploaded = format_timestamp(info.uploaded_at) if info.uploaded_at else info.upload_date
        lines += [
            ("title", info.title),
            (
                "uploader",
                " ".join(filter(None, (info.uploader, f"({info.uploader_id})" if info.uploader_id else None))),
            ),
            ("channel", " ".join(filter(None, (info.channel, f"({info.channel_id})" if info.channel_id else None)))),
            ("uploaded", uploaded),
            ("duration", None if info.duration_s is None else f"{info.duration_s:g} s"),
            ("format", info.format_id),
        ]
    tools = ", ".join(f"{t.name} {t.version}" for t in acquisition.tools if t.name in ("yt-dlp", "ffmpeg"))
    lines.append(("tools", tools or None))
    for label, value in lines:
        if value:
            click.echo(f"  {label:<8} {printable(value)}")
    for setting in acquisition.settings:
        click.echo(f"  setting  {printable(setting)}")
    for withheld in acquisition.withheld:
        click.echo(f"  withheld {printable(withheld)}")
    if acquisition.note:
        click.echo(f"  note     {printable(acquisition.note)}")


def _show_metadata(metadata: model.EmbeddedMetadata | None) -> None:
    if metadata is None:
        return
    exif = metadata.exif
    if exif is not None:
        for label, value in (
            ("taken", exif.datetime_original),
            ("make", exif.make),
            ("model", exif.model),
            ("software", exif.software),
        ):
            if value:
                click.echo(f"  {label:<10} {display_path(value)}")
        if exif.gps is not None:
            gps = exif.gps
            altitude = f", {gps.altitude_m:g} m" if gps.altitude_m is not None else ""
            click.echo(f"  gps        {gps.latitude:.6f}, {gps.longitude:.6f}{altitude}")
        click.echo(f"  exif tags  {len(exif.raw)}")
    if metadata.image is not None:
        _show_image(metadata.image)
    if metadata.media is not None:
        _show_media(metadata.media, metadata.extractor)
    for error in metadata.errors:
        click.echo(f"  extraction problem: {display_path(error)}")


#: What a viewer does to the stored picture of each EXIF orientation to show it (docs/media.md).
ORIENTATIONS = {
    1: "upright",
    2: "mirrored left to right",
    3: "turned 180°",
    4: "mirrored top to bottom",
    5: "mirrored left to right and turned 90° anticlockwise",
    6: "turned 90° clockwise",
    7: "mirrored left to right and turned 90° clockwise",
    8: "turned 90° anticlockwise",
}


def _show_image(image: model.ImageInfo) -> None:
    text = f"{image.width} × {image.height} pixels"
    if image.orientation is not None:
        text += f", EXIF orientation {image.orientation} (shown {ORIENTATIONS[image.orientation]})"
    click.echo(f"  image      {text}")


def _show_media(media: model.MediaInfo, reader: model.Agent) -> None:
    parts = [media.format_name or media.format]
    if media.duration_s is not None:
        parts.append(f"{media.duration_s:g} s")
    if media.bit_rate is not None:
        parts.append(f"{media.bit_rate / 1000:g} kb/s")
    tool = f"{reader.name} {reader.version}" if reader.version else reader.name
    click.echo(f"  container  {printable(', '.join(parts))} (read with {printable(tool)})")
    if media.created_at is not None:
        click.echo(f"  created    {format_timestamp(media.created_at)} (the container's creation_time: a claim)")
    if media.location is not None:
        where = media.location
        if where.position is not None:
            altitude = f", {where.position.altitude_m:g} m" if where.position.altitude_m is not None else ""
            place = f"{where.position.latitude:.6f}, {where.position.longitude:.6f}{altitude}"
        else:
            place = "not a position"
        click.echo(f"  location   {place} ({printable(where.tag)} {printable(where.text)!r}: a claim)")
    for stream in media.streams:
        click.echo(f"  stream {stream.index:<3} {printable(_stream_text(stream))}")
    click.echo(f"  media tags {len(media.tags) + sum(len(s.tags) for s in media.streams)}")


def _stream_text(stream: model.MediaStream) -> str:
    parts = [stream.kind.value, stream.codec or "unknown codec"]
    if stream.profile:
        parts[-1] += f" ({stream.profile})"
    if stream.width is not None and stream.height is not None:
        parts.append(f"{stream.width}×{stream.height}")
    if stream.frame_rate is not None:
        parts.append(f"{stream.frame_rate:.6g} fps")
    if stream.rotation:
        parts.append(f"turned {stream.rotation}° clockwise to show")
    if stream.sample_rate is not None:
        parts.append(f"{stream.sample_rate} Hz")
    if stream.channels is not None:
        parts.append(f"{stream.channels} ch")
    if stream.bit_rate is not None:
        parts.append(f"{stream.bit_rate / 1000:g} kb/s")
    if stream.duration_s is not None:
        parts.append(f"{stream.duration_s:g} s")
    return ", ".join(parts)


def echo_analyses(found: Sequence[tuple[str, MediaAnalysis | None]]) -> None:
    """Print what each analysis of a record derived, as ``show`` does after the record."""
    for document, analysis in found:
        if analysis is None:
            click.echo(f"analysis {document}: cannot be read (run `verify`)")
            continue
        usable = len(analysis.usable_hashes())
        video = any(h.offset_s is not None for h in analysis.hashes)
        what = "frame hash(es)" if video else "hash(es)"
        click.echo(f"analysis of {analysis.source_sha256} ({document})")
        tools = ", ".join(f"{t.name} {t.version}" if t.version else t.name for t in analysis.tools)
        click.echo(f"  tools      {printable(tools)}")
        click.echo(f"  pdq        {len(analysis.hashes)} {what}, {usable} usable (quality 50 or more)")
        if analysis.hashes and not video:
            only = analysis.hashes[0]
            click.echo(f"             {only.value} quality {only.quality}")
        for keyframe in analysis.keyframes:
            click.echo(f"  keyframe   {keyframe.offset_s:.3f} s {keyframe.sha256}")
        if analysis.contact_sheet_sha256:
            click.echo(f"  sheet      {analysis.contact_sheet_sha256}")
        _show_credentials(analysis)
        for error in analysis.errors:
            click.echo(f"  problem    {printable(error)}")


def _show_credentials(analysis: MediaAnalysis) -> None:
    found = analysis.credentials
    if found is None:
        return
    meaning = {
        "none": "none (no manifest: this says nothing about whether the file was changed)",
        "valid": "valid (intact as signed; the signer is not on the trust list)",
        "trusted": "trusted (intact as signed, by a signer on the trust list)",
        "invalid": "INVALID (a check failed: see the codes)",
        "unreadable": "UNREADABLE (the manifest store could not be read)",
    }[found.state.value]
    click.echo(f"  c2pa       {meaning}")
    lines = [
        ("codes", ", ".join(found.failure_codes)),
        ("signer", found.signer),
        ("generator", found.claim_generator),
        ("signed", None if found.signed_at is None else format_timestamp(found.signed_at)),
        ("actions", ", ".join(found.actions)),
        ("ingredients", ", ".join(found.ingredients)),
        ("store", found.manifest_store_sha256),
    ]
    for label, value in lines:
        if value:
            click.echo(f"    {label:<11} {printable(value)}")
    for error in found.errors:
        click.echo(f"    problem     {printable(error)}")
