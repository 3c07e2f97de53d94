"""Headless Debian Chromium for the browser tests (never a downloaded browser)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
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


def wait_for_server(proc: subprocess.Popen, base: str, log: Path, seconds: float, what: str) -> None:
    """Wait until the Jupyter server at ``base`` answers ``/api/status``; fail with its log when it
    exits or does not answer within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{base}/api/status", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer on {base} in {seconds:g} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.3)


@contextlib.contextmanager
def evidence_on_failure(page, log: Path, prefix: str = "cnnlab-browser-failure-") -> Iterator[None]:
    """Any failure inside names a folder holding a screenshot and the server log."""
    try:
        yield
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            raise
        shots = Path(tempfile.mkdtemp(prefix=prefix))
        try:
            page.screenshot(path=str(shots / "page.png"), full_page=True)
        except Exception as shot_err:  # the page may be gone
            (shots / "no-screenshot.txt").write_text(str(shot_err))
        shutil.copy2(log, shots / log.name)
        message = str(err) if isinstance(err, AssertionError) else f"{type(err).__name__}: {err}"
        pytest.fail(f"{message}\nscreenshot and server log in {shots}", pytrace=False)


ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def axe_source() -> str:
    """axe-core's ``axe.min.js`` (npm, pinned by package-lock.json), to put into a page as a script.

    Runs ``npm ci`` first when it is missing (as ``make book`` does for MathJax); fails when it cannot.
    """
    if not AXE.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(
                f"{AXE.relative_to(ROOT)} is missing and npm is not installed: install npm, run `npm ci`"
            )
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, capture_output=True, text=True
        )
        if proc.returncode != 0 or not AXE.is_file():
            pytest.fail(f"npm ci did not install axe-core:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return AXE.read_text()
