"""Due dates, extensions and the late penalty: one policy for both graders.

* Due dates: ``due = 2026-12-10T23:59:00Z`` in an assignment's table of ``autograder/assignments.toml``
  (the release writes it into nbgrader's gradebook as the assignment's ``duedate``).
* The policy: a ``[late]`` table there, with nbgrader's ``LateSubmissionPlugin`` semantics:
  ``method = "none"`` (no penalty), ``"zero"`` (a late submission scores 0) or ``"per_hour"``
  (``per_hour`` points off for each started hour late, never below 0; the per-hour example of
  nbgrader's documentation).
* Extensions: ``<course root>/extensions.csv`` with columns ``student, assignment, hours`` (hours
  added to that student's due date; the batch grader applies them).

A penalty is computed from the raw score and the submission time every time a submission is graded
or re-graded: it is applied once, never on top of an earlier one.
"""

from __future__ import annotations

import csv
import math
import os
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

MANIFEST = Path(os.environ.get("CNNLAB_MANIFEST") or Path(__file__).resolve().parent / "assignments.toml")
EXTENSIONS = "extensions.csv"
METHODS = ("none", "zero", "per_hour")


@dataclass(frozen=True)
class LatePolicy:
    method: str = "none"
    per_hour: float = 0.0

    def penalty(self, score: float, seconds_late: float) -> float:
        """Points taken off ``score`` for a submission ``seconds_late`` after its due date."""
        if seconds_late <= 0 or self.method == "none":
            return 0.0
        if self.method == "zero":
            return float(score)
        return float(min(score, self.per_hour * math.ceil(seconds_late / 3600)))


def load_policy(path: Path = MANIFEST) -> LatePolicy:
    """The ``[late]`` table of the manifest (none: no penalty). ValueError on a bad one."""
    table = tomllib.loads(Path(path).read_text()).get("late", {})
    method = table.get("method", "none")
    if method not in METHODS:
        raise ValueError(f"{Path(path).name}: late.method must be one of {METHODS}, got {method!r}")
    per_hour = table.get("per_hour", 0.0)
    if method == "per_hour" and (not isinstance(per_hour, int | float) or per_hour <= 0):
        raise ValueError(f"{Path(path).name}: late.per_hour must be a positive number of points")
    return LatePolicy(method, float(per_hour))


def parse_time(value: object) -> datetime | None:
    """A TOML datetime, an ISO 8601 string or nbgrader's ``YYYY-MM-DD HH:MM:SS.ffffff UTC``, as an
    aware UTC datetime (a naive time is taken as UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        stamp = value
    else:
        text = str(value).strip().removesuffix(" UTC").replace("Z", "+00:00")
        stamp = datetime.fromisoformat(text)
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def load_extensions(root: Path) -> dict[tuple[str, str], float]:
    """``(student, assignment) -> hours`` from ``<root>/extensions.csv`` (none: no extensions)."""
    path = Path(root) / EXTENSIONS
    if not path.is_file():
        return {}
    out = {}
    with open(path, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                out[(row["student"].strip(), row["assignment"].strip())] = float(row["hours"])
            except (KeyError, ValueError, AttributeError):
                raise ValueError(
                    f"{path}, line {line}: needs student, assignment, hours (a number)"
                ) from None
    return out


def seconds_late(submitted: object, due: object, extension_hours: float = 0.0) -> float:
    """How late a submission was (0 if on time, or if either time is unknown)."""
    when, deadline = parse_time(submitted), parse_time(due)
    if when is None or deadline is None:
        return 0.0
    return max(0.0, (when - (deadline + timedelta(hours=extension_hours))).total_seconds())


def late_fields(
    total: float, submitted: object, due: object, extension_hours: float, policy: LatePolicy
) -> dict[str, float]:
    """What a result row records of lateness: seconds late, the penalty, the score after it."""
    late = seconds_late(submitted, due, extension_hours)
    penalty = round(policy.penalty(total, late), 2)
    return {"late_seconds": round(late, 1), "penalty": penalty, "score": round(max(0.0, total - penalty), 2)}
