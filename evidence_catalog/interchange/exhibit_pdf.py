"""An exhibit's HTML printed to PDF by WeasyPrint (PDF/A-3b), with nothing fetched.

WeasyPrint is imported here only, when a PDF is asked for; it needs Pango (Debian
``libpango-1.0-0`` and ``libpangoft2-1.0-0``) and fonts for every script the record holds
(``fonts-dejavu-core``, ``fonts-noto-core``).  Its URL fetcher refuses everything but ``data:``
URIs, so a PDF holds exactly what the HTML holds and rendering never touches the network or
the disk beyond the fonts.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from evidence_catalog.errors import InputError

#: The PDF variant asked of WeasyPrint: PDF/A-3b (archival; fonts embedded, colours defined).
PDF_VARIANT = "pdf/a-3b"


def weasyprint_version() -> str:
    """WeasyPrint's version; :class:`~evidence_catalog.errors.InputError` saying what to install
    (or to ask for the HTML only) where it cannot be loaded."""
    return str(_weasyprint().__version__)


def _weasyprint() -> Any:
    try:
        import weasyprint
    except ImportError as exc:
        raise InputError(
            "making a PDF needs WeasyPrint (pip install weasyprint) and Pango "
            "(apt-get install libpango-1.0-0 libpangoft2-1.0-0); the HTML exhibit needs neither",
            where="pdf",
        ) from exc
    except OSError as exc:  # the Python package is there, a system library is not
        raise InputError(
            f"WeasyPrint cannot load a system library it needs ({exc}); install Pango "
            "(apt-get install libpango-1.0-0 libpangoft2-1.0-0), or write the HTML exhibit only",
            where="pdf",
        ) from exc
    return weasyprint


def html_to_pdf(html: str, *, title: str) -> bytes:
    """The PDF of an exhibit's *html*: PDF/A-3b, fonts embedded, nothing fetched.  The same
    HTML and WeasyPrint version give the same bytes (no creation time is written)."""
    weasyprint = _weasyprint()
    quiet = logging.getLogger("weasyprint")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its warnings about CSS it ignores are not the user's concern
    try:
        # data: URIs only: anything else (a file, a web address) is refused, never fetched.
        fetcher = weasyprint.URLFetcher(allowed_protocols={"data"}, allow_redirects=False)
        document = weasyprint.HTML(string=html, url_fetcher=fetcher, base_url="about:blank").render()
        document.metadata.title = title
        document.metadata.created = None
        document.metadata.modified = None
        # The file identifier PDF asks for: from the content, so the same HTML gives the same bytes.
        identifier = hashlib.sha256(html.encode("utf-8", "backslashreplace")).hexdigest()[:32].encode("ascii")
        data = document.write_pdf(pdf_variant=PDF_VARIANT, pdf_identifier=identifier)
    finally:
        quiet.setLevel(level)
    assert isinstance(data, bytes)
    return data
