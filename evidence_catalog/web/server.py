"""Running the viewer with uvicorn, as ``evidence-catalog serve`` does."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evidence_catalog import Catalog


def serve(
    catalog: Catalog,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    show_sensitive: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the viewer of *catalog* on *host*:*port* until interrupted (Ctrl-C).

    Uvicorn's access log is off: it would write every address asked for, and the viewer
    writes none of what it serves anywhere.  *on_ready* is called with the viewer's address
    once the server listens (to print it, or open a browser).
    """
    import uvicorn

    from evidence_catalog.web.app import make_app

    app = make_app(catalog, token=token, show_sensitive=show_sensitive, host=host)
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=True,
        proxy_headers=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    bound = sock.getsockname()
    # Bound to every address of the machine: named by the machine's name, which a colleague can
    # open (0.0.0.0 is not an address a browser elsewhere reaches).
    name = socket.gethostname() if str(bound[0]) in ("0.0.0.0", "::") else str(bound[0])
    shown = f"[{name}]" if ":" in name else name
    address = f"http://{shown}:{bound[1]}/"
    if on_ready is not None:
        original = server.startup

        async def startup(sockets: list[socket.socket] | None = None) -> None:
            await original(sockets=sockets)
            if server.started:
                on_ready(address)

        server.startup = startup  # type: ignore[method-assign]
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on *host*:*port* (0: a free port), or an :class:`InputError` that
    says why not (a port in use, an address not of this machine)."""
    from evidence_catalog.errors import InputError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"cannot resolve {host!r}: {exc.strerror}", where="host") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host} port {port}: {exc.strerror or exc}", where="port") from exc
    sock.set_inheritable(True)
    return sock
