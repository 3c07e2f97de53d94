"""The self-study book (``make book``) in a real browser, with no network.

Builds ``_build/book`` with ``python -m tools.book`` unless it is up to date, serves it from a local
http.server on 127.0.0.1 and opens every page in headless Chromium (Debian's ``chromium``, driven by
Playwright) with every request outside that origin blocked. Checks: the landing page links to every
notebook; the formulas are typeset by the vendored MathJax (``mjx-container``, its fonts loaded); every
figure loads; no cell output is an error; each task has a "Show solution" dropdown, collapsed by default,
holding the reference function. Accessibility (issue 23): axe-core (npm, pinned by package-lock.json,
injected into each page) finds no serious or critical violation on any page of the book; each page has
one H1 and no skipped heading levels; every figure has alt text that is not a file name.

Skipped when Playwright or Chromium is missing (``apt-get install chromium``; never ``playwright install``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from chromium import CHROMIUM_ARGS, SCREENSHOTS, axe_source, chromium_path, offline_page

from autograder.reference import load_reference

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.stem for p in (ROOT / "solutions" / "notebooks").glob("*.ipynb"))
TASKS = load_reference().tasks.TASKS
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install playwright)"
    )
    executable = chromium_path()
    with sync_api.sync_playwright() as p:
        # scrollbars drawn as a reader's browser draws them (Playwright hides them by default), so that
        # the layout test can see a formula's scrollbar
        browser = p.chromium.launch(
            executable_path=executable,
            args=CHROMIUM_ARGS,
            headless=True,
            ignore_default_args=["--hide-scrollbars"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def book() -> Path:
    """``_build/book``, built now unless it is up to date."""
    sys.path.insert(0, str(ROOT))
    from tools import book as tools_book

    if not NOTEBOOKS:
        pytest.fail("no notebooks in solutions/notebooks")
    if not tools_book.is_fresh():
        proc = subprocess.run(
            [sys.executable, "-m", "tools.book"], cwd=ROOT, capture_output=True, text=True, timeout=1200
        )
        assert proc.returncode == 0, f"make book failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return tools_book.OUT


@pytest.fixture(scope="module")
def server(book: Path):
    """An http.server on 127.0.0.1 serving the book; yields its origin."""
    handler = functools.partial(_QuietHandler, directory=str(book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def page(browser, server):
    """A page that may load only from the book's own origin and data: URLs (the figures are inline PNGs);
    ``page.blocked`` lists the rest."""
    context, page = offline_page(browser, (server + "/", "data:"), {"width": 1280, "height": 900}, TIMEOUT_MS)
    page.js_errors = []
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))
    try:
        yield page
    finally:
        context.close()


def _screenshot(page, prefix: str) -> str:
    shots = Path(tempfile.mkdtemp(prefix=prefix))
    path = shots / "page.png"
    try:
        page.screenshot(path=str(path), full_page=True)
        return f"screenshot: {path}"
    except Exception as err:  # the page may be gone
        return f"(no screenshot: {err})"


@contextlib.contextmanager
def _screenshot_on_failure(page):
    """A timeout or error inside becomes a failure naming a screenshot of the page."""
    try:
        yield
    except Exception as err:
        pytest.fail(
            f"{type(err).__name__}: {err}\nat {page.url}\n{_screenshot(page, 'cnnlab-book-failure-')}"
        )


def _fail(page, what: str) -> None:
    """Fail with ``what``, and a screenshot of the page in a temp dir named in the message."""
    pytest.fail(f"{what}\nat {page.url}\n{_screenshot(page, 'cnnlab-book-failure-')}")


def _check(page, ok: bool, what: str) -> None:
    if not ok:
        _fail(page, what)


def _open(page, url: str) -> None:
    page.goto(url, wait_until="load")
    page.wait_for_selector("article.bd-article")


def _wait_typeset(page) -> dict:
    """Wait until MathJax has typeset every formula on the page; returns counts and font states."""
    page.wait_for_function(
        """() => {
            const maths = document.querySelectorAll('article .math');
            if (maths.length === 0) return true;
            if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return false;
            return [...maths].every(m => m.querySelector('mjx-container'));
        }"""
    )
    return page.evaluate(
        """async () => {
            await document.fonts.ready;
            const fonts = [...document.fonts].filter(f => f.family.includes('MJX'));
            return {
                math: document.querySelectorAll('article .math').length,
                typeset: document.querySelectorAll('article mjx-container').length,
                errors: document.querySelectorAll('article mjx-merror').length,
                fonts_loaded: fonts.filter(f => f.status === 'loaded').length,
                fonts_failed: fonts.filter(f => f.status === 'error').map(f => f.family),
            };
        }"""
    )


def _images(page) -> list[dict]:
    """Every <img> of the page once it has loaded or failed: src and naturalWidth."""
    return page.evaluate(
        """async () => {
            const imgs = [...document.querySelectorAll('article img')];
            const settled = img => new Promise(done => {
                img.addEventListener('load', done);
                img.addEventListener('error', done);
            });
            await Promise.all(imgs.map(img => (img.complete ? null : settled(img))));
            return imgs.map(img => ({src: img.getAttribute('src'), width: img.naturalWidth}));
        }"""
    )


SEVERE = ("serious", "critical")


def axe_violations(page) -> list[dict]:
    """axe-core's violations on the page as it is now: id, impact, help and the first few nodes.

    ``axe.min.js`` comes from npm's axe-core (``npm ci``; pinned by package-lock.json) and is put into
    the page as a script, so the page needs no network.
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source())
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
                nodes: v.nodes.slice(0, 4).map(n => n.target.join(' ') + ': ' + n.html.slice(0, 160)),
            }));
        }"""
    )


# Every heading of the page in document order (level, text), shown or not (a print-only copy of the title
# counts: a static audit sees it), and every <img> of the article with its alt.
OUTLINE_JS = """() => ({
    headings: [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')]
        .map(h => [Number(h.tagName[1]), h.textContent.trim().slice(0, 60)]),
    images: [...document.querySelectorAll('article img')]
        .map(i => ({src: (i.getAttribute('src') || '').slice(0, 60), alt: i.getAttribute('alt')})),
})"""

FILE_NAME = re.compile(r"^\S+\.(png|jpe?g|svg|gif)$", re.IGNORECASE)


def _audit(page, name: str) -> None:
    """axe: no serious or critical violation; one H1, no skipped level; alt text on every figure."""
    _wait_typeset(page)
    severe = [v for v in axe_violations(page) if v["impact"] in SEVERE]
    _check(
        page,
        not severe,
        f"{name}: axe-core finds serious or critical violations:\n{json.dumps(severe, indent=1)}",
    )
    outline = page.evaluate(OUTLINE_JS)
    levels = [lvl for lvl, _ in outline["headings"]]
    _check(page, levels.count(1) == 1, f"{name}: {levels.count(1)} H1 headings: {outline['headings']}")
    skips = [
        (a, b) for a, b in zip(outline["headings"], outline["headings"][1:], strict=False) if b[0] > a[0] + 1
    ]
    _check(page, not skips, f"{name}: skipped heading levels: {skips}")
    no_alt = [
        i for i in outline["images"] if not (i["alt"] or "").strip() or FILE_NAME.match(i["alt"].strip())
    ]
    _check(page, not no_alt, f"{name}: figures without alt text (or a file name as alt): {no_alt}")


def test_every_book_page_passes_axe_with_one_h1_and_described_figures(page, server, book):
    """Every HTML page of the book (the landing page, the notebooks, search and index pages)."""
    pages = sorted(
        str(p.relative_to(book))
        for p in book.rglob("*.html")
        if not p.relative_to(book).parts[0].startswith("_")
        and 'http-equiv="refresh"' not in p.read_text().lower()  # index.html: a redirect to the root page
    )
    _check(page, {f"{nb}.html" for nb in NOTEBOOKS} <= set(pages), f"notebook pages missing from {pages}")
    with _screenshot_on_failure(page):
        for name in pages:
            page.goto(f"{server}/{name}", wait_until="load")
            page.wait_for_selector("main")  # search.html has no article
            _audit(page, name)
    _check(page, not page.blocked, f"the book asked for outside resources: {page.blocked}")


def test_landing_page_links_every_notebook_and_typesets(page, server):
    with _screenshot_on_failure(page):
        _check_landing_page(page, server)


def _check_landing_page(page, server) -> None:
    _open(page, f"{server}/index.html")  # a redirect to the root page
    hrefs = page.eval_on_selector_all(
        "article.bd-article a[href]", "els => els.map(a => a.getAttribute('href'))"
    )
    targets = {h.split("#")[0] for h in hrefs}
    missing = [nb for nb in NOTEBOOKS if f"{nb}.html" not in targets]
    _check(page, not missing, f"the landing page does not link to {missing}; its links: {sorted(targets)}")
    text = page.inner_text("article.bd-article")
    for words in ("make setup", "make lab", "Show solution"):
        _check(page, words in text, f"the landing page does not say {words!r}")
    math = _wait_typeset(page)
    _check(page, math["math"] > 0 and math["typeset"] >= math["math"], f"formulas not typeset: {math}")
    _check(page, not page.blocked, f"the landing page asked for outside resources: {page.blocked}")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "book-landing.png"))


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_page(page, server, notebook):
    with _screenshot_on_failure(page):
        _check_notebook_page(page, server, notebook)


def _check_notebook_page(page, server, notebook: str) -> None:
    _open(page, f"{server}/{notebook}.html")

    # The formulas: every one typeset by the local MathJax, with its fonts.
    math = _wait_typeset(page)
    _check(page, math["math"] > 0, f"{notebook}: no formulas on the page")
    _check(page, math["errors"] == 0, f"{notebook}: {math['errors']} formulas have TeX errors")
    _check(
        page, not math["fonts_failed"], f"{notebook}: MathJax fonts failed to load: {math['fonts_failed']}"
    )
    _check(page, math["fonts_loaded"] > 0, f"{notebook}: no MathJax font loaded: {math}")

    # The figures: executed against the reference, every one there and loaded.
    images = _images(page)
    _check(page, images, f"{notebook}: no figures on the page")
    broken = [i["src"] for i in images if i["width"] == 0]
    _check(page, not broken, f"{notebook}: images that did not load: {broken}")

    if notebook == NOTEBOOKS[0]:  # for a person to look at: a typeset formula and a figure
        SCREENSHOTS.mkdir(exist_ok=True)
        page.locator("article div.math").first.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "book-formula.png"))
        page.locator("article .cell_output img").first.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "book-figure.png"))

    # No cell of the executed notebook failed.
    tracebacks = page.locator("article .output.traceback, article .output.error")
    _check(page, tracebacks.count() == 0, f"{notebook}: {tracebacks.count()} error outputs")
    outputs = "\n".join(page.locator("article .cell_output").all_inner_texts())
    _check(page, "NotImplementedError" not in outputs, f"{notebook}: a stub was run, not the reference")

    # One collapsed "Show solution" per task, after its check cell.
    tasks = [t for t in TASKS.values() if t.notebook == notebook]
    toggles = page.locator("article details.cnnlab-solution")
    _check(
        page,
        toggles.count() == len(tasks),
        f"{notebook}: {toggles.count()} solution toggles, want {len(tasks)}",
    )
    for i, task in enumerate(tasks):
        toggle = toggles.nth(i)
        summary = toggle.locator("summary")
        _check(
            page,
            f"Show solution: Task {task.id}" in summary.inner_text(),
            f"toggle {i}: {summary.inner_text()}",
        )
        _check(page, not toggle.evaluate("d => d.open"), f"Task {task.id}: the solution is open by default")
        code = toggle.locator("pre")
        _check(
            page, not code.first.is_visible(), f"Task {task.id}: the solution code is visible while collapsed"
        )
        summary.click()
        code.first.wait_for(state="visible")
        source = code.first.inner_text()
        _check(page, f"def {task.function}(" in source, f"Task {task.id}: the toggle shows {source[:200]!r}")
        _check(
            page,
            "### BEGIN SOLUTION" not in source and "### END" not in source,
            "markers left in the solution",
        )
        if i == 0 and notebook == NOTEBOOKS[0]:
            SCREENSHOTS.mkdir(exist_ok=True)
            toggle.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOTS / "book-solution-open.png"))

    _check(page, not page.blocked, f"{notebook}: the page asked for outside resources: {page.blocked}")
    _check(page, not page.js_errors, f"{notebook}: JavaScript errors: {page.js_errors}")


# Every display formula of a page, measured: its box, how wide it is inside, whether it scrolls with a
# scrollbar that takes room (a visible one), and the article column's box.
FORMULAS_JS = """() => {
    const column = document.querySelector('article.bd-article').getBoundingClientRect();
    return [...document.querySelectorAll('article div.math mjx-container[display="true"]')].map(m => {
        const box = m.getBoundingClientRect(), style = getComputedStyle(m);
        return {
            tex: (m.querySelector('mjx-assistive-mml') || m).textContent.slice(0, 70),
            left: box.left, right: box.right, inner: m.scrollWidth, width: m.clientWidth,
            scrolls: ['auto', 'scroll'].includes(style.overflowX), scrollbar: m.offsetHeight - m.clientHeight,
            column_left: column.left, column_right: column.right, viewport: innerWidth,
        };
    });
}"""


@pytest.mark.parametrize("width", [1400, 390])
def test_wide_formulas_and_solution_code_stay_in_view(browser, server, width):
    """At 1,400 px every display formula fits its column; on a 390 px phone each one fits or scrolls
    inside the column with a visible scrollbar; nothing sticks out of the column. The solutions' code
    wraps instead of clipping long lines."""
    context, page = offline_page(
        browser, (server + "/", "data:"), {"width": width, "height": 900}, TIMEOUT_MS
    )
    try:
        with _screenshot_on_failure(page):
            widest = None
            for notebook in NOTEBOOKS:
                _open(page, f"{server}/{notebook}.html")
                _wait_typeset(page)
                page.evaluate("document.fonts.ready")
                formulas = page.evaluate(FORMULAS_JS)
                _check(page, formulas, f"{notebook}: no display formulas")
                for i, f in enumerate(formulas):
                    where = f"{notebook} at {width} px, formula {i} ({f['tex']!r}): {f}"
                    inside = (
                        f["left"] >= max(0, f["column_left"]) - 1
                        and f["right"] <= min(f["viewport"], f["column_right"]) + 1
                    )
                    _check(page, inside, f"sticks out of the column: {where}")
                    fits = f["inner"] <= f["width"] + 1
                    if width >= 1400:
                        _check(page, fits, f"wider than the column: {where}")
                    else:
                        _check(
                            page,
                            fits or (f["scrolls"] and f["scrollbar"] > 0),
                            f"hidden, no scrollbar: {where}",
                        )
                    if widest is None or f["inner"] > widest[2]["inner"]:
                        widest = (notebook, i, f)
                for pre in page.locator("article details.cnnlab-solution pre").all():
                    pre.evaluate("p => { p.closest('details').open = true; }")
                    size = pre.evaluate("p => [p.scrollWidth, p.clientWidth]")
                    _check(
                        page,
                        size[0] <= size[1] + 1,
                        f"{notebook}: solution code clipped at {width} px: {size}",
                    )
            notebook, i, _ = widest
            _open(page, f"{server}/{notebook}.html")
            _wait_typeset(page)
            page.locator("article div.math mjx-container[display='true']").nth(i).scroll_into_view_if_needed()
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"book-widest-formula-{width}.png"))
    finally:
        context.close()


def test_book_stamp_lists_every_task(book):
    """The build recorded one solution per task of the course."""
    info = json.loads((book / ".cnnlab-book.json").read_text())
    assert sorted(info["solutions"]) == sorted(TASKS)
    assert info["notebooks"] == NOTEBOOKS
