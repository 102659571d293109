"""A local, read-only web viewer of a catalog (``evidence-catalog serve``).

>>> from evidence_catalog import Catalog
>>> from evidence_catalog.web import make_app
>>> app = make_app(Catalog.open("my-catalog", read_only=True))   # doctest: +SKIP

:func:`make_app` gives an ASGI application (Starlette) for uvicorn or any ASGI server;
:func:`serve` runs it with uvicorn, as the command does.  Every page has its JSON at the same
address with ``.json`` (schemas ``viewer-*`` in ``schemas/``).  See ``docs/viewer.md``.
"""

from __future__ import annotations

from evidence_catalog.web.app import make_app
from evidence_catalog.web.security import is_loopback, new_token
from evidence_catalog.web.server import serve

__all__ = ["is_loopback", "make_app", "new_token", "serve"]
