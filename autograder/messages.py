"""One message policy for both graders: nbgrader's hidden ``grade_task`` and the batch grader word
the same failure the same way (the report lines a student sees, and the few words of the CSV)."""

from __future__ import annotations

from autograder.records import Status


def not_importable(task_id: str, function: str, why: str, maximum: float) -> str:
    """The report's first line when the student's package does not import."""
    return f"Task {task_id} {function}: your cnnlab package does not import ({why}): 0 of {maximum:g} points."


def grader_failed(task_id: str, function: str, why: str, maximum: float) -> str:
    """The report's first line when the grader itself failed on the task."""
    return f"Task {task_id} {function}: not graded, the grader failed ({why}): 0 of {maximum:g} points."


def summary(
    status: str,
    passed: int,
    total: int,
    function: str,
    mistakes: list[str],
    not_implemented: bool,
    *,
    timeout: float,
    memory_mb: int,
) -> str:
    """A few words on why a task lost points (the CSV's reason column, the class summary)."""
    words = {
        Status.IMPORT_ERROR: "the cnnlab package does not import",
        Status.MISSING: f"{function} not found",
        Status.TIMEOUT: f"time limit ({timeout:g} s) exceeded",
        Status.MEMORY: f"memory limit ({memory_mb} MB) exceeded",
        Status.CRASHED: "the code ended the grading process",
        Status.PROTOCOL: "output the grader cannot read",
        Status.BUDGET: "too slow: cases left unrun",
        Status.GRADER: "grader error",
    }
    if status in words:
        return words[Status(status)]
    if not_implemented and passed == 0:
        return "not implemented"
    text = f"{total - passed} of {total} cases failed"
    if mistakes:
        text += " (looks like " + ", ".join(mistakes) + ")"
    return text


def text_table(head: list[str], body: list[list[str]], foot: list[str], left: tuple[int, ...] = (0,)) -> str:
    """A plain-text table: the header, a rule, the rows, a rule, the footer (e.g. the maximum points).
    Columns in ``left`` (indices, negative from the end) are left-aligned, the rest right-aligned."""
    rows = [head, *body, foot]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lefts = {i % len(head) for i in left}

    def line(row: list[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(c.ljust(w) if i in lefts else c.rjust(w) for i, (c, w) in enumerate(cells)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *map(line, body), rule, line(foot)])
