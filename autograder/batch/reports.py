"""Stage 5b, the reports: ``grades.csv``, ``feedback/<student>.md``, the class summary
(``summary.md``, ``summary.json``, ``summary.svg``), the progress line and the grade table."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from autograder.batch import chart
from autograder.manifest import Assignment
from autograder.messages import text_table
from autograder.reference import load_reference
from autograder.safe_text import clean_text, csv_cell, markdown_text


def write_csv(path: Path, assignment: Assignment, rows: list[dict[str, Any]]) -> None:
    """Points per task per student: ``student_id, assignment, <task>..., total, max_score, reason``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "student_id",
                "assignment",
                *assignment.tasks,
                "total",
                "max_score",
                "reason",
                "submitted_at",
                "time_source",
                "late_seconds",
                "penalty",
                "score",
            ]
        )
        for row in rows:
            points = [f"{row['tasks'][t]['points']:g}" if t in row["tasks"] else "" for t in assignment.tasks]
            writer.writerow(
                [
                    csv_cell(row["student"]),
                    row["assignment"],
                    *points,
                    f"{row['total']:g}",
                    f"{row['max_total']:g}",
                    csv_cell(row["reason"]),
                    csv_cell(row.get("timestamp") or ""),
                    csv_cell(row.get("time_source") or ""),
                    f"{row.get('late_seconds', 0):g}",
                    f"{row.get('penalty', 0):g}",
                    f"{row.get('score', row['total']):g}",
                ]
            )
    os.replace(tmp, path)


def feedback_markdown(row: dict[str, Any]) -> str:
    """A student's feedback: points per task and the diagnoses (never the hidden tests' source)."""
    lines = [f"# {row['assignment']}: feedback for {markdown_text(row['student'])}", ""]
    lines.append(f"**{score_line(row)}**")
    lines.append("")
    if row["problems"]:
        lines += ["Notes on your submission:", ""] + [f"- {_item(p)}" for p in row["problems"]] + [""]
    for task_id, info in row["tasks"].items():
        lines.append(f"## Task {task_id} `{info['function']}`: {info['points']:g} of {info['max']:g} points")
        lines.append("")
        lines.append(f"Passed {info['passed']} of {info['total']} hidden cases.")
        for message in info["messages"]:
            lines.append(f"- {_item(message)}")
        lines.append("")
    return "\n".join(lines)


def plural(n: int, word: str) -> str:
    """``1 student``, ``2 students``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def late_text(row: dict[str, Any]) -> str:
    """How late, in hours (one decimal), or "on time"."""
    late = float(row.get("late_seconds") or 0.0)
    return f"{late / 3600:.1f} h late" if late > 0 else "on time"


def score_line(row: dict[str, Any]) -> str:
    """The one sentence of a score that every report shows: points, lateness, penalty, score."""
    total, top = row["total"], row["max_total"]
    penalty = float(row.get("penalty") or 0.0)
    score = row.get("score", total)
    if penalty or row.get("late_seconds"):
        return (
            f"Score: {score:g} of {top:g} points ({total:g} points, submitted {late_text(row)}, "
            f"late penalty {penalty:g})."
        )
    return f"Total: {total:g} of {top:g} points."


def _item(text: str) -> str:
    """A list item of feedback: the grader's words with the student's text in them, escaped
    (student text is data: never a link, an image, a tag or a heading), continued lines indented."""
    return "\n  ".join(markdown_text(line) for line in str(text).split("\n"))


def class_summary(assignment: Assignment, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task: students graded, students who lost points, mean points, the mistakes diagnosed
    (mistake ids of :mod:`autograder.mistakes`, one count per student) and the most common one."""
    from autograder.mistakes import BY_ID

    lost_any = sum(1 for r in rows if any(t["points"] < t["max"] for t in r["tasks"].values()))
    summary: dict[str, Any] = {
        "assignment": assignment.name,
        "students": len(rows),
        "lost_points": lost_any,
        "tasks": {},
    }
    tasks = load_reference().tasks.TASKS
    for task_id in assignment.tasks:
        graded = [r["tasks"][task_id] for r in rows if task_id in r["tasks"]]
        lost = [t for t in graded if t["points"] < t["max"]]
        mistakes: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        for t in lost:
            mistakes.update(set(t["mistakes"]))
            statuses[t["summary"] if t["summary"] in ("not implemented",) else t["status"]] += 1
        top = mistakes.most_common(1)
        summary["tasks"][task_id] = {
            "function": tasks[task_id].function,
            "max": float(assignment.points[task_id]),
            "graded": len(graded),
            "lost_points": len(lost),
            "mean": round(sum(t["points"] for t in graded) / len(graded), 2) if graded else 0.0,
            "mistakes": dict(mistakes.most_common()),
            "statuses": dict(statuses.most_common()),
            "most_common_mistake": top[0][0] if top else None,
            "most_common_count": top[0][1] if top else 0,
            "most_common_message": BY_ID[top[0][0]].message if top else None,
        }
    return summary


def summary_alt(summary: dict[str, Any]) -> str:
    """The alt text of ``summary.svg``: what its bars show, in words and numbers."""
    parts = [
        f"Task {t}: {v['lost_points']} lost points"
        + (f", {v['most_common_count']} with {v['most_common_mistake']}" if v["most_common_mistake"] else "")
        for t, v in summary["tasks"].items()
    ]
    return f"Bar chart of students who lost points per task, of {summary['students']}: " + "; ".join(parts)


def write_summary(out: Path, summary: dict[str, Any]) -> Path:
    """``summary.md`` and ``summary.json``, and ``summary.svg``: a bar per task of the students who
    lost points, labelled with the most common diagnosed mistake (:mod:`.chart`). Returns the SVG's
    path."""
    lines = [f"# {summary['assignment']}: class summary ({plural(summary['students'], 'submission')})", ""]
    lines += [
        "| task | function | mean | lost points | most common mistake | students |",
        "|---|---|---|---|---|---|",
    ]
    for task_id, t in summary["tasks"].items():
        top = f"`{t['most_common_mistake']}`" if t["most_common_mistake"] else "-"
        lines.append(
            f"| {task_id} | {t['function']} | {t['mean']:g} / {t['max']:g} "
            f"| {t['lost_points']} of {t['graded']} "
            f"| {top} | {t['most_common_count'] or '-'} |"
        )
    lines.append("")
    for task_id, t in summary["tasks"].items():
        if t["mistakes"] or t["statuses"]:
            lines.append(f"## Task {task_id} {t['function']}")
            lines += [f"- `{m}`: {plural(n, 'student')}" for m, n in t["mistakes"].items()]
            lines += [f"- ({s}): {plural(n, 'student')}" for s, n in t["statuses"].items() if s != "ok"]
            if t["most_common_message"]:
                lines += ["", f"Most common: {t['most_common_message']}"]
            lines.append("")
    lines += [f"![{summary_alt(summary)}](summary.svg)", ""]
    (out / "summary.md").write_text("\n".join(lines), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    n, lost_any = summary["students"], summary.get("lost_points", 0)
    title = f"{summary['assignment']}: {lost_any} of {plural(n, 'student')} lost points"
    path = out / "summary.svg"
    path.write_text(chart.summary_svg(summary, title, summary_alt(summary)), encoding="utf-8")
    return path


class Progress:
    """A progress bar on stderr (tqdm): submissions done, with how many were cached and how many
    failed (grader errors, retried by the next run)."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.done, self.cached, self.failed = total, 0, 0, 0
        self.bar = None
        if enabled and total > 0:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="grade", unit="sub", file=sys.stderr, mininterval=0.5)

    def update(self, student: str, cached: bool = False, failed: bool = False) -> None:
        self.done += 1
        self.cached += cached
        self.failed += failed
        if self.bar is not None:
            graded = self.done - self.cached - self.failed
            self.bar.set_postfix_str(
                f"{graded} graded, {self.cached} cached, {self.failed} failed  {student}"
            )
            self.bar.update(1)
            if self.done == self.total:
                self.bar.close()


def format_table(rows: list[dict[str, Any]], assignment: Assignment) -> str:
    """The grade table the batch grader prints: points per task, total, reason."""
    head = ["student", *assignment.tasks, "total", "late", "penalty", "score", "reason"]
    body = [
        [
            r["student"],
            *(f"{r['tasks'][t]['points']:g}" if t in r["tasks"] else "-" for t in assignment.tasks),
            f"{r['total']:g}",
            f"{float(r.get('late_seconds') or 0) / 3600:.1f} h" if r.get("late_seconds") else "-",
            f"{float(r.get('penalty') or 0):g}",
            f"{r.get('score', r['total']):g}",
            r["reason"][:70],
        ]
        for r in rows
    ]
    top = f"{assignment.total:g}"
    maxrow = ["(max)", *(f"{assignment.points[t]:g}" for t in assignment.tasks), top, "", "", top, ""]
    return text_table(head, body, maxrow, left=(0, -1))


def write_reports(out: Path, assignment: Assignment, rows: list[dict[str, Any]]) -> None:
    """Every report of a batch into ``out``."""
    write_csv(out / "grades.csv", assignment, rows)
    fb = out / "feedback"
    fb.mkdir(exist_ok=True)
    for row in rows:  # one student's feedback never stops the others'
        try:
            (fb / f"{row['student']}.md").write_text(feedback_markdown(row), encoding="utf-8")
        except Exception as exc:  # noqa: BLE001
            print(f"warning: no feedback file for {clean_text(row['student'])!r}: {exc}", file=sys.stderr)
    write_summary(out, class_summary(assignment, rows))
