"""Build hook: compiles the optional C module of the custody log's salted commitments
(``evidence_catalog/_commitments.c``) into the wheel, or beside the sources for an editable
install.

The module is optional.  Where it cannot be built (no C compiler, no OpenSSL headers:
Debian's ``libssl-dev``), the build says so and goes on without it, and the package makes the
very same bytes in pure Python, more slowly.  ``EVIDENCE_CATALOG_PURE_PYTHON=1`` at build time
leaves it out on purpose.  The compiler and its flags are the ones the running Python was built
with (``sysconfig``; ``CC`` and ``LDSHARED`` in the environment replace them), as setuptools
would use them.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("evidence_catalog") / "_commitments.c"


class CommitmentsBuildHook(BuildHookInterface):
    """Compiles ``_commitments.c``, or warns and leaves it out."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        source = Path(self.root) / SOURCE
        name = "_commitments" + str(sysconfig.get_config_var("EXT_SUFFIX"))
        self._scratch = None
        if version == "editable":  # the package is imported from the sources: put it there
            built = source.parent / name
            built.unlink(missing_ok=True)  # (one built before, from another source, is never kept)
        if os.environ.get("EVIDENCE_CATALOG_PURE_PYTHON"):
            return
        if version != "editable":
            self._scratch = tempfile.mkdtemp(prefix="evidence-catalog-build-")
            built = Path(self._scratch) / name
        problem = compile_module(source, built)
        if problem is not None:
            self.app.display_warning(
                f"evidence_catalog: the C module of the custody log's commitments was not built ({problem}); "
                "the package works without it, more slowly (a C compiler and OpenSSL's headers build it)"
            )
            return
        if version != "editable":
            build_data["force_include"][str(built)] = f"evidence_catalog/{name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def compile_module(source: Path, target: Path) -> str | None:
    """Compile and link *source* into the extension module *target*; ``None``, or what failed."""
    config = sysconfig.get_config_vars()
    compiler = shlex.split(os.environ.get("CC") or str(config.get("CC") or "cc"))
    linker = shlex.split(os.environ.get("LDSHARED") or str(config.get("LDSHARED") or "cc -shared"))
    if shutil.which(compiler[0]) is None:
        return f"no C compiler ({compiler[0]})"
    include = str(sysconfig.get_paths()["include"])
    digest = hashlib.sha256(source.read_bytes()).hexdigest()  # checked at import (evidence_catalog/native.py)
    flags = ["-O2", "-fPIC", "-fno-strict-aliasing", "-Wall", "-Wno-deprecated-declarations", f"-I{include}"]
    flags.append(f'-DEC_SOURCE_SHA256="{digest}"')
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        obj = Path(scratch) / "_commitments.o"
        partial = target.with_name(target.name + ".part")
        steps = (
            [*compiler, *flags, "-c", str(source), "-o", str(obj)],
            [*linker, str(obj), "-lcrypto", "-o", str(partial)],
        )
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, check=False)
            except OSError as exc:
                partial.unlink(missing_ok=True)
                return f"{step[0]}: {exc.strerror}"
            if done.returncode != 0:
                partial.unlink(missing_ok=True)
                lines = (done.stderr or done.stdout).strip().splitlines()
                errors = [line for line in lines if "error" in line.lower()]
                said = (errors or lines or [f"{step[0]} exited with status {done.returncode}"])[0]
                return said.strip()
        os.replace(partial, target)
    return None
