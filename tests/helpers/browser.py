"""A real browser for the console's tests: Debian's Chromium driven by Playwright.

Playwright's own browser download is never used (no ``playwright install``, nothing
from the network): the system's ``/usr/bin/chromium`` is launched headless, with every
background service that would phone home switched off.  Tests using :func:`browser`
are skipped, saying why, when Chromium or Playwright is missing.

Also here: a node with its console on free loopback ports (:func:`console_node`), and
the checks of a screenshot (:func:`not_blank`).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: The two screens the console is made for.
LAPTOP = {"width": 1366, "height": 768}
WIDE = {"width": 1920, "height": 1080}


def missing() -> str | None:
    """Why no browser test can run here (None when they can)."""
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        return "needs Chromium at /usr/bin/chromium (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs Playwright for Python (pip install playwright; no browser download)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session's browser tests."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    executable = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (own cookies) the size of a laptop screen, in a time zone far
    from UTC so local times are visibly converted; the test fails on a script error."""
    context = browser.new_context(viewport=LAPTOP, timezone_id="Asia/Tokyo", locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.script_errors = errors  # type: ignore[attr-defined]
    page.goto = _goto_retrying(page)  # type: ignore[method-assign]
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"script errors on the page: {errors}"


def _goto_retrying(page: Any) -> Any:
    """``page.goto`` that goes again when the page's own navigation (a reload once an
    action is done, as the job page does) aborted ours (net::ERR_ABORTED)."""
    original = page.goto

    def goto(url: str, **kwargs: Any) -> Any:
        for attempt in range(3):
            try:
                return original(url, **kwargs)
            except Exception as exc:
                if "ERR_ABORTED" not in str(exc) or attempt == 2:
                    raise
                page.wait_for_load_state()
        return None

    return goto


def not_blank(png: Path, min_std: float = 8.0) -> float:
    """The pixel standard deviation of a screenshot; fails when it is (nearly) one colour."""
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    std = float(pixels.std())
    assert std >= min_std, f"{png} looks blank (grey level std {std:.1f})"
    return std


def shoot(page: Any, folder: Path, name: str, *, full_page: bool = True) -> Path:
    """Screenshot ``page`` to ``folder/name.png`` and check it is not blank."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    not_blank(path)
    return path


@dataclass
class ConsoleNode:
    """A started node and its console (``url``), stopped by :func:`console_node`."""

    node: Any
    console: Any
    server: Any

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return int(self.node.port)


@contextlib.contextmanager
def console_node(folder: Path, toml: str | None = None, **overrides: Any
                 ) -> Iterator[ConsoleNode]:
    """A node on a free DICOM port with its console on a free HTTP port (loopback,
    no users: every request is the local administrator), as ``printscp serve`` wires
    them (the spool renders jobs the console writes, e.g. reprints)."""
    from helpers.nodes import make_node
    from printscp.http.app import create_app
    from printscp.http.context import Console
    from printscp.http.server import HttpServer

    node = make_node(folder, toml, **overrides)
    try:
        enqueue = node.spool.enqueue
        console = Console(node.config, enqueue=enqueue, dicom_port=lambda: node.port)
        sync = getattr(console.job_index, "sync", None)
        if sync is not None:
            sync()
        server = HttpServer(create_app(console), "127.0.0.1", 0).start()
        try:
            yield ConsoleNode(node, console, server)
        finally:
            server.stop()
    finally:
        node.stop()
