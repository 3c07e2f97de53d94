"""The hub demo's student in Chromium: logs in to the hub, starts its server, and in JupyterLab's
Assignments tab (nbgrader's assignment list) fetches, submits, fetches feedback and opens it.

Debian's Chromium through Playwright (never a downloaded browser); screenshots of each step go to
``<tmp>/cnnlab-screenshots/hub-*.png``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autograder.hub.demo import Demo

SCREENSHOTS = Path(tempfile.gettempdir()) / "cnnlab-screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TIMEOUT_MS = 180_000  # a server start on two busy cores


def chromium() -> str:
    for candidate in (os.environ.get("CNNLAB_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    from autograder.hub.demo import HubDemoError

    raise HubDemoError("Chromium is not installed (apt-get install chromium), or pass --no-browser")


class StudentBrowser:
    """One student's browser session (a context manager)."""

    def __init__(self, demo: Demo, student: str) -> None:
        self.demo, self.student = demo, student

    def __enter__(self) -> StudentBrowser:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        SCREENSHOTS.mkdir(exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.browser.close()
        finally:
            self._pw.stop()

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SCREENSHOTS / f"hub-{name}.png"))

    # -- steps -----------------------------------------------------------------------------------
    def login(self) -> None:
        from autograder.hub.demo import PASSWORD

        page = self.page
        page.goto(f"{self.demo.url}/hub/login")
        page.fill("input[name=username]", self.student)
        page.fill("input[name=password]", PASSWORD)
        page.click("#login_submit")
        page.wait_for_url(f"**/user/{self.student}/lab**", timeout=TIMEOUT_MS)
        page.get_by_text("Nbgrader", exact=True).first.wait_for()

    def open_assignments(self) -> None:
        page = self.page
        page.get_by_text("Nbgrader", exact=True).first.click()
        page.get_by_text("Assignment List", exact=True).first.click()
        page.locator("#released_assignments_list").wait_for()

    def fetch_and_submit(self) -> None:
        from autograder.hub.demo import ASSIGNMENT

        self.login()
        self.open_assignments()
        released = self.page.locator("#released_assignments_list")
        released.get_by_text(ASSIGNMENT).wait_for()
        self.shot("1-released")
        released.get_by_role("button", name="Fetch").first.click()
        fetched = self.page.locator("#fetched_assignments_list")
        fetched.get_by_role("button", name="Submit").first.wait_for()
        self.demo.do_work(self.student)  # the student writes cnnlab/conv.py (as its UNIX user)
        fetched.get_by_role("button", name="Submit").first.click()
        submitted = self.page.locator("#submitted_assignments_list")
        submitted.get_by_text(ASSIGNMENT).first.wait_for()
        self.shot("2-submitted")

    def fetch_feedback(self) -> str:
        """Fetch the feedback in the Assignments tab, follow its "view feedback" link and open the
        HTML; returns what the page says of the score."""
        from autograder.hub.demo import ASSIGNMENT, COURSE, HubDemoError

        page = self.page
        page.reload()
        page.get_by_text("Nbgrader", exact=True).first.wait_for()
        self.open_assignments()
        submitted = page.locator("#submitted_assignments_list")
        submitted.get_by_role("button", name="Fetch Feedback").first.click()
        view = submitted.get_by_text("(view feedback)").first
        view.wait_for()
        self.shot("3-feedback-fetched")
        view.click()  # JupyterLab's file browser goes to the feedback folder
        folder = self.demo.home(self.student) / COURSE / ASSIGNMENT / "feedback"
        deadline = time.monotonic() + 60
        found: list[Path] = []
        while not found and time.monotonic() < deadline:
            found = sorted(folder.glob("*/*.html"))
            time.sleep(0.5)
        if not found:
            raise HubDemoError(f"{self.student}: no feedback HTML in {folder} after Fetch Feedback")
        rel = found[-1].relative_to(self.demo.home(self.student))
        page.goto(f"{self.demo.url}/user/{self.student}/files/{urllib.parse.quote(str(rel))}")
        page.get_by_text(ASSIGNMENT).first.wait_for()
        self.shot("4-feedback")
        text = page.inner_text("body")
        score = next((line.strip() for line in text.splitlines() if "Score" in line), "")
        return f"{rel}: {score}" if score else str(rel)

    def instructor_formgrader(self, instructor: str) -> str:
        """The instructor logs in (a fresh browser context) and opens the course's formgrader in a
        tab of its own (the hub's ``frame-ancestors`` policy blanks it inside an iframe); returns
        the page's Content-Security-Policy."""
        from autograder.hub.demo import ASSIGNMENT, COURSE, PASSWORD

        context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{self.demo.url}/hub/login?next=/services/{COURSE}/formgrader")
            page.fill("input[name=username]", instructor)
            page.fill("input[name=password]", PASSWORD)
            with page.expect_response(lambda r: r.url.rstrip("/").endswith("/formgrader")) as info:
                page.click("#login_submit")
            # the assignments table (the collapsed "Current configuration" also names it)
            page.locator("td", has_text=ASSIGNMENT).first.wait_for()
            page.screenshot(path=str(SCREENSHOTS / "hub-5-instructor-formgrader.png"))
            return info.value.headers.get("content-security-policy", "none")
        finally:
            context.close()
