"""MathJax for nbgrader's feedback pages, served from the repository instead of a CDN.

``nbgrader generate_feedback`` renders each graded notebook with nbconvert's HTML exporter, whose
MathJax macro loads MathJax from a CDN: without network the formulas stay TeX source. The course's
feedback template (``autograder/templates/cnnlab_feedback``, chosen in ``nbgrader_config.py`` for
``GenerateFeedback`` only) inlines MathJax 3 instead, from npm's ``mathjax`` package in
``node_modules/`` (pinned by ``package-lock.json``; ``npm ci`` installs it, as for the book). A page
is then one self-contained file: nbgrader's exchange hands a student only the ``.html``.
"""

from __future__ import annotations

import functools
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MATHJAX_DIR = REPO / "node_modules" / "mathjax" / "es5"
MATHJAX_FILE = "tex-svg-full.js"  # TeX in (every extension bundled: nothing to autoload), SVG out (no fonts)


def mathjax_problem() -> str | None:
    """Why the feedback pages would have no MathJax, or None."""
    if (MATHJAX_DIR / MATHJAX_FILE).is_file():
        return None
    return (
        f"{MATHJAX_DIR.relative_to(REPO)}/{MATHJAX_FILE} is missing: run `npm ci` in the repository, or "
        "formulas in the feedback HTML show as TeX source"
    )


@functools.cache
def inline_mathjax(name: str = MATHJAX_FILE) -> str:
    """The text of MathJax's ``es5/<name>``, safe inside ``<script>...</script>``; "" if missing
    (a Jinja filter of the feedback template)."""
    path = MATHJAX_DIR / Path(name).name
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    return text.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")
