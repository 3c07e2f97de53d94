"""Measure the system calls a grading child makes: the evidence behind the seccomp allow list.

``python -m tools.measure_syscalls`` grades the reference solution of every assignment with the real
batch grader's judge (every task, the full hidden-case suite, plus the backward tasks' second run on
the student's own cache), each child run under ``strace -f`` (Debian package ``strace``) in the
fallback sandbox with seccomp switched off, and prints the system calls the children made, with
counts, and which of them ``autograder/sandbox/syscalls.py`` does not allow. A student's submission
that raises, runs out of memory or prints is graded too, so the error paths are measured as well.

``python -m tools.measure_syscalls --zygote`` measures the children a zygote forks instead (the
zygote's whole bubblewrap under ``strace -f``, seccomp off), counting each child's calls from its
confinement on (its own filter's scope) and those of the threads it starts: the setup before it
(``unshare``, ``mount``, ``pivot_root``, ...) is the zygote filter's, never the child's.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from autograder import sandbox
from autograder.batch import judge
from autograder.manifest import load_manifest
from autograder.reference import ROOT, load_reference
from autograder.sample_students import reference_variant
from autograder.sandbox import confine, syscalls, zygotes

CALL = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?([a-z_0-9]+)\(")
CLONED = re.compile(r"\bclone3?\b.*= (\d+)$|<\.\.\. clone3? resumed>.*= (\d+)$")
ERRORS = """
def conv2d_forward(x, w, b, stride=1, pad=0):
    print("a student's print", x.shape)
    big = [bytearray(2**20) for _ in range(2000)]  # MemoryError under the address-space limit
    return big
"""


def _jobs(trace_dir: Path) -> list[judge.Job]:
    tasks = load_reference().tasks.TASKS
    release = judge.Release.read(ROOT / "cnnlab")
    jobs = []
    for name, assignment in load_manifest().items():
        points = assignment.points
        for variant in ("reference", "errors"):
            files = {}
            for rel in assignment.files:
                module = Path(rel).stem
                text = reference_variant(module, None, ())
                if variant == "errors" and module == "conv":
                    text += ERRORS
                files[rel] = text.encode()
            rows = [judge.TaskJob(t, tasks[t].module, tasks[t].function, float(p)) for t, p in points.items()]
            jobs.append(
                judge.Job(
                    student=variant, assignment=name, key="key", seeds=dict.fromkeys(assignment.points, 1234),
                    tasks=rows, files=files, problems=[], rejected=None, timestamp=None, time_source="none",
                    limits=sandbox.Limits(timeout=120, memory_mb=600), release=release,
                )
            )  # fmt: skip
    return jobs


def _after_confinement(text: str) -> collections.Counter[str]:
    """The calls of each zygote child from the moment it is confined (its ``landlock_restrict_self``,
    right before its own seccomp filter) on, and every call of the threads it starts afterwards; the
    zygote's, the monitors' and each child's setup are not the grading child's (their filter is
    bubblewrap's)."""
    counts: collections.Counter[str] = collections.Counter()
    confined: set[str] = set()
    for line in text.splitlines():
        pid = line.split(None, 1)[0] if line[:1].isdigit() else ""
        m = CALL.match(line)
        if pid in confined:
            if m:
                counts[m.group(1)] += 1
            spawned = CLONED.search(line)
            if spawned:
                confined.add(spawned.group(1) or spawned.group(2))
        elif m and m.group(1) == "landlock_restrict_self":
            confined.add(pid)
    return counts


def measure(zygote: bool = False) -> collections.Counter[str]:
    """System call name -> number of calls, over every child of every job: run whole in the
    fallback, or (``zygote``) children forked by a zygote, from their confinement on."""
    if shutil.which("strace") is None:
        sys.exit("strace is not installed (Debian: apt-get install strace)")
    trace_dir = Path(tempfile.mkdtemp(prefix="cnnlab-strace-"))
    if zygote:
        found = confine.sandbox_mode(bubblewrap=True)
        if not found.zygote:
            sys.exit(f"no zygote on this machine: {found.advice}")
        mode = dataclasses.replace(found, seccomp=False)
    else:
        mode = dataclasses.replace(confine.sandbox_mode(bubblewrap=False), seccomp=False)

    def wrapper() -> list[str]:
        return ["strace", "-f", "-qq", "-o", str(trace_dir / f"trace-{uuid.uuid4().hex}")]

    class Traced(sandbox.Sandbox):
        def __init__(self, release_pkg, limits, slot=0, mode_=None):  # noqa: ANN001
            super().__init__(release_pkg, limits, slot, mode)

    Traced.wrapper = staticmethod(wrapper)  # type: ignore[assignment]
    zygotes.Zygote.wrapper = staticmethod(wrapper)  # type: ignore[assignment]
    sandbox.Sandbox = Traced  # type: ignore[misc]
    counts: collections.Counter[str] = collections.Counter()
    try:
        for job in _jobs(trace_dir):
            row = judge.grade_job(job)
            points = {t: r["points"] for t, r in row["tasks"].items()}
            print(f"{job.assignment} {job.student}: {points}", file=sys.stderr)
        zygotes.close_all()
        for path in trace_dir.iterdir():
            text = path.read_text(errors="replace")
            if zygote:
                counts += _after_confinement(text)
                continue
            for line in text.splitlines():
                m = CALL.match(line)
                if m:
                    counts[m.group(1)] += 1
    finally:
        shutil.rmtree(trace_dir, ignore_errors=True)
    return counts


def main(argv: list[str] | None = None) -> None:
    """``python -m tools.measure_syscalls [--zygote]``: the fallback's children whole, or the zygote's
    children from their confinement on."""
    args = sys.argv[1:] if argv is None else argv
    zygote = "--zygote" in args
    counts = measure(zygote)
    allowed = set(syscalls.ALLOWED) | (set() if zygote else set(syscalls.STARTUP_ONLY))
    allowed |= set(syscalls.CONDITIONAL)
    for name, n in sorted(counts.items()):
        note = "   (on its arguments)" if name in syscalls.CONDITIONAL else ""
        print(f"{name:24} {n:8d}{note if name in allowed else '   NOT ALLOWED'}")
    missing = sorted(set(counts) - allowed)
    who = "zygote children (after confinement)" if zygote else "fallback children"
    print(f"{who}: {len(counts)} system calls used; not in the allow list: {', '.join(missing) or 'none'}")


if __name__ == "__main__":
    main()
