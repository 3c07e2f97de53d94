"""The one error base class of the course's commands.

Every error that is the user's to fix — a stray solution marker, a bad manifest entry, a missing
course folder, a database that cannot be reached — is a :class:`CnnlabError` (or a subclass). Each
command (``python -m tools.build``, ``python -m autograder ...``, ``make book``) catches it once, at
its top, and prints its message as one line: never a traceback. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import sys


class CnnlabError(Exception):
    """A user error: its message says what is wrong and how to fix it, in one line."""


def report(command: str, err: CnnlabError) -> int:
    """Print ``err`` as the one line a command shows for a user error; the exit status to return."""
    print(f"{command}: error: {err}", file=sys.stderr)
    return 2
