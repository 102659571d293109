"""A real RFC 3161 Time-Stamp Authority on 127.0.0.1 for the tests: ``openssl ts -reply`` behind
an HTTP server, with a CA and a TSA certificate (extendedKeyUsage timeStamping, critical) made
with ``openssl`` in a temporary folder.  Tokens it issues verify with ``openssl ts -verify``."""

from __future__ import annotations

import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

_CONFIG = """
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256

[ v3_tsa ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
"""


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class LocalTSA:
    """``with LocalTSA() as tsa:`` -- ``tsa.url`` to send requests to, ``tsa.ca_file`` to verify
    with; ``tsa.down = True`` makes it refuse connections' requests (HTTP 503); ``tsa.requests``
    counts the requests answered."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="tsa-")
        self.dir = Path(self._tmp.name)
        self.down = False
        self.requests = 0
        d = self.dir
        (d / "serial").write_text("01\n")
        (d / "tsa.cnf").write_text(_CONFIG.format(dir=d))
        _run("req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "3650", "-subj", "/CN=Test TSA Root", cwd=d)  # fmt: skip
        _run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
             "-subj", "/CN=Test Time-Stamp Authority", cwd=d)  # fmt: skip
        _run("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "tsa.pem", "-days", "3650", "-extfile", "tsa.cnf", "-extensions", "v3_tsa", cwd=d)  # fmt: skip
        self.ca_file = d / "ca.pem"
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if tsa.down:
                    self.send_error(503, "TSA down for the test")
                    return
                with tempfile.TemporaryDirectory(dir=d) as work:
                    query, reply = Path(work) / "q.tsq", Path(work) / "r.tsr"
                    query.write_bytes(body)
                    result = subprocess.run(
                        ["openssl", "ts", "-reply", "-config", str(d / "tsa.cnf"), "-queryfile", str(query),
                         "-inkey", str(d / "tsa.key"), "-signer", str(d / "tsa.pem"), "-out", str(reply)],
                        capture_output=True,
                    )  # fmt: skip
                    if result.returncode != 0:
                        self.send_error(400, "bad request")
                        return
                    data = reply.read_bytes()
                tsa.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/tsa"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LocalTSA:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._tmp.cleanup()

    def verify(self, token: Path, data: Path) -> subprocess.CompletedProcess[str]:
        """``openssl ts -verify`` of a token over the data it stamps, with this TSA's CA."""
        return subprocess.run(
            ["openssl", "ts", "-verify", "-in", str(token), "-token_in", "-data", str(data),
             "-CAfile", str(self.ca_file), "-untrusted", str(self.dir / "tsa.pem")],
            capture_output=True,
            text=True,
        )  # fmt: skip
