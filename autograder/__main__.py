"""``python -m autograder <command>``: the nbgrader course of cnnlab.

Commands (the course root is ``autograder/course``, or ``$CNNLAB_COURSE_ROOT``):

* ``demo``: from scratch: release, fabricate the sample students, autograde, feedback, export, and
  print the points per task per student; then grade the same submissions with the batch grader and
  print both graders' totals side by side (``make demo``);
* ``release``: assemble ``source/``, ``nbgrader generate_assignment`` all assignments, and check
  that nothing of the solutions reached ``release/``;
* ``check-release``: only that check, on an existing ``release/``;
* ``fabricate [STUDENT ...]``: write the sample submissions (``autograder/samples/*.toml``);
* ``autograde [--student S ...]``: autograde every submission, generate feedback, export the CSV and
  print the grade table;
* ``table``: print the grade table from the gradebook;
* ``export [--out DIR]``: ``grades.csv`` and Canvas's gradebook-import ``canvas.csv`` (:mod:`autograder.lms`);
* ``bundle --out DIR [--zip]``: the standalone student course to hand out (:mod:`autograder.bundle`),
  leak-checked;
* ``grade ASSIGNMENT [--zips DIR] ...``: the batch grader (:mod:`autograder.batch`): parallel,
  sandboxed, resumable; writes the gradebook, a CSV, feedback and a class summary.

Exit status 0 on success, 1 on a failure (with a message), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder import course, database
from autograder.errors import CnnlabError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "grade":  # the batch grader parses its own options
        from autograder import batch

        return batch.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m autograder",
        description="cnnlab's nbgrader course: release, sample submissions, autograding, grades.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show nbgrader's full output")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="release, fabricate samples, nbgrader and the batch grader, tables")
    sub.add_parser("release", help="assemble source/, generate_assignment, release check")
    sub.add_parser("check-release", help="check an existing release/ for leaked solutions")
    fab = sub.add_parser("fabricate", help="write the sample submissions")
    fab.add_argument("students", nargs="*", default=list(course.STUDENTS))
    ag = sub.add_parser("autograde", help="autograde all submissions, feedback, export, table")
    ag.add_argument("--student", action="append", help="only this student (repeatable)")
    sub.add_parser("table", help="print the grade table from the gradebook")
    ex = sub.add_parser(
        "export", help="grades.csv and Canvas's gradebook-import canvas.csv from the gradebook"
    )
    ex.add_argument("--out", type=Path, help="output folder (default <course root>/export)")
    bu = sub.add_parser("bundle", help="write the standalone student course (leak-checked) into DIR")
    bu.add_argument("--out", type=Path, required=True, help="the folder to write (new, empty or a bundle)")
    bu.add_argument("--zip", action="store_true", help="also write DIR.zip, to hand out through the LMS")
    sub.add_parser("grade", help="batch-grade an assignment in parallel sandboxes (see: grade --help)")
    args = parser.parse_args(argv)

    try:
        return _run(args)
    except CnnlabError as err:  # a user error (a bad manifest, a stray marker, no database): one line
        print(f"error: {err}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    root = course.course_root()
    if args.command in ("demo", "release", "autograde", "table", "export"):
        url = database.db_url(root)
        database.check(url)
        if args.command != "demo":  # the demo says it itself
            print(f"gradebook: {database.describe(url)}", file=sys.stderr)
    if args.command == "demo":
        course.demo(root, args.verbose)
    elif args.command == "release":
        course.release(root, verbose=args.verbose)
    elif args.command == "check-release":
        problems = course.check_release(root)
        for line in problems:
            print(line)
        if problems:
            print(f"RELEASE CHECK FAILED: {len(problems)} problems in {root / 'release'}")
            return 1
        print(f"release check passed: {root / 'release'}")
    elif args.command == "fabricate":
        for student, assignments in course.fabricate(root, args.students).items():
            print(f"{student}: submitted {', '.join(assignments) or 'nothing'}")
    elif args.command == "autograde":
        course.autograde(root, args.student, args.verbose)
        fb = course.generate_feedback(root, args.verbose)
        if not fb.ok:
            print("\n".join(["generate_feedback reported errors:", *fb.problems()[:20]]))
        path = course.export_csv(root, args.verbose)
        print(course.grade_table(root, args.student).format())
        print(f"grades CSV: {path}\nfeedback HTML: {root / 'feedback'}")
    elif args.command == "table":
        print(course.grade_table(root).format())
    elif args.command == "bundle":
        from autograder import bundle

        bundle.bundle(args.out, root, make_zip=args.zip)
    elif args.command == "export":
        from autograder import lms

        plain, canvas = lms.write_exports(root, args.out)
        print(f"grades CSV: {plain}\nCanvas import CSV: {canvas}")
        print(f"feedback to upload, one folder per student: {plain.parent / 'feedback'}/<student>/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
