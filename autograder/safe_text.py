"""Text a student controls is data wherever it lands: the one place that makes it safe.

* :func:`clean_text` / :func:`clean`: a lone surrogate (from an exception message, a file name that
  is not UTF-8, ...) becomes U+FFFD, so that every file, CSV, log and database can encode it.
* :func:`csv_cell`: a cell that a spreadsheet would run as a formula (it begins with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return: OWASP's CSV injection) is prefixed with a single quote.
* :func:`markdown_text`: Markdown and HTML syntax in a student's text is escaped, so feedback shows
  the text as it was written and never becomes a link, an image, a tag or a heading.
"""

from __future__ import annotations

import html
import re
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (valid UTF-8 from then on)."""
    if not isinstance(text, str):
        text = str(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def clean(value: Any) -> Any:
    """:func:`clean_text` applied to every string in a JSON-like value (keys too)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(clean(v) for v in value)
    return value


def csv_cell(value: Any) -> str:
    """A CSV cell that no spreadsheet evaluates: text starting like a formula gets a leading ``'``
    (numbers, negative ones included, are left as they are)."""
    text = clean_text(value if isinstance(value, str) else str(value))
    if text.startswith(FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def markdown_text(value: Any) -> str:
    """Student text for a Markdown file: HTML escaped, Markdown syntax backslash-escaped, one line
    per line of the text (newlines kept)."""
    text = html.escape(clean_text(value if isinstance(value, str) else str(value)), quote=False)
    return _MARKDOWN.sub(r"\\\1", text)
