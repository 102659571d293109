"""Capture a video page into a catalog, offline: serves ``demo-site/`` on 127.0.0.1 and runs
``evidence-catalog capture`` on it (the page, its video and its thumbnail are made up).

    python examples/capture_demo.py CATALOG_DIR
"""

from __future__ import annotations

import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from evidence_catalog.cli import main

SITE = Path(__file__).parent / "demo-site"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def run(catalog: str) -> int:
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        print(f"$ evidence-catalog capture {url} --catalog {catalog} --tag demo")
        try:
            return main(["capture", url, "--catalog", catalog, "--tag", "demo", "--retries", "0"])
        finally:
            server.shutdown()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
