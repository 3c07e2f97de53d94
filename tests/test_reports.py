"""The batch grader's reports: every number the same wherever it is shown, counts that count right,
and a regrade that says why (issue: the instructor's numbers agree everywhere)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from autograder.batch import reports, store
from autograder.manifest import load_manifest

A = "02_conv_layer"


def _row(
    student: str, p21: float, p22: float, late_hours: float = 0.0, penalty: float = 0.0
) -> dict[str, Any]:
    task = lambda p: {  # noqa: E731
        "function": "f", "points": p, "max": 5.0, "passed": int(p), "total": 5, "status": "ok",
        "summary": "" if p == 5 else "1 of 5 cases failed", "messages": [], "mistakes": [], "report": [],
    }  # fmt: skip
    total = p21 + p22
    return {
        "student": student, "assignment": A, "problems": [], "tasks": {"2.1": task(p21), "2.2": task(p22)},
        "total": total, "max_total": 10.0, "reason": "ok", "timestamp": None, "time_source": "none",
        "late_seconds": late_hours * 3600, "penalty": penalty, "score": max(0.0, total - penalty),
    }  # fmt: skip


def test_the_late_penalty_is_shown_wherever_the_score_is(tmp_path: Path) -> None:
    assignment = load_manifest()[A]
    late = _row("lena", 5.0, 5.0, late_hours=2.5, penalty=3.0)
    rows = [late, _row("otto", 5.0, 2.0)]
    reports.write_reports(tmp_path, assignment, rows)
    feedback = (tmp_path / "feedback" / "lena.md").read_text()
    assert "Score: 7 of 10 points (10 points, submitted 2.5 h late, late penalty 3)." in feedback
    assert "Total: 7 of 10 points." in (tmp_path / "feedback" / "otto.md").read_text()
    table = reports.format_table(rows, assignment)
    line = next(t for t in table.splitlines() if t.startswith("lena"))
    assert re.search(r"\b10\s+2\.5 h\s+3\s+7\b", line), line
    with open(tmp_path / "grades.csv") as fh:
        csv_row = next(r for r in csv.DictReader(fh) if r["student_id"] == "lena")
    assert (csv_row["total"], csv_row["penalty"], csv_row["score"]) == ("10", "3", "7")
    assert float(csv_row["late_seconds"]) / 3600 == 2.5


def test_the_summary_counts_students_who_lost_points(tmp_path: Path) -> None:
    assignment = load_manifest()[A]
    rows = [_row("a", 5, 5), _row("b", 5, 5), _row("c", 2, 5), _row("d", 5, 1)]
    summary = reports.class_summary(assignment, rows)
    assert summary["students"] == 4 and summary["lost_points"] == 2
    reports.write_summary(tmp_path, summary)
    text = (tmp_path / "summary.md").read_text()
    assert "(4 submissions)" in text and "1 students" not in text
    one = reports.class_summary(assignment, [_row("c", 2, 5)])
    reports.write_summary(tmp_path, one)
    text = (tmp_path / "summary.md").read_text()
    assert "(1 submission)" in text and "1 students" not in text
    assert json.loads((tmp_path / "summary.json").read_text())["lost_points"] == 1


def test_a_regrade_says_why(tmp_path: Path) -> None:
    (tmp_path / store.RESULTS).mkdir()
    parts = {"grader": "g1", "release": "r1", "tasks": "t1", "limits": "l1"}
    store.save_result(tmp_path, {"student": "ada", "key": "k", "cache_parts": parts})
    assert store.why_regraded(tmp_path, "bob", json.dumps(parts)) == "new submission"
    assert (
        store.why_regraded(tmp_path, "ada", json.dumps(parts)) == "the submission changed since the last run"
    )
    changed = {**parts, "grader": "g2"}
    assert "hidden cases" in store.why_regraded(tmp_path, "ada", json.dumps(changed))
    assert "limits" in store.why_regraded(tmp_path, "ada", json.dumps({**parts, "limits": "l2"}))


def _bars(svg: str) -> dict[str, list[float]]:
    """The heights of the chart's bars, by fill: the blue ones and the hatched ones."""
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    bars: dict[str, list[float]] = {"lost": [], "common": []}
    for rect in ET.fromstring(svg).iter(f"{ns}rect"):
        if "x" not in rect.attrib:
            continue  # the background and the pattern's tile
        if rect.get("fill") == reports.chart.BLUE and float(rect.get("width", 0)) > 20:
            bars["lost"].append(float(rect.get("height", 0)))
        elif rect.get("fill") == "url(#hatch)" and float(rect.get("width", 0)) > 20:
            bars["common"].append(float(rect.get("height", 0)))
    return bars


def test_the_summary_chart_is_accessible_svg_with_bars_in_proportion(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    assignment = load_manifest()[A]
    rows = [_row("a", 5, 5), _row("b", 1, 5), _row("c", 2, 5), _row("d", 5, 1), _row("e", 0, 0)]
    for r in (rows[1], rows[4]):  # b and e: the most common mistake of Task 2.1
        r["tasks"]["2.1"]["mistakes"] = ["conv2d_no_bias"]
    summary = reports.class_summary(assignment, rows)
    summary["assignment"] = 'a <b>&amp; "q"'  # any text in the chart is escaped
    path = reports.write_summary(tmp_path, summary)
    svg = path.read_text()
    root = ET.fromstring(svg)  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("role") == "img" and root.get("aria-labelledby") == "title desc"
    assert root.find(f"{ns}title").text.startswith('a <b>&amp; "q"')
    desc = root.find(f"{ns}desc").text
    assert desc == reports.summary_alt(summary) and "Task 2.1: 3 lost points" in desc
    assert "<b>" not in svg
    bars = _bars(svg)
    # Task 2.1: 3 students lost points (b, c, e), 2 of them with conv2d_no_bias; Task 2.2: 2 (d, e)
    assert len(bars["lost"]) == 2 and len(bars["common"]) == 1
    assert bars["lost"][0] / bars["lost"][1] == pytest.approx(3 / 2, rel=1e-3)
    assert bars["common"][0] / bars["lost"][0] == pytest.approx(2 / 3, rel=1e-3)
    assert (
        "![" in (tmp_path / "summary.md").read_text()
        and "](summary.svg)" in (tmp_path / "summary.md").read_text()
    )
