"""Commands that check and protect the catalog: ``verify``, ``fsck``, ``checkpoint`` (with its
time-stamps) and ``change-key``."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from evidence_catalog.cli.app import EXIT_PROBLEMS, cli
from evidence_catalog.cli.options import catalog_option, json_option, open_catalog, operator_option, quiet_option
from evidence_catalog.cli.output import echo_json, one_line, printable
from evidence_catalog.cli.progress import bytes_progress, shows_progress
from evidence_catalog.errors import CatalogError, CatalogNotFoundError, CatalogVersionError, InputError, StorageError
from evidence_catalog.paths import display_path

#: Where `change-key --encrypt` takes the new key's passphrase from when not asked on a terminal.
NEW_PASSPHRASE_ENV = "EVIDENCE_CATALOG_NEW_KEY_PASSPHRASE"


@cli.command()
@catalog_option
@operator_option
@click.option("--no-log", is_flag=True, help="Do not record this verification in the custody log.")
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A signed checkpoint of this log held elsewhere: the log must still extend it (repeatable).",
)
@click.option(
    "--no-remember",
    is_flag=True,
    help="Neither check against nor keep the checkpoint remembered from the last verification.",
)
@click.option(
    "--allow-unsigned-tail",
    is_flag=True,
    help="Events after the last signed checkpoint (an encrypted key between signings) are counted, not a problem.",
)
@click.option(
    "--deep",
    is_flag=True,
    help="Make every media analysis again from its source and compare (default: a few, drawn at random).",
)
@json_option
@quiet_option
def verify(
    catalog_path: str,
    operator: str | None,
    no_log: bool,
    checkpoint_files: Sequence[str],
    no_remember: bool,
    allow_unsigned_tail: bool,
    deep: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Check the custody log (hash links, Merkle tree, signed checkpoints), every record
    against it, and every stored file's digests.

    A checkpoint given with --checkpoint, and the one remembered from the last clean
    verification (in $XDG_STATE_HOME/evidence-catalog/), must still be a prefix of the log:
    a log rolled back or rewritten is found.  What media analyses derived is checked against
    the similarity index, and a few analyses (all with --deep) are made again and compared.
    Exit code 1 if anything is wrong, including a catalog database that cannot be read; each
    problem is printed on its own line.  A NOTICE line (Content Credentials that fail
    validation, an analysis made by other tool versions) is about the evidence, not damage,
    and does not change the exit code.
    """
    given = []
    for name in checkpoint_files:
        try:
            given.append((display_path(name), Path(name).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot be read as a checkpoint ({exc})", where=display_path(name)) from exc
    try:
        with open_catalog(catalog_path, operator) as catalog:
            silent = quiet or as_json
            total = catalog.stored_bytes() if shows_progress(quiet=silent) else None  # a bar's total only
            # Drawn from the first bytes hashed: verify forks its worker processes before (a
            # process must not fork while the bar's thread runs).
            with bytes_progress(total, "verifying", quiet=silent, deferred=True) as progress:
                report = catalog.verify(
                    progress=progress,
                    record_event=not no_log,
                    checkpoints=given,
                    remember=not no_remember,
                    allow_unsigned=allow_unsigned_tail,
                    deep=deep,
                )
    except (CatalogNotFoundError, CatalogVersionError):
        raise  # the wrong path or a newer catalog: bad input, not a finding
    except CatalogError as exc:
        # A catalog whose database cannot be read at all is the worst verification result.
        if as_json:
            from evidence_catalog.findings import EntryUnreadable
            from evidence_catalog.results import VerificationReport

            unread = VerificationReport(
                findings=(EntryUnreadable(subject="catalog database", reason=one_line(exc)),),
                records_checked=0,
                artifacts_checked=0,
                bytes_checked=0,
                events_checked=0,
            )
            echo_json(unread.as_dict())
        else:
            click.echo(f"PROBLEM {one_line(exc)}")
        raise SystemExit(EXIT_PROBLEMS) from exc
    if not report.logged and not no_log:
        reason = report.unlogged_reason or "the catalog is not writable"
        click.echo(f"note: {printable(reason)}; this verification was not logged", err=True)
    if report.unsigned_events and report.ok:
        click.echo(
            f"note: the last {report.unsigned_events} custody event(s) are not yet covered by a signed checkpoint "
            "(allowed by --allow-unsigned-tail); sign them with `evidence-catalog checkpoint`",
            err=True,
        )
    if as_json:
        echo_json(report.as_dict())
    else:
        for finding in report.findings:
            click.echo(f"PROBLEM {printable(str(finding))}")
        for notice in report.notices:
            click.echo(f"NOTICE {printable(str(notice))}")
        if not quiet or not report.ok:
            verdict = "verified" if report.ok else f"{len(report.findings)} problem(s) found"
            analyses = (
                f"; {report.analyses_checked} media analysis(es), {report.analyses_rechecked} made again"
                if report.analyses_checked
                else ""
            )
            click.echo(
                f"{verdict}: {report.records_checked} record(s), {report.artifacts_checked} artifact(s), "
                f"{report.bytes_checked} bytes, {report.events_checked} custody event(s){analyses}"
            )
    if not report.ok:
        raise SystemExit(EXIT_PROBLEMS)


@cli.command()
@catalog_option
@click.option("--remove", is_flag=True, help="Remove what is left over and older than an hour (logged).")
@operator_option
@json_option
def fsck(catalog_path: str, remove: bool, operator: str | None, as_json: bool) -> None:
    """List what interrupted work left in the catalog folder that no record claims: orphaned
    blobs and unfinished temporary files (and quarantined damaged copies, which are kept, saying
    which no custody event names).

    Exit code 1 when something is left over (after --remove: something too young to remove).
    """
    import attrs

    with open_catalog(catalog_path, operator) as catalog:
        report = catalog.fsck(remove=remove)
    removed = {e.path for e in report.removed}
    if as_json:
        echo_json(attrs.asdict(report) | {"clean": report.clean})
    else:
        for label, entries in (("orphaned blob", report.orphaned_blobs), ("temporary", report.temporary)):
            for entry in entries:
                state = "removed" if entry.path in removed else f"{entry.age_seconds / 60:.0f} min old"
                click.echo(f"{label:<14} {printable(entry.path)}  {entry.size} B  {state}")
        unlogged = {e.path for e in report.unlogged}
        for entry in report.quarantined:
            said = ", not in the custody log" if entry.path in unlogged else ""
            click.echo(f"{'quarantined':<14} {printable(entry.path)}  {entry.size} B  kept{said}")
        click.echo("clean" if report.clean else "left over: see above (--remove removes what is older than an hour)")
    if not report.clean:
        raise SystemExit(EXIT_PROBLEMS)


@cli.command(name="checkpoint")
@catalog_option
@click.option("--timestamp", "stamp", is_flag=True, help="Have it time-stamped by an RFC 3161 TSA (queued if offline).")
@click.option("--tsa", metavar="URL", help="The TSA (default: $EVIDENCE_CATALOG_TSA_URL, or catalog.toml).")
@click.option("--artifact", "artifacts", multiple=True, metavar="SHA256", help="Time-stamp this artifact too.")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Also write the signed note to this file (must not exist)."
)
@operator_option
@json_option
def checkpoint_cmd(
    catalog_path: str,
    stamp: bool,
    tsa: str | None,
    artifacts: Sequence[str],
    output: str | None,
    operator: str | None,
    as_json: bool,
) -> None:
    """Print the latest signed checkpoint of the custody log (a C2SP signed note), signing a
    new one when the latest does not cover the whole log.  Keep it elsewhere (send it to a
    partner, print it, `--output` it to a drive you keep apart): `verify --checkpoint FILE`
    later shows whether the log still extends it -- the only way to find a log cut short, or a
    whole catalog folder put back to an older copy.

    With --timestamp, the checkpoint (and each --artifact) is sent to an RFC 3161 Time-Stamp
    Authority with every request still queued; when it cannot be reached the requests stay
    queued (exit code 1) for the next --timestamp."""
    from evidence_catalog.serialize import format_timestamp

    result = None
    with open_catalog(catalog_path, operator) as catalog:
        if stamp:
            result = catalog.timestamp(url=tsa, artifacts=list(artifacts))
        elif tsa or artifacts:
            raise InputError("--tsa and --artifact go with --timestamp", where="checkpoint")
        made = catalog.checkpoint()
        key = catalog.log_key_info()
    if output is not None:
        _write_new_file(Path(output), made.note.encode("utf-8"))
        click.echo(f"checkpoint of {made.size} event(s) written to {display_path(output)}", err=True)
    if result is not None:
        for line in result.granted:
            click.echo(f"time-stamped: {line}", err=True)
        for line in result.failed:
            click.echo(f"refused by the TSA: {printable(line)}", err=True)
        if result.pending:
            click.echo(
                f"{result.pending} time-stamp request(s) queued ({printable(result.offline or 'not sent')}); "
                "run `checkpoint --timestamp` again to send them",
                err=True,
            )
    if as_json:
        echo_json(
            {
                "tree_size": made.size,
                "root_hash": made.root,
                "note": made.note,
                "signed_at": format_timestamp(made.at),
                "vkey": key.vkey,
            }
        )
    else:
        click.echo(made.note, nl=False)
    if result is not None and (result.pending or result.failed):
        raise SystemExit(EXIT_PROBLEMS)


def _write_new_file(path: Path, data: bytes) -> None:
    """Write *data* to a file that must not exist yet, durably; nothing is left when it fails."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise InputError("already exists; choose a new file name", where=display_path(path)) from None
    except OSError as exc:
        raise InputError(f"cannot be written ({exc.strerror})", where=display_path(path)) from exc
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise StorageError(f"cannot be written ({exc.strerror})", where=display_path(path)) from exc


@cli.command(name="change-key")
@catalog_option
@click.option(
    "--encrypt",
    is_flag=True,
    help=f"Keep the new key encrypted: its passphrase from ${NEW_PASSPHRASE_ENV}, else asked on the terminal.",
)
@operator_option
@json_option
def change_key(catalog_path: str, encrypt: bool, operator: str | None, as_json: bool) -> None:
    """Hand the custody log over to a new log key, signed by the key in force (logged as
    key.changed).  For a key that may have leaked, or to start protecting it with a passphrase.
    Needs the current key (its passphrase in $EVIDENCE_CATALOG_KEY_PASSPHRASE, if encrypted).
    The old private key is deleted; its public files stay in keys/retired/.  A team copies the
    new keys/ folder to every machine that writes."""
    import attrs

    passphrase = None
    if encrypt:
        passphrase = os.environ.get(NEW_PASSPHRASE_ENV) or None
        if passphrase is None:
            if not sys.stdin.isatty():
                raise InputError(f"give the new key's passphrase in ${NEW_PASSPHRASE_ENV}", where="--encrypt")
            passphrase = click.prompt("Passphrase of the new key", hide_input=True, confirmation_prompt=True)
            if not passphrase:
                raise InputError("the passphrase must not be empty", where="--encrypt")
    with open_catalog(catalog_path, operator) as catalog:
        change = catalog.change_log_key(passphrase=passphrase)
    if as_json:
        echo_json(attrs.asdict(change))
    else:
        click.echo(f"key {change.previous_key_id} handed the log to key {change.key_id} (custody event {change.seq})")
        click.echo(change.vkey)
