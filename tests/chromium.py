"""Headless Debian Chromium for the browser tests (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

SCREENSHOTS = Path(tempfile.gettempdir()) / "cnnlab-screenshots"

# What Debian's chromium needs to run headless as root on a machine with no network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def chromium_path() -> str:
    """Debian's chromium (or ``$CNNLAB_CHROMIUM``); skips the test when there is none."""
    for candidate in (os.environ.get("CNNLAB_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("Chromium is not installed (apt-get install -y chromium)")


def offline_page(browser, origins: tuple[str, ...], viewport: dict[str, int], timeout_ms: int):
    """A new context and page that may load only URLs starting with one of ``origins``.

    Every other request is aborted and recorded in ``page.blocked``. Returns ``(context, page)``;
    close the context when done.
    """
    context = browser.new_context(viewport=viewport)
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith(origins):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.blocked = blocked
    return context, page
