"""Benchmark: sequential ``nbgrader autograde`` against the batch grader, on the same submissions.

    .venv/bin/python benchmarks/grade_bench.py                 # 40 submissions of 02_conv_layer
    .venv/bin/python benchmarks/grade_bench.py --students 12 --assignment 04_residual

In a temporary course root (never ``autograder/course``): release the assignment, fabricate N
submissions (complete, partial, with known mistakes from ``autograder/mistakes.py``, broken: syntax
error, missing file, notebook not JSON, check cell deleted), then time

1. ``nbgrader autograde <assignment> --force``: one command for all students, sequential, the way
   nbgrader grades (one kernel per notebook);
2. ``python -m autograder.batch grade <assignment> --force``: the batch grader (one worker per core,
   the gradebook, the CSV, feedback and the class summary included), in both of its bubblewrap
   modes: children forked by a preloaded zygote per worker (the default), and a fresh bubblewrap
   per child (``--zygote off``),

check that every mode gives the same points per task to every honest submission as nbgrader
(complete, partial, mistaken: the broken ones are graded differently on purpose, see
``autograder/batch``), and that the two batch modes agree on every submission; print a table of
times, throughput ratios and what isolates a student in each path, the start-up cost of one child
per sandbox mode, and a profile of one submission's cost in the batch grader, stage by stage (run
in this process, one submission after another). A benchmark, not a test: it takes several minutes;
the machine's load moves every time, so only the ratios of one run mean anything.

Where otter-grader can be installed (into its own virtualenv, ``benchmarks/.otter-venv/``, made on
the first run; never into the project's ``.venv``), Otter-Grader's ``grade_submission`` grades the
same submissions too, one after another, with an Otter autograder the benchmark builds for the
assignment: its tests call the course's hidden grading on the seeds nbgrader uses, so its points
per task must equal nbgrader's on every honest submission (``benchmarks/otter_bench.py``). Offline,
or with ``--no-otter``, it says so in one line and goes on without it.

    .venv/bin/python benchmarks/grade_bench.py --scheduler local          # or tcp://HOST:PORT

instead compares the batch grader's two engines on a big class: 400 submissions over the four
assignments (100 each), graded by the local process pool, then by a Dask cluster (``local``: a
``LocalCluster`` of 2 single-threaded worker processes on 127.0.0.1), with the same points required of
both; it prints both throughputs and Dask's own per-task overhead (no-op tasks through the cluster).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder import batch, course, mistakes  # noqa: E402
from autograder.manifest import load_manifest, task_points  # noqa: E402
from autograder.reference import load_reference  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
import otter_bench  # noqa: E402


def fabricate(root: Path, name: str, n: int) -> dict[str, str]:
    """``n`` submissions of assignment ``name``; returns student -> kind (complete, partial,
    mistaken, broken), in a fixed rotation so that every kind is represented."""
    assignment = load_manifest()[name]
    tasks = load_reference().tasks.TASKS
    own = list(assignment.tasks)
    rel = tasks[own[0]].path  # the file of the assignment's own tasks (05 also takes conv/pool/residual)
    module = Path(rel).stem
    module_tasks = [t.id for t in tasks.values() if t.module == module]
    known = [m.id for t in own for m in mistakes.for_task(t)]
    kinds = {}
    for i in range(n):
        student = f"s{i:03d}"
        kind = ("complete", "partial", "mistaken", "mistaken", "broken")[i % 5]
        files: dict[str, str | None] = {}
        notebook: str | dict = "release"
        if kind == "complete":
            files[rel] = course.reference_variant(module)
        elif kind == "partial":
            undone = own[(i // 5) % len(own)]  # one task of the assignment still a stub
            done = [t for t in module_tasks if t != undone]
            files[rel] = course.reference_variant(module, done)
        elif kind == "mistaken":
            files[rel] = course.reference_variant(module, None, [known[(i // 2) % len(known)]])
        else:
            flavour = (i // 5) % 4
            if flavour == 0:
                files[rel] = course.reference_variant(module) + "\ndef broken(:\n"
            elif flavour == 1:
                files[rel] = None
            elif flavour == 2:
                files[rel], notebook = course.reference_variant(module), "invalid_json"
            else:
                files[rel] = course.reference_variant(module)
                notebook = {"delete_cells": [tasks[own[0]].marker]}
        batch.fabricate_submission(root, student, assignment, files, notebook)
        kinds[student] = kind
    return kinds


ISOLATION = {
    "nbgrader": "none: student code runs in nbgrader's kernel with the grader's rights (trusted classes)",
    "fresh": "bubblewrap (user/PID/net/IPC namespaces, read-only root, tmpfs) + seccomp allow list + "
    "Landlock + rlimits + slot cgroup; a new bubblewrap and Python per child",
    "zygote": "the same layers, made per child: new user/PID/mount/net/IPC namespaces, private root, "
    "tmpfs; forked from a preloaded zygote (shares its hash seed and library layout, nothing secret)",
}
ISOLATION["otter"] = otter_bench.ISOLATION
OTTER = "Otter-Grader: not compared ({why})"


def grading_window(out: Path) -> tuple[float, int]:
    """Seconds between the first and the last result the run saved, and how many results: the
    grader saves each row as its job ends (``results/<student>.json``), so the file times give the
    rate at which submissions were graded, without the run's fixed costs (start-up, the zygotes'
    start, the gradebook and the reports)."""
    times = sorted(p.stat().st_mtime for p in (out / "results").glob("*.json"))
    return (times[-1] - times[0] if len(times) > 1 else 0.0), len(times)


def _batch(
    name: str, out: Path, workers: int, zygote: str
) -> tuple[float, dict[str, dict[str, str]], str, int]:
    """One run of the batch grader's command line: seconds, grades.csv rows by student, what it
    said on stderr that matters here, and how many rows a zygote's child graded."""
    cmd = [sys.executable, "-m", "autograder.batch", "grade", name, "--force", "--quiet"]
    cmd += ["--out", str(out), "--zygote", zygote]
    if workers:
        cmd += ["--workers", str(workers)]
    t = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t
    rows = {}
    if (out / "grades.csv").is_file():
        with open(out / "grades.csv", newline="") as fh:
            rows = {row["student_id"]: row for row in csv.DictReader(fh)}
    forked = 0  # rows whose child says it was forked by a zygote (proof the mode ran as named)
    for path in (out / "results").glob("*.json"):
        with contextlib.suppress(ValueError, OSError, AttributeError, TypeError):
            hello = (json.loads(path.read_text()).get("sandbox") or {}).get("hello") or {}
            forked += bool(hello.get("zygote"))
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note: no zygote")]
    return seconds, rows, (proc.stderr if proc.returncode else "\n".join(notes[:2])), forked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="02_conv_layer")
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, default=0, help="batch workers (default: one per core)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary course root")
    parser.add_argument(
        "--no-otter", action="store_true", help="leave Otter-Grader out (it needs its own virtualenv)"
    )
    parser.add_argument(
        "--scheduler", help="compare the local pool with this Dask cluster ('local': 2 workers)"
    )
    args = parser.parse_args(argv)
    if args.scheduler:
        return cluster_bench(args.scheduler, per_assignment=100 if args.students == 40 else args.students)

    name = args.assignment
    manifest = load_manifest()
    root = Path(tempfile.mkdtemp(prefix="cnnlab-grade-bench-"))
    names = ("CNNLAB_COURSE_ROOT", "CNNLAB_COURSE_SECRET", "CNNLAB_NBGRADER_SECRET")
    env_backup = {k: os.environ.get(k) for k in names}
    os.environ["CNNLAB_COURSE_ROOT"] = str(root)
    # each grading path has its own secret; here both get one value, so that they draw the same
    # per-student cases and their points can be compared
    os.environ["CNNLAB_COURSE_SECRET"] = os.environ["CNNLAB_NBGRADER_SECRET"] = secrets.token_hex(16)
    os.environ.pop("CNNLAB_GRADING_SEED", None)
    try:
        print(f"course root: {root}   cores: {os.cpu_count()}   assignment: {name}")
        t = time.perf_counter()
        course.release(root, {name: manifest[name]}, log=lambda _: None)
        print(f"release: {time.perf_counter() - t:.1f} s")
        kinds = fabricate(root, name, args.students)
        counts = {k: list(kinds.values()).count(k) for k in ("complete", "partial", "mistaken", "broken")}
        print(f"fabricated {len(kinds)} submissions: {counts}")

        t = time.perf_counter()
        run = course.run_nbgrader(["autograde", name, "--force"], root)
        t_nbgrader = time.perf_counter() - t
        print(f"nbgrader autograde (sequential): {t_nbgrader:.1f} s, exit {run.returncode}")
        table = course.grade_table(root, list(kinds), {name: manifest[name]})
        nb_scores = {s: {t: table.rows[s][t] for t in manifest[name].tasks} for s in kinds}

        workers = args.workers or os.cpu_count() or 1
        runs = {}
        for mode in ("zygote", "fresh"):
            seconds, rows, err, forked = _batch(
                name, root / f"batch-{mode}", args.workers, "on" if mode == "zygote" else "off"
            )
            runs[mode] = (seconds, rows)
            print(
                f"batch grader, {mode} ({workers} workers): {seconds:.1f} s; rows graded by a zygote's "
                f"child: {forked} of {len(rows)}" + (f"\n{err[-3000:]}" if err else "")
            )
        t_batch, ours = runs["zygote"]
        t_fresh, fresh = runs["fresh"]
        modes_differ = [
            s for s in kinds if {t: ours.get(s, {}).get(t) for t in manifest[name].tasks}
            != {t: fresh.get(s, {}).get(t) for t in manifest[name].tasks}
        ]  # fmt: skip
        print(
            f"zygote and fresh children: identical points on every task for "
            f"{len(kinds) - len(modes_differ)} of {len(kinds)} submissions"
            + (f" (differ: {', '.join(modes_differ)})" if modes_differ else "")
        )

        honest = [s for s, k in kinds.items() if k != "broken"]
        disagree = []
        for s in honest:
            for task in manifest[name].tasks:
                a, b = nb_scores[s][task], float(ours[s][task])
                if a != b:
                    disagree.append(f"{s} ({kinds[s]}) Task {task}: nbgrader {a}, batch {b}")
        broken = [s for s, k in kinds.items() if k == "broken"]
        same = len(honest) - len({d.split()[0] for d in disagree})
        print(f"honest submissions: {len(honest)}; identical points on every task: {same}")
        for line in disagree:
            print(f"  DISAGREE {line}")
        for s in broken:
            nb = ", ".join(f"{t}={nb_scores[s][t]}" for t in manifest[name].tasks)
            print(f"  broken {s}: nbgrader {nb}; batch total {ours[s]['total']} ({ours[s]['reason'][:90]})")
        t_otter, otter_disagree = (None, []) if args.no_otter else compare_otter(root, name, kinds, nb_scores)
        if args.no_otter:
            print(OTTER.format(why="--no-otter"))
        n = len(kinds)
        print()
        print(f"{'path':44s} {'time':>8s} {'per sub':>8s} {'vs nbgrader':>11s}  isolation")
        table_rows = [
            ("nbgrader autograde, sequential", t_nbgrader, "nbgrader"),
            (f"batch, fresh bubblewrap per child ({workers} w.)", t_fresh, "fresh"),
            (f"batch, zygote per worker ({workers} w.)", t_batch, "zygote"),
        ]
        if t_otter is not None:
            table_rows.insert(1, ("Otter-Grader grade_submission, sequential", t_otter, "otter"))
        for label, seconds, key in table_rows:
            ratio = f"{t_nbgrader / seconds:.1f}x"
            print(f"{label:44s} {seconds:7.1f}s {seconds / n:7.2f}s {ratio:>11s}  {ISOLATION[key]}")
        print()
        print("throughput while grading (results saved per second, first to last) and each run's fixed cost:")
        rate = {}
        for mode in ("zygote", "fresh"):
            window, saved = grading_window(root / f"batch-{mode}")
            rate[mode] = (saved - 1) / window if window > 0 else float("nan")
            fixed = runs[mode][0] - window
            print(
                f"  {mode:7s} {rate[mode]:6.1f} submissions/s ({1000 / rate[mode]:5.0f} ms each on {workers} "
                f"workers); fixed cost of the run {fixed:4.1f} s (start-up, zygotes, gradebook, reports)"
            )
        print(
            f"zygote / fresh children: throughput {rate['zygote'] / rate['fresh']:.2f}x; "
            f"whole run of {n} submissions, fixed costs included, {t_fresh / t_batch:.2f}x"
        )
        startup_costs()
        profile(root, name)
        return 1 if disagree or modes_differ or otter_disagree else 0
    finally:
        for k, v in env_backup.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def compare_otter(
    root: Path, name: str, kinds: dict[str, str], nb_scores: dict[str, dict[str, float]]
) -> tuple[float | None, list[str]]:
    """Otter-Grader's ``grade_submission`` on the same submissions, one after another: its seconds
    (None where Otter cannot be installed) and the honest submissions' tasks where its points differ
    from nbgrader's. Prints what it did."""
    python = otter_bench.otter_python()
    if python is None:
        return None, []
    tasks = load_manifest()[name].tasks
    points = {t: float(task_points()[t]) for t in tasks}
    work = root / "otter"
    t = time.perf_counter()
    autograder = otter_bench.build_autograder(python, work, points)
    built = time.perf_counter() - t
    zips = {
        s: otter_bench.zip_submission(root / "submitted" / s / name, work / f"{s}.zip") for s in kinds
    }  # the students' hand-in (nbgrader reads the same folders unzipped)
    run = otter_bench.grade_all(python, autograder, zips, root)
    per = sorted(run.per_submission.values())
    median = per[len(per) // 2] if per else float("nan")
    print(
        f"Otter-Grader {otter_bench.OTTER_VERSION} grade_submission (sequential): {run.seconds:.1f} s "
        f"for {len(run.per_submission)} submissions (median {median:.2f} s each); autograder zip built by "
        f"otter generate in {built:.1f} s (not timed)"
    )
    if "(driver)" in run.errors:
        print(f"  Otter's driver failed: {otter_bench.printable(run.errors['(driver)'], 1500)}")
        return None, [f"driver: {run.errors['(driver)'][:200]}"]

    def otter_points(student: str, task: str) -> float | None:
        value = run.points.get(student, {}).get(otter_bench.test_name(task))
        return None if value is None else round(float(value), 2)

    honest = [s for s, k in kinds.items() if k != "broken"]
    disagree = [
        f"{s} ({kinds[s]}) Task {task}: nbgrader {nb_scores[s][task]}, Otter {otter_points(s, task)}"
        for s in honest
        for task in tasks
        if otter_points(s, task) is None or abs(otter_points(s, task) - nb_scores[s][task]) > 0.005
    ]
    same = len(honest) - len({d.split()[0] for d in disagree})
    partly = sum(1 for s in honest for task in tasks if 0 < nb_scores[s][task] < points[task])
    print(
        f"Otter vs nbgrader, honest submissions: identical points on every task: {same} of {len(honest)} "
        f"({partly} task scores of them strictly between 0 and the task's points)"
    )
    for line in disagree:
        print(f"  DISAGREE {line}")
    for s, kind in kinds.items():
        if kind == "broken":
            got = ", ".join(f"{task}={_or_ungraded(otter_points(s, task))}" for task in tasks)
            nb = ", ".join(f"{task}={nb_scores[s][task]}" for task in tasks)
            error = f" ({otter_bench.printable(run.errors[s], 90)})" if s in run.errors else ""
            print(f"  broken {s}: nbgrader {nb}; Otter {got}{error}")
    return run.seconds, disagree


def _or_ungraded(points: float | None) -> str:
    return "not graded" if points is None else f"{points}"


def cluster_bench(scheduler: str, per_assignment: int = 100) -> int:
    """Local pool against a Dask cluster on the same submissions of all four assignments."""
    from distributed import Client, LocalCluster

    manifest = load_manifest()
    root = Path(tempfile.mkdtemp(prefix="cnnlab-cluster-bench-"))
    os.environ["CNNLAB_COURSE_ROOT"] = str(root)
    os.environ["CNNLAB_COURSE_SECRET"] = secrets.token_hex(16)
    cluster = None
    try:
        course.release(root, manifest, log=lambda _: None)
        for name in manifest:
            fabricate(root, name, per_assignment)
        n = per_assignment * len(manifest)
        print(f"{n} submissions over {len(manifest)} assignments; course root {root}")
        if scheduler == "local":
            cluster = LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
            )
            scheduler = cluster.scheduler_address
        times, points = {}, {}
        for engine, address in (("local pool", None), ("dask", scheduler)):
            t = time.perf_counter()
            for name in manifest:
                options = batch.Options(
                    scheduler=address, force=True, gradebook=False, progress=False, log=lambda _: None,
                    out=root / f"out-{engine.replace(' ', '-')}" / name,
                )  # fmt: skip
                for row in batch.grade_assignment(name, root, options).rows:
                    points[(engine, name, row["student"])] = {t: v["points"] for t, v in row["tasks"].items()}
            times[engine] = time.perf_counter() - t
            print(f"{engine:10s}: {times[engine]:6.1f} s  ({n / times[engine]:5.1f} submissions/s)")
        differ = [k[1:] for k, v in points.items() if k[0] == "dask" and points[("local pool", *k[1:])] != v]
        same = not differ
        print(f"same points per task from both engines: {same}")
        for name, student in differ[:10]:
            local, dask = points[("local pool", name, student)], points[("dask", name, student)]
            print(f"  DIFFER {name} {student}: local pool {local}, dask {dask}")

        with Client(scheduler) as client:
            client.submit(int, 0, pure=False).result()  # warm
            t = time.perf_counter()
            client.gather(client.map(int, range(n), pure=False))
            per_task = (time.perf_counter() - t) / n
        print(f"Dask per-task overhead (no-op tasks, {n} of them): {1000 * per_task:.1f} ms  (goal <= 50 ms)")
        print(f"throughput ratio dask / local pool: {times['local pool'] / times['dask']:.2f}")
        return 0 if same else 1
    finally:
        if cluster is not None:
            cluster.close()
        shutil.rmtree(root, ignore_errors=True)


def startup_costs(children: int = 10) -> None:
    """What one sandboxed child costs to start, per sandbox mode: a child that imports the package
    and runs one trivial case, timed end to end (median of ``children``)."""
    import statistics

    from autograder import sandbox

    conv = (REPO / "solutions" / "cnnlab" / "conv.py").read_bytes()
    task = next(iter(load_reference().tasks.TASKS.values()))  # the table's first task: conv_output_size
    spec = sandbox.TaskSpec(task.id, task.module, task.function, [(5, 3, 1, 0)])
    print()
    print(f"sandbox start-up per child (median of {children}, child imports cnnlab and runs one case):")
    import dataclasses

    for name, bubblewrap in (("zygote", True), ("bubblewrap", True), ("fallback", False)):
        mode = sandbox.sandbox_mode(bubblewrap=bubblewrap)
        if bubblewrap and not mode.bwrap:
            print(f"  {name}: not available ({'; '.join(mode.advice)})")
            continue
        if name == "zygote" and not mode.zygote:
            print(f"  {name}: not available ({'; '.join(mode.advice)})")
            continue
        mode = dataclasses.replace(mode, zygote=name == "zygote")
        box = sandbox.Sandbox(REPO / "cnnlab", sandbox.Limits(timeout=30), mode=mode)
        t = time.perf_counter()
        box.run(sandbox.Work({"cnnlab/conv.py": conv}, [spec], {}, ["conv"]))  # the zygote starts
        first = time.perf_counter() - t
        times = []
        for _ in range(children):
            t = time.perf_counter()
            box.run(sandbox.Work({"cnnlab/conv.py": conv}, [spec], {}, ["conv"]))
            times.append(time.perf_counter() - t)
        median = statistics.median(times)
        started = (
            f"  (the zygote's own start, once per worker: {first - median:.2f} s)" if name == "zygote" else ""
        )
        print(f"  {name:10s}: {1000 * median:6.0f} ms{started}")


def profile(root: Path, name: str) -> None:
    """One submission's cost in the batch grader, stage by stage: every submission of the course
    graded again in this process, one after another (no pool), each stage timed where it runs."""
    import contextlib

    from autograder import cases, sandbox
    from autograder.batch import judge, run, store

    spent: dict[str, float] = {}

    def timed(owner: object, attr: str, stage: str) -> None:
        original = getattr(owner, attr)

        def wrapper(*a: object, **k: object) -> object:
            t = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                spent[stage] = spent.get(stage, 0.0) + time.perf_counter() - t

        setattr(owner, attr, wrapper)
        undo.append((owner, attr, original))

    undo: list[tuple[object, str, object]] = []
    stages = [
        (run, "read_submission", "intake: the submission's files"),
        (run, "check_notebooks", "notebook checks"),
        (cases, "task_inputs", "the reference's side: hidden cases"),
        (sandbox.Sandbox, "run", "the child (sandbox): start, import, run"),
        (judge, "_grade_task", "judging against the reference"),
        (store, "save_result", "the store: results/<student>.json"),
        (run, "write_gradebook", "the gradebook (nbgrader's database)"),
        (run, "write_autograded", "autograded/ notebooks"),
        (run, "write_reports", "reports: CSV, feedback, summary"),
    ]
    n = len(run.list_submissions(root, name, None))
    fixed = fixed_costs(name)
    for owner, attr, stage in stages:
        timed(owner, attr, stage)
    children = {"all": 0, "zygote": 0}
    box_run = sandbox.Sandbox.run

    def counted(self: object, work: object) -> object:
        outcomes, info = box_run(self, work)  # type: ignore[arg-type]
        children["all"] += info.get("children", 0)
        children["zygote"] += info.get("zygote", 0)
        return outcomes, info

    sandbox.Sandbox.run = counted  # type: ignore[method-assign]
    undo.append((sandbox.Sandbox, "run", box_run))
    timed(judge, "grade_job", "judge: total")

    class InProcess:
        description = "in this process"

        def run(self, jobs: list) -> object:
            return (judge.grade_job(job) for job in jobs)

        def close(self) -> None:
            pass

    original_engine = run.make_engine
    run.make_engine = lambda *a, **k: InProcess()  # type: ignore[assignment]
    try:
        options = batch.Options(
            force=True, progress=False, log=lambda _: None, out=root / "profile-out", workers=1
        )
        t = time.perf_counter()
        with contextlib.redirect_stdout(None):
            batch.grade_assignment(name, root, options)
        total = time.perf_counter() - t
    finally:
        run.make_engine = original_engine  # type: ignore[assignment]
        for owner, attr, original in reversed(undo):
            setattr(owner, attr, original)
    judge_total = spent.pop("judge: total", 0.0)
    inside = sum(v for k, v in spent.items() if k.startswith(("the reference", "the child", "judging")))
    spent["judge: the rest (rows, messages)"] = max(judge_total - inside, 0.0)
    spent["everything else (keys, deadlines, the loop)"] = max(total - sum(spent.values()), 0.0)
    print()
    print(
        f"one submission's cost in the batch grader, in this process ({n} submissions, mean, "
        "with the gradebook):"
    )
    for stage, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:46s} {1000 * seconds / n:8.1f} ms  {100 * seconds / total:5.1f} %")
    print(f"  {'total':46s} {1000 * total / n:8.1f} ms")
    print(
        f"  children per submission: {children['all'] / n:.2f} ({children['zygote'] / n:.2f} forked by a "
        "zygote; a crash or a time limit sends the rest of a submission to fresh children)"
    )
    print("what every run pays once, whatever the class size (each worker pays its own in parallel):")
    for what, seconds in fixed.items():
        print(f"  {what:66s} {seconds:6.2f} s")


def fixed_costs(name: str) -> dict[str, float]:
    """The costs a batch run pays once (not per submission), each measured alone: a Python with the
    grader's modules, the import of nbgrader's gradebook, and a worker's named-mistake mutants."""
    import statistics

    from autograder import mistakes
    from autograder.manifest import load_manifest

    def python(code: str) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    bare = python("pass")
    grader = python("import autograder.batch.cli")
    gradebook = python(
        "import autograder.lean_imports as l; l.decline_unused(); import nbgrader.api, nbformat"
    )
    code = (
        "import sys, time; from autograder import mistakes\n"
        f"ms = [m for t in {list(load_manifest()[name].tasks)!r} for m in mistakes.for_task(t)]\n"
        "t = time.perf_counter()\n[mistakes.load_mutant(m) for m in ms]\n"
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True)
    n_mutants = sum(len(mistakes.for_task(t)) for t in load_manifest()[name].tasks)
    return {
        "Python itself": bare,
        "the grader's modules (CLI, judge, sandbox, numpy, the reference)": grader - bare,
        "nbgrader's gradebook and nbformat (imported while workers grade)": gradebook - bare,
        f"a worker's {n_mutants} named-mistake mutants (made on first use)": float(out.stdout.strip()),
    }


if __name__ == "__main__":
    sys.exit(main())
