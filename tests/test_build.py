"""The build of the student release: reproducible, complete, and leaking no solution."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from autograder import build, markers
from autograder.errors import CnnlabError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def everything():
    """Every file the build writes: the release and the generated parts of hand-written files."""
    return build.build()


@pytest.fixture(scope="module")
def built(everything):
    """The student release only."""
    return {p: text for p, text in everything.items() if build.in_release(p)}


def test_committed_release_is_what_the_build_produces(everything):
    problems = build.check(everything)
    assert not problems, "run `make release` and commit:\n" + "\n".join(problems)


def solution_lines() -> list[str]:
    """Non-trivial lines that occur in the reference package only between solution markers."""
    inside, outside = set(), set()
    for src in (ROOT / "solutions" / "cnnlab").rglob("*.py"):
        text = src.read_text().splitlines()
        regions = markers.region_spans(text, src.name)
        in_region = {i for begin, end in regions for i in range(begin + 1, end)}
        for i, line in enumerate(text):
            (inside if i in in_region else outside).add(line.strip())
    return sorted(s for s in inside - outside if len(s) > 12)


def test_no_solution_text_in_the_release(built):
    secrets = solution_lines()
    assert secrets, "found no solution regions at all"
    for path, text in built.items():
        for marker in (build.BEGIN, build.END, build.BEGIN_HIDDEN, build.END_HIDDEN):
            assert marker not in text, f"{path.name} contains {marker}"
        if path.suffix == ".py":
            body = {s.strip() for s in text.splitlines()}
            leaked = [s for s in secrets if s in body]
            assert not leaked, f"{path.name} leaks solution lines: {leaked[:3]}"


def test_every_task_is_stubbed_with_its_message(built):
    from autograder.reference import load_reference

    for task in load_reference().tasks.TASKS.values():
        text = built[ROOT / task.path]
        tree = ast.parse(text)
        fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == task.function)
        body = ast.get_source_segment(text, fn)
        assert f"# TODO: Task {task.id}" in body
        assert (
            f'raise NotImplementedError("Task {task.id}: implement {task.function} in {task.path}")' in body
        )
        assert ast.get_docstring(fn), f"{task.function} lost its docstring"


def test_generated_files_carry_the_banner(built):
    for path, text in built.items():
        if path.suffix == ".py":
            assert text.startswith("# Generated from solutions/cnnlab/"), path.name


def test_released_notebooks_have_no_outputs_and_no_hidden_tests(built):
    for path, text in built.items():
        if path.suffix == ".ipynb":
            nb = json.loads(text)
            for cell in nb["cells"]:
                assert cell.get("outputs", []) == [] and cell.get("execution_count") is None, path.name
                source = "".join(cell["source"])
                assert "grade_task" not in source, f"{path.name}: hidden grading call released"


def test_strip_module_replaces_regions_and_keeps_the_rest():
    from autograder.reference import load_reference

    src = (
        "def conv1d(x, w):\n"
        '    """Doc."""\n'
        "    x = check(x)\n"
        "    ### BEGIN SOLUTION\n"
        "    return secret(x)\n"
        "    ### END SOLUTION\n"
        "\n"
        "def helper():\n"
        "    return 1\n"
    )
    out, ids = build.strip_module(src, "conv", load_reference().tasks.TASKS)
    assert ids == ["1.2"]
    assert "secret" not in out and "x = check(x)" in out and "def helper():\n    return 1" in out
    assert re.search(
        r"    # TODO: Task 1\.2.*\n    raise NotImplementedError\(\"Task 1\.2: implement conv1d", out
    )


@pytest.mark.parametrize(
    ("src", "match"),
    [
        ("def f():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n", "no task"),
        ("def conv1d():\n    ### BEGIN SOLUTION\n    pass\n", "never closed"),
        ("def conv1d():\n    pass\n    ### END SOLUTION\n", "without"),
    ],
)
def test_strip_module_fails_loudly(src, match):
    from autograder.reference import load_reference

    with pytest.raises(CnnlabError, match=match):  # a BuildError or a MarkerError: one line at release
        build.strip_module(src, "conv", load_reference().tasks.TASKS)


def test_release_notebook_strips_solutions_hidden_tests_and_outputs():
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"nbgrader": {"grade": True, "grade_id": "task1_1"}},
                "source": 'check("1.1")\n### BEGIN HIDDEN TESTS\ngrade("1.1")\n### END HIDDEN TESTS',
                "outputs": [{"output_type": "stream", "text": "x"}],
                "execution_count": 3,
            },
            {
                "cell_type": "markdown",
                "metadata": {"nbgrader": {"solution": True}},
                "source": "Answer:\n### BEGIN SOLUTION\nbecause\n### END SOLUTION",
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    out = build.release_notebook(nb)
    assert out["cells"][0]["source"] == 'check("1.1")'
    assert out["cells"][0]["outputs"] == [] and out["cells"][0]["execution_count"] is None
    assert out["cells"][0]["metadata"]["nbgrader"]["grade_id"] == "task1_1"
    assert out["cells"][1]["source"] == "Answer:\nYOUR ANSWER HERE"
    assert nb["cells"][0]["execution_count"] == 3, "the source notebook must not be modified"


def test_a_stray_marker_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    """A user error at release (here an END SOLUTION without its BEGIN) prints one line, exit 2."""
    import shutil

    shutil.copytree(build.SOURCE_PKG, tmp_path / "cnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    pool = tmp_path / "cnnlab" / "pool.py"
    pool.write_text(pool.read_text() + "\n    ### END SOLUTION\n")
    monkeypatch.setattr(build, "SOURCE_PKG", tmp_path / "cnnlab")
    assert build.main(["--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "pool.py" in err and "END SOLUTION without" in err
