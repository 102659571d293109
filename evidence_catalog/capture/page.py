"""Capturing a web page that is not media (an article, a post, a channel page) in a real browser:
the system's Chromium, driven by Playwright, in a process of its own.

:func:`load_page` runs :mod:`evidence_catalog.capture.browser` in a new process group in the
capture's work area and waits for it at most :attr:`PageOptions.hard_limit` seconds; past that
the whole group (Python, Playwright's driver, Chromium and its renderers) is killed and the
capture fails with nothing kept.  The page itself has :attr:`PageOptions.time_limit` seconds to
load; a page that has not loaded by then is captured as it is (a *partial* capture, said in the
acquisition's note).  What the browser process wrote is used only when it wrote its result
last (renamed into place), and only the files that result names.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from attrs import frozen

from evidence_catalog import model
from evidence_catalog.capture.archiving import WACZ_NAME
from evidence_catalog.capture.downloaded import CapturedFile
from evidence_catalog.capture.options import CaptureFailed
from evidence_catalog.errors import InputError

__all__ = ["PageCapture", "PageOptions", "chromium_path", "load_page"]

#: The browser's fresh profile, in the capture's work area.
PROFILE = ".profile"
#: How to get a browser where there is none.
INSTALL_HINT = "install Debian's chromium package (apt-get install chromium) and Playwright (pip install playwright)"


def chromium_path() -> str:
    """Where the system's Chromium is; :class:`InputError` when it (or Playwright) is not
    installed.  No browser is ever downloaded."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise InputError(f"Chromium is not installed: {INSTALL_HINT}", where="--page")
    try:
        import playwright  # noqa: F401
    except ImportError:
        raise InputError(f"Playwright is not installed: {INSTALL_HINT}", where="--page") from None
    return found


@frozen
class PageOptions:
    """What a user can ask of a page capture."""

    #: The browser window's size in CSS pixels (the screenshot's width; the PDF is printed A4).
    width: int = 1280
    height: int = 900
    #: Seconds the page has to load; after that it is captured as it is (a partial capture).
    time_limit: float = 30.0
    #: Seconds the whole capture may take (browser start, load, screenshot, PDF, archive);
    #: after that the browser is killed and nothing is kept.  ``None``: time limit + 120.
    hard_limit: float | None = None
    #: The screenshot is cut at this height in pixels (a page of endless scroll, a 200 MB page).
    max_height: int = 20000
    #: Responses larger than this are recorded without their body (``WARC-Truncated: length``).
    max_resource_bytes: int = 100 * 1024 * 1024
    #: Pages of the PDF print at most.
    max_pdf_pages: int = 100
    #: The User-Agent header to send; Chromium's own (headless) when ``None``.
    user_agent: str | None = None

    def __attrs_post_init__(self) -> None:
        for name, low, high in (("width", 200, 8000), ("height", 200, 8000), ("max_height", 200, 200000)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InputError(f"must be a whole number from {low} to {high}", where=name.replace("_", " "))
        for name in ("time_limit", "hard_limit"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and 0 < value <= 3600):
                raise InputError("must be between 0 and 3600 seconds", where=name.replace("_", " "))
        if self.hard_limit is not None and self.hard_limit < self.time_limit:
            raise InputError("must not be shorter than the time limit", where="hard limit")
        for name in ("max_resource_bytes", "max_pdf_pages"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError("must be a positive whole number", where=name.replace("_", " "))
        if self.user_agent is not None and (not self.user_agent.strip() or not self.user_agent.isprintable()):
            raise InputError("must be printable text", where="user agent")

    @property
    def limit(self) -> float:
        """The hard limit in seconds."""
        return self.hard_limit if self.hard_limit is not None else self.time_limit + 120.0

    def describe(self) -> tuple[str, ...]:
        """The settings as the acquisition records them."""
        return (
            f"viewport={self.width}x{self.height}",
            f"time_limit={self.time_limit:g}s",
            f"hard_limit={self.limit:g}s",
            f"max_screenshot_height={self.max_height}",
            f"max_resource_bytes={self.max_resource_bytes}",
            f"max_pdf_pages={self.max_pdf_pages}",
            f"user_agent={self.user_agent or 'chromium default'}",
            "downloads=refused",
            "popups=closed",
            "service_workers=blocked",
        )


@frozen
class PageCapture:
    """What a page capture brought back: its files (the screenshot first) and what it saw."""

    files: tuple[CapturedFile, ...]
    final_url: str
    http_status: int | None
    title: str
    #: Chromium's name and version (``Chrome/120.0.6099.224``), and the User-Agent it sent.
    browser: str
    user_agent: str
    partial: bool
    #: What the capture did not keep as the page had it (partial load, pop-ups, downloads ...).
    notes: tuple[str, ...]
    withheld: str | None

    @property
    def tools(self) -> tuple[model.Agent, ...]:
        """Chromium, Playwright, warcio and py-wacz, with their versions."""
        from evidence_catalog.capture.archiving import _version, agents

        name, _, version = self.browser.partition("/")
        return (
            model.Agent(name=f"Chromium ({name})", kind=model.AgentKind.SOFTWARE, version=version or None),
            model.Agent(name="Playwright", kind=model.AgentKind.SOFTWARE, version=_version("playwright")),
            *agents(),
        )


def load_page(url: str, work: Path, options: PageOptions) -> PageCapture:
    """Capture the page at *url* in Chromium into the empty folder *work*; raise
    :class:`CaptureFailed` when it could not be captured (nothing in *work* is then of use)."""
    from evidence_catalog.capture.browser import RESULT_NAME

    chromium = chromium_path()
    settings = {
        "url": url,
        "work": str(work),
        "chromium": chromium,
        "width": options.width,
        "height": options.height,
        "load_timeout": options.time_limit,
        "max_height": options.max_height,
        "max_resource_bytes": options.max_resource_bytes,
        "max_pdf_pages": options.max_pdf_pages,
        "user_agent": options.user_agent,
        "parent": os.getpid(),
        "hard_limit": options.limit,
    }
    (work / ".settings.json").write_text(json.dumps(settings), encoding="utf-8")
    log = open(work / ".browser.log", "wb")  # noqa: SIM115 -- closed below
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "evidence_catalog.capture.browser", str(work / ".settings.json")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
        try:
            process.wait(timeout=options.limit)
        except subprocess.TimeoutExpired:
            _kill(process, work / PROFILE)
            raise CaptureFailed(
                f"the capture did not finish within {options.limit:g} s: the browser was stopped and nothing was kept"
            ) from None
        except BaseException:
            _kill(process, work / PROFILE)
            raise
        finally:
            _kill(process, work / PROFILE)  # whatever the browser left (a renderer of a crashed browser)
    finally:
        log.close()
    result_file = work / RESULT_NAME
    if not result_file.is_file():
        tail = (work / ".browser.log").read_bytes()[-300:].decode("utf-8", "replace").strip().splitlines()
        reason = tail[-1] if tail else f"exit status {process.returncode}"
        raise CaptureFailed(f"the browser process ended without a result ({reason}); nothing was kept")
    result = json.loads(result_file.read_text(encoding="utf-8"))
    if not result.get("ok"):
        raise CaptureFailed(str(result.get("error") or "the page could not be captured"))
    files = (
        CapturedFile(work / "screenshot.png", model.ArtifactRole.SCREENSHOT),
        CapturedFile(work / "page.html", model.ArtifactRole.RENDERED_PAGE),
        CapturedFile(work / "page.pdf", model.ArtifactRole.PAGE_PRINT),
        CapturedFile(work / "page.txt", model.ArtifactRole.PAGE_TEXT),
        CapturedFile(work / WACZ_NAME, model.ArtifactRole.WEB_ARCHIVE),
    )
    missing = [f.path.name for f in files if not f.path.is_file()]
    if missing:
        raise CaptureFailed(f"the browser did not write {', '.join(missing)}; nothing was kept")
    return PageCapture(
        files=files,
        final_url=str(result["final_url"]),
        http_status=result.get("status"),
        title=str(result.get("title") or ""),
        browser=str(result["browser"]),
        user_agent=str(result["user_agent"]),
        partial=bool(result.get("partial")),
        notes=tuple(str(n) for n in result.get("notes") or ()),
        withheld=result.get("withheld"),
    )


def _kill(process: subprocess.Popen[bytes], profile: Path) -> None:
    """Kill the browser process's group, then any process still running with the capture's
    profile (Chromium's helpers may leave the group), and wait until they are gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while (left := _browsers_of(profile)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _browsers_of(profile: Path) -> list[int]:
    """The processes (on Linux: read from /proc) whose command line names *profile*."""
    marker = os.fsencode(f"--user-data-dir={profile}")
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as stream:
                        command = stream.read()
                except OSError:
                    continue
                if marker in command:
                    found.append(int(entry.name))
    return found
