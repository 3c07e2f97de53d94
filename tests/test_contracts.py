"""The course's contracts, checked statically in seconds (and, marked slow, on many course secrets).

* Every source notebook keeps its contract (:func:`autograder.generate.notebook_contract`): its
  tasks' headings and check cells in task-table order, each check cell right after its heading with
  the derived source and the manifest's points, the heading naming the task's file, stable unique
  cell ids, no demo calling a task function that is still a stub for its reader. Each rule is shown
  to fail on a notebook that breaks it.
* A task is written in five places: outside ``tests/``, the generated release, the demo's sample
  students and the generated regions, each task's identity appears in at most five files.
* Every named mistake (``autograder/mistakes.py``) earns at most a small fraction of its task's points
  on every one of many course secrets: no hidden case lets a wrong answer earn credit.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from autograder import cases, generate, hidden, mistakes, scoring, secret
from autograder.manifest import task_points
from autograder.reference import load_reference

ROOT = Path(__file__).resolve().parent.parent
TASKS = load_reference().tasks.TASKS
POINTS = task_points()
SOURCE_NB = ROOT / "solutions" / "notebooks"
NOTEBOOKS = sorted(p.stem for p in SOURCE_NB.glob("*.ipynb"))
MAX_PLACES = 5
#: what a named mistake may earn at most, as a fraction of its task's points
SMALL = 0.1
#: the course secrets the mistakes are graded under (each gives every task its own seed)
SECRETS = [f"course secret {i}".encode() for i in range(12)]


def _source(name: str) -> dict[str, Any]:
    return json.loads((SOURCE_NB / f"{name}.ipynb").read_text())


def _contract(nb: dict[str, Any], name: str) -> list[str]:
    return generate.notebook_contract(nb, name, TASKS, POINTS)


# --------------------------------------------------------------------------- the notebook contract


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_source_notebook_keeps_its_contract(name: str) -> None:
    assert _contract(_source(name), name) == []


def _index(nb: dict[str, Any], cell_id: str) -> int:
    return next(i for i, c in enumerate(nb["cells"]) if c.get("id") == cell_id)


def _heading_index(nb: dict[str, Any], task_id: str) -> int:
    return next(i for i, c in enumerate(nb["cells"]) if generate.task_heading(c) == task_id)


def _swap_tasks(nb: dict[str, Any]) -> None:
    """Task 1.2's heading and check cell moved above Task 1.1's."""
    first, second = _heading_index(nb, "1.1"), _heading_index(nb, "1.2")
    pair = nb["cells"][second : second + 2]
    del nb["cells"][second : second + 2]
    nb["cells"][first:first] = pair


def _heading_file(nb: dict[str, Any]) -> None:
    cell = nb["cells"][_heading_index(nb, "1.1")]
    cell["source"] = ["## Task 1.1: conv_output_size in `cnnlab/pool.py`\n", *cell["source"][1:]]


def _duplicate_id(nb: dict[str, Any]) -> None:
    nb["cells"][3]["id"] = nb["cells"][2]["id"]


def _random_id(nb: dict[str, Any]) -> None:
    nb["cells"][3]["id"] = "3f2a9c1b"


def _no_check_cell(nb: dict[str, Any]) -> None:
    del nb["cells"][_heading_index(nb, "1.2") + 1]


def _wrong_points(nb: dict[str, Any]) -> None:
    nb["cells"][_heading_index(nb, "1.1") + 1]["metadata"]["nbgrader"]["points"] = 99


def _edited_check_cell(nb: dict[str, Any]) -> None:
    cell = nb["cells"][_heading_index(nb, "1.1") + 1]
    cell["source"] = ["check_task('1.1')\n"]


def _demo_calls_a_later_stub(nb: dict[str, Any]) -> None:
    """A demo above Task 1.2's check cell calls conv1d: in the release it meets the stub."""
    demo = {
        "cell_type": "code",
        "execution_count": None,
        "id": "nb01-early-demo",
        "metadata": {},
        "outputs": [],
        "source": ["h = conv.conv1d(np.ones(3), np.ones(2))\n"],
    }
    nb["cells"].insert(_heading_index(nb, "1.2"), demo)


def _demo_calls_a_later_notebooks_stub(nb: dict[str, Any]) -> None:
    demo = {
        "cell_type": "code",
        "execution_count": None,
        "id": "nb01-layer-demo",
        "metadata": {},
        "outputs": [],
        "source": ["from cnnlab.pool import maxpool2d_forward\n", "out, _ = maxpool2d_forward(x)\n"],
    }
    nb["cells"].append(demo)


BROKEN = {
    "check cells out of task-table order": (_swap_tasks, "in this order"),
    "heading names another file": (_heading_file, "heading is"),
    "duplicate cell id": (_duplicate_id, "duplicate cell ids"),
    "random cell id": (_random_id, "random id"),
    "check cell missing": (_no_check_cell, "no check cell right after Task 1.2"),
    "points differ from the manifest": (_wrong_points, "metadata"),
    "check cell edited": (_edited_check_cell, "differs from the derived source"),
    "demo calls a stub of this notebook above its check": (_demo_calls_a_later_stub, "calls conv.conv1d"),
    "demo calls a stub of a later notebook": (
        _demo_calls_a_later_notebooks_stub,
        "calls pool.maxpool2d_forward",
    ),
}


@pytest.mark.parametrize("broken", BROKEN)
def test_the_contract_check_fails_when_the_contract_is_broken(broken: str) -> None:
    nb = _source("01_convolution")
    breaks, words = BROKEN[broken]
    breaks(nb)
    problems = _contract(nb, "01_convolution")
    assert any(words in p for p in problems), problems


def test_a_demo_that_expects_the_stub_may_call_it() -> None:
    nb = _source("01_convolution")
    guarded = (
        "try:\n    conv.conv1d(np.ones(3), np.ones(2))\nexcept NotImplementedError as err:\n    print(err)\n"
    )
    demo = {"cell_type": "code", "id": "nb01-guarded", "metadata": {}, "outputs": [], "source": guarded}
    nb["cells"].insert(_heading_index(nb, "1.2"), demo)
    assert _contract(nb, "01_convolution") == []


def test_the_build_derives_heading_and_check_cell_from_the_table() -> None:
    """Delete a check cell and garble its heading's file name: the derivation restores both."""
    committed = _source("01_convolution")
    nb = json.loads(json.dumps(committed))
    _no_check_cell(nb)
    cell = nb["cells"][_heading_index(nb, "1.2")]
    cell["source"] = ["## Task 1.2 (old title)\n", *cell["source"][1:]]
    derived = generate.with_check_cells(nb, "01_convolution", TASKS, POINTS)
    assert _contract(derived, "01_convolution") == []
    check = derived["cells"][_heading_index(derived, "1.2") + 1]
    assert "".join(check["source"]) == generate.check_cell_source(TASKS["1.2"])
    assert check["metadata"]["nbgrader"]["points"] == POINTS["1.2"]
    assert [c["source"] for c in derived["cells"]] == [c["source"] for c in committed["cells"]]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            lambda nb: nb["cells"].__setitem__(6, {**nb["cells"][6], "source": ["## Task 9.9: nothing\n"]}),
            "9.9",
        ),
        (lambda nb: nb["cells"].insert(0, nb["cells"][7]), "without a '## Task X.Y' markdown cell"),
    ],
)
def test_the_derivation_refuses_unknown_tasks_and_orphan_check_cells(change: Any, match: str) -> None:
    nb = _source("01_convolution")
    change(nb)
    with pytest.raises(generate.GenerateError, match=re.escape(match)):
        generate.with_check_cells(nb, "01_convolution", TASKS, POINTS)


# --------------------------------------------------------------------------- generated regions


def test_generated_regions_are_replaced_and_everything_else_kept() -> None:
    text = "intro\n<!-- begin generated: t (a note) -->\nstale\n<!-- end generated: t -->\noutro\n"
    assert generate.fill_regions(text, "x.md", {"t": lambda: "fresh"}) == (
        "intro\n<!-- begin generated: t (a note) -->\nfresh\n<!-- end generated: t -->\noutro\n"
    )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("<!-- begin generated: t -->\n", "never closed"),
        ("<!-- begin generated: u -->\n<!-- end generated: u -->\n", "unknown generated region"),
        ("nothing\n", "missing"),
        ("<!-- end generated: t -->\n", "end unopened"),
    ],
)
def test_generated_regions_fail_loudly(text: str, match: str) -> None:
    with pytest.raises(generate.GenerateError, match=match):
        generate.fill_regions(text, "x.md", {"t": lambda: "fresh"})


# --------------------------------------------------------------------------- a task in five places

#: hand-written files that may not name a task: none of these are (tests, the generated release, the
#: demo's sample students); generated regions are left out of every file
NOT_HAND_WRITTEN = ("tests/", "cnnlab/", "notebooks/", "autograder/samples/")


def _without_generated_regions(text: str) -> str:
    out, inside = [], False
    for line in text.splitlines():
        if generate.BEGIN_GENERATED.search(line):
            inside = True
        elif generate.END_GENERATED.search(line):
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def identity_patterns(task: Any) -> list[re.Pattern[str]]:
    """How a task's identity is spelled: its id quoted, its marker, "Task X.Y", a table row."""
    tid = re.escape(task.id)
    return [
        re.compile(rf"[\"']{tid}[\"']"),
        re.compile(rf"\b{task.marker}\b"),
        re.compile(rf"Task {tid}\b"),
        re.compile(rf"\|\s*{tid}\s*\|"),
    ]


def places_naming(task: Any, files: dict[str, str]) -> list[str]:
    patterns = identity_patterns(task)
    return sorted(f for f, text in files.items() if any(p.search(text) for p in patterns))


@pytest.fixture(scope="module")
def hand_written() -> dict[str, str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the hand-written files are the tracked ones")
    files = {}
    for rel in listed:
        path = ROOT / rel
        if rel.startswith(NOT_HAND_WRITTEN) or not path.is_file():
            continue
        try:
            files[rel] = _without_generated_regions(path.read_text())
        except UnicodeDecodeError:
            continue
    return files


@pytest.mark.parametrize("task_id", list(TASKS))
def test_each_task_is_named_in_at_most_five_hand_written_files(
    task_id: str, hand_written: dict[str, str]
) -> None:
    places = places_naming(TASKS[task_id], hand_written)
    assert len(places) <= MAX_PLACES, f"Task {task_id} is named in {len(places)} files: {places}"
    # the task table is one of them, wherever it lives (solutions/cnnlab/_internal/tasks.py)
    table = Path(load_reference().tasks.__file__).resolve().relative_to(ROOT).as_posix()
    assert table == "solutions/cnnlab/_internal/tasks.py" and table in places, places


def test_the_places_check_would_see_a_sixth_place(hand_written: dict[str, str]) -> None:
    task = TASKS["2.2"]
    files = dict(hand_written)
    for i in range(MAX_PLACES + 1):
        files[f"extra{i}.py"] = f'if task_id == "{task.id}":\n    pass\n'
    assert len(places_naming(task, files)) > MAX_PLACES
    generated = f"<!-- begin generated: t -->\n| {task.id} | x |\n<!-- end generated: t -->\n"
    assert places_naming(task, {"g.md": _without_generated_regions(generated)}) == []


# --------------------------------------------------------------------------- named mistakes, every secret


def mistake_scores(mistake: mistakes.Mistake, ref: ModuleType, secrets: list[bytes]) -> list[float]:
    """The fraction of its task's points a mutant earns under each course secret (student "s"),
    less the share of the parts of a multi-part result it computes right on every case (a mistake
    in ``db`` leaves ``dx`` and ``dw`` right: those parts earn their share, by the per-part rule)."""
    mutant = mistakes.load_mutant(mistake)
    scores = []
    for s in secrets:
        seed = secret.student_seed(s, "s", mistake.task)
        earned = hidden.grade_function(mistake.task, mutant, ref, seed).fraction
        scores.append(earned - _always_right_share(mistake, mutant, ref, seed))
    return scores


def _always_right_share(mistake: mistakes.Mistake, mutant: ModuleType, ref: ModuleType, seed: int) -> float:
    """The share of a case that the parts the mutant gets right on every hidden case are worth."""
    from autograder import partial

    checks = cases.verdicts_module(ref)
    parts = list(checks.PARTS.get(mistake.task, ()))
    if len(parts) < 2:
        return 0.0
    fn = cases.task_function(mutant, mistake.task)
    always = set(parts)
    with checks.quiet():
        for case in cases.task_inputs(mistake.task, cases.task_rng(mistake.task, seed)):
            expected = cases.expected_outcome(mistake.task, case.args, ref)
            if not isinstance(expected, dict):  # a case that must raise has no parts
                continue
            got = checks.call(mistake.task, fn, copy.deepcopy(case.args))[0]
            always &= set(partial.right_parts(mistake.task, got, expected, checks) or ())
    return len(always) / len(parts)


@pytest.mark.slow
@pytest.mark.parametrize("mistake", mistakes.MISTAKES, ids=lambda m: m.id)
def test_every_named_mistake_earns_almost_nothing_under_every_secret(mistake: mistakes.Mistake) -> None:
    """No hidden case lets a named mistake earn credit for what it gets wrong, under any secret."""
    scores = mistake_scores(mistake, load_reference(), SECRETS)
    assert max(scores) <= SMALL, (
        f"{mistake.id} earns {max(scores):.0%} of Task {mistake.task} under a secret, beyond its right parts"
    )


def test_the_every_secret_check_catches_a_degenerate_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hidden cases of conv1d drawn in mode 'full' only cannot show a 'same'-mode mistake: it earns
    full marks, and the check sees it."""
    draw = cases.task_inputs

    def full_mode_only(task_id: str, rng: Any, visible: bool = False) -> list[Any]:
        drawn = draw(task_id, rng, visible)
        return [c for c in drawn if c.args[-1] == "full"] if task_id == "1.2" else drawn

    monkeypatch.setattr(cases, "task_inputs", full_mode_only)
    scores = mistake_scores(mistakes.BY_ID["conv1d_same_offset"], load_reference(), SECRETS[:2])
    assert max(scores) > SMALL


def test_the_every_secret_check_catches_credit_for_cases_a_mistake_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the rule that a known mistake's right answers earn nothing, a 'same'-mode mistake earns
    the credit of every 'full' and 'valid' case: the check sees it."""
    monkeypatch.setattr(scoring, "_a_mistake_passes_too", lambda *args: False)
    scores = mistake_scores(mistakes.BY_ID["conv1d_same_offset"], load_reference(), SECRETS[:2])
    assert max(scores) > SMALL
