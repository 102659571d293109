"""``serve``: the read-only web viewer of a catalog."""

from __future__ import annotations

import click

from evidence_catalog.cli.app import cli
from evidence_catalog.cli.options import catalog_option

#: Where ``serve`` takes a token from when ``--token`` is not given.
TOKEN_ENV = "EVIDENCE_CATALOG_VIEWER_TOKEN"


@cli.command()
@catalog_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free one).")
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    metavar="TOKEN",
    help=f"Require this token on every request (default: ${TOKEN_ENV}; one is made and printed once when "
    "--host is not this machine only).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the viewer in the default browser.")
@click.option("--show-sensitive", is_flag=True, help="Show what sensitivity flags withhold (withheld by default).")
def serve(catalog_path: str, host: str, port: int, token: str | None, open_browser: bool, show_sensitive: bool) -> None:
    """Serve a read-only web viewer of the catalog until Ctrl-C.

    Records with thumbnails and filters, full-text search, each record with its media
    (video and audio with seeking), digests, metadata, reports, claims and custody events,
    the custody log, a map and a timeline; every page also as JSON (add .json).  Nothing is
    written: the catalog is opened read-only.  Material flagged sensitive is withheld unless
    --show-sensitive.

    The viewer listens on 127.0.0.1 (this machine only) by default.  On any other address
    every request needs a token: give --token, or one is made and printed here once; a
    browser logs in at /login.  No access log is written.  To show the viewer to a colleague,
    prefer an SSH tunnel (docs/viewer.md).
    """
    import signal

    from evidence_catalog.catalog import Catalog
    from evidence_catalog.web import is_loopback, new_token
    from evidence_catalog.web import serve as run

    # A server outlives clients that hang up mid-answer (a player drops a range when it seeks):
    # the command's default, to end quietly when its reader goes (SIGPIPE), would kill it.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    made = False
    if token is None and not is_loopback(host):
        token, made = new_token(), True
    catalog = Catalog.open(catalog_path, read_only=True)

    def ready(address: str) -> None:
        click.echo(f"Viewer of {catalog_path} at {address} (read-only; Ctrl-C stops it)", err=True)
        if made:
            click.echo(f"Token (shown once; log in at {address}login): {token}", err=True)
        elif token is not None:
            click.echo(f"Log in at {address}login with the token given.", err=True)
        if open_browser:
            import webbrowser

            webbrowser.open(address + ("login" if token else "records"))

    try:
        run(catalog, host=host, port=port, token=token, show_sensitive=show_sensitive, on_ready=ready)
    finally:
        catalog.close()
