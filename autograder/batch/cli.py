"""``python -m autograder grade ASSIGNMENT ...``: the batch grader's command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder import database, sandbox
from autograder.batch.reports import format_table
from autograder.batch.run import Options, grade_assignment
from autograder.errors import CnnlabError
from autograder.manifest import load_manifest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autograder grade",
        description="Grade every submission of an assignment in parallel, each in a sandbox; write the "
        "nbgrader gradebook, a CSV, feedback files and a class summary.",
    )
    parser.add_argument("assignments", nargs="+", metavar="ASSIGNMENT", help="e.g. 02_conv_layer")
    parser.add_argument(
        "--zips",
        type=Path,
        help="a folder of per-student zip files (LMS download) to unpack into submitted/ first",
    )
    parser.add_argument(
        "--times",
        type=Path,
        help="with --zips: a submission-times CSV exported from the LMS (student, submitted_at)",
    )
    parser.add_argument(
        "--scheduler",
        help="grade on a Dask cluster: tcp://HOST:PORT of its scheduler, or 'local' for a LocalCluster "
        "here (default: $CNNLAB_DASK_SCHEDULER, else a local process pool)",
    )
    parser.add_argument("--student", action="append", dest="students", help="only this student (repeatable)")
    parser.add_argument("--workers", type=int, default=0, help="parallel workers (default: one per core)")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="wall-clock seconds per submission (default 60)"
    )
    parser.add_argument(
        "--memory-mb", type=int, default=1024, help="memory limit of student code, MB (default 1024)"
    )
    parser.add_argument("--out", type=Path, help="output folder (default <course root>/batch/<assignment>)")
    parser.add_argument("--force", action="store_true", help="re-grade everything, ignoring cached results")
    parser.add_argument(
        "--no-gradebook", action="store_true", help="do not write nbgrader's gradebook and autograded/"
    )
    parser.add_argument(
        "--allow-unconfined", action="store_true", help="run student code even without any sandbox"
    )
    parser.add_argument(
        "--zygote",
        choices=("on", "off"),
        default="on",
        help="on (default, where nested user namespaces work): a preloaded zygote per worker forks "
        "each child into fresh namespaces; off: a fresh bubblewrap per child",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line, no table")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m autograder grade ...``: exit 0 when every submission has a result, 1 on a grader
    error (the submissions concerned are retried by the next run), 2 on a usage error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["grade"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    if args.zips and len(args.assignments) != 1:
        print("error: --zips needs exactly one assignment", file=sys.stderr)
        return 2
    if args.timeout <= 0 or args.memory_mb < 64 or args.workers < 0:
        print("error: --timeout must be > 0, --memory-mb >= 64, --workers >= 0", file=sys.stderr)
        return 2
    if args.zygote == "off":  # read by sandbox.sandbox_mode, in this process and its workers
        os.environ["CNNLAB_ZYGOTE"] = "off"
        sandbox.sandbox_mode.cache_clear()
    from autograder.course import course_root

    root = course_root()
    options = Options(
        workers=args.workers,
        limits=sandbox.Limits(timeout=args.timeout, memory_mb=args.memory_mb),
        force=args.force,
        gradebook=not args.no_gradebook,
        out=args.out if len(args.assignments) == 1 else None,
        students=args.students,
        zips=args.zips,
        times=args.times,
        scheduler=args.scheduler,
        allow_unconfined=args.allow_unconfined,
        progress=not args.quiet,
        log=(lambda s: None) if args.quiet else print,
    )
    status = 0
    try:
        manifest = load_manifest()
        for name in args.assignments:
            result = grade_assignment(name, root, options)
            if not args.quiet:
                print(format_table(result.rows, manifest[name]))
                print(
                    f"{name}: {len(result.rows)} submissions, {result.graded} graded, "
                    f"{result.cached} cached, "
                    f"in {result.seconds:.1f} s"
                )
                print(f"grades CSV: {result.out / 'grades.csv'}")
                print(f"feedback:   {result.out / 'feedback'}/<student>.md")
                print(f"summary:    {result.out / 'summary.md'} and summary.svg")
                if options.gradebook and not result.gradebook_problem:
                    print(
                        f"gradebook:  {database.describe(database.db_url(root))} "
                        "(nbgrader export / formgrader / generate_feedback)"
                    )
            for row in result.grader_errors:
                print(f"GRADER ERROR {row['student']}: {row['grader_error']}", file=sys.stderr)
                status = 1
    except CnnlabError as err:  # BatchError, ManifestError, ...: a user error, one line
        print(f"error: {err}", file=sys.stderr)
        return 1
    return status
