"""Zip one assignment for upload: ``make submit A=02_conv_layer`` (or ``python3 tools/submit.py ...``).

Needs only Python 3 (no virtualenv). Writes ``submit/<assignment>.zip`` holding exactly the
assignment's notebooks and the files you edit (listed in ``tools/assignments.json``), inside a folder
named after the assignment, and says what to upload. Your files are read as they are on disk: save
the notebook in JupyterLab first (Ctrl+S).
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # the course folder
ASSIGNMENTS = Path(__file__).resolve().parent / "assignments.json"
ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # a fixed date inside the zip: the same files give the same zip


class SubmitError(Exception):
    """Something the student can fix: a missing file, an unknown assignment."""


def load_assignments() -> dict[str, dict]:
    return json.loads(ASSIGNMENTS.read_text())["assignments"]


def unfinished(course: Path, spec: dict) -> list[str]:
    """The tasks whose TODO still raises NotImplementedError in the student's file."""
    left = []
    for task_id, task in spec["tasks"].items():
        path = course / task["file"]
        text = path.read_text(errors="replace") if path.is_file() else ""
        if f'raise NotImplementedError("Task {task_id}:' in text:
            left.append(f"Task {task_id} ({task['function']} in {task['file']})")
    return left


def check_notebook(path: Path) -> str | None:
    """Why a notebook cannot be read, or None."""
    try:
        nb = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as exc:
        return f"{path.name} is not a readable notebook ({exc}); open it in JupyterLab and save it again"
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        return f"{path.name} is not a notebook (no cells)"
    return None


def make_zip(name: str, course: Path = HERE, out_dir: Path | None = None) -> tuple[Path, list[str]]:
    """Write ``<out_dir>/<name>.zip`` (default ``submit/``); returns its path and the warnings."""
    assignments = load_assignments()
    if name not in assignments:
        raise SubmitError(f"no assignment {name!r}; the assignments are: {', '.join(assignments)}")
    spec = assignments[name]
    members = [*spec["notebooks"], *spec["files"]]
    missing = [rel for rel in members if not (course / rel).is_file()]
    if missing:
        raise SubmitError(f"{', '.join(missing)} missing from {course}: nothing was zipped")
    warnings = [p for p in (check_notebook(course / nb) for nb in spec["notebooks"]) if p]
    todo = unfinished(course, spec)
    warnings += [f"{t} is not done yet (it still raises NotImplementedError)" for t in todo]
    out_dir = Path(out_dir or course / "submit")
    out_dir.mkdir(exist_ok=True)
    target = out_dir / f"{name}.zip"
    tmp = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in members:
            info = zipfile.ZipInfo(f"{name}/{rel}", ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, (course / rel).read_bytes())
    tmp.replace(target)
    return target, warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make submit A=", description=__doc__.splitlines()[0])
    parser.add_argument("assignment", nargs="?", help="e.g. 02_conv_layer")
    parser.add_argument("--list", action="store_true", help="list the assignments and their files")
    args = parser.parse_args(argv)
    try:
        assignments = load_assignments()
        if args.list or not args.assignment:
            for name, spec in assignments.items():
                print(f"  {name:26s} {', '.join([*spec['notebooks'], *spec['files']])}")
            return 0 if args.list else 2
        path, warnings = make_zip(args.assignment)
    except (SubmitError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    spec = assignments[args.assignment]
    rel = path.relative_to(HERE) if path.is_relative_to(HERE) else path
    print(f"wrote {rel}: {', '.join([*spec['notebooks'], *spec['files']])}")
    for line in warnings:
        print(f"  warning: {line}")
    print(
        f"Upload {rel} to the assignment {args.assignment} in your course's LMS (Canvas: Assignments, "
        f"{args.assignment}, Submit Assignment, Upload File), as it is: do not unpack or rename it. "
        "You may upload again until the due date; the last upload is graded."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
