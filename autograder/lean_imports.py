"""Imports the grader's process never needs, declined before anything pulls them in.

``jsonschema`` (under ``nbformat`` and ``nbgrader``) imports ``rfc3987_syntax``, when installed, for
its optional ``iri`` format check; that module builds a Lark grammar as it is imported, about a second
of CPU in every process that imports ``nbformat``, longer than grading a dozen submissions. No schema
the grader validates uses that format (nbformat's notebook schemas have none, and nothing here turns
format checking on), so the batch grader's process declines the import: ``jsonschema`` then simply
has no ``iri`` checker, as when the package is not installed. Other processes (JupyterLab, nbgrader's
own commands) are not touched.
"""

from __future__ import annotations

import sys

UNUSED = ("rfc3987_syntax",)


def decline_unused() -> None:
    """Make the :data:`UNUSED` modules unimportable in this process, unless something already
    imported them or ``jsonschema`` (whose format checks would have used them) is already loaded."""
    if "jsonschema" in sys.modules:
        return
    for name in UNUSED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "import fails"
