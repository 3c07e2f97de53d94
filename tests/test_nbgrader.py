"""End to end through the real nbgrader commands: release, submissions, autograde, feedback, export.

Everything runs in a temporary course root (never in ``autograder/course``). One module-scoped
fixture releases once and autogrades a handful of fabricated students once (about 2-3 minutes on
2 cores); the tests then read the gradebook, the exported CSV, the autograded notebooks and the
feedback HTML. The full mutant suite runs without nbgrader in ``tests/test_mutants.py``.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autograder import course, database
from autograder.manifest import Assignment, ManifestError, exclude_overwriting, load_manifest
from autograder.mistakes import BY_ID
from autograder.reference import load_reference

sys.path.insert(0, str(Path(__file__).parent))
import pg  # noqa: E402

pytestmark = pytest.mark.skipif(
    shutil.which("nbgrader", path=str(Path(sys.executable).parent)) is None,
    reason="nbgrader is not installed in this environment",
)

# Students of the fixture: samples/*.toml of the repo plus these, written into a temporary folder.
TEST_SAMPLES = {
    "stubs": 'description = "the release, unchanged"\ndefault = "stub"\n',
    "mutant": """description = "one known mistake in 2.1, one in 3.2 and one in 5.2"
default = "reference"
[assignments.01_convolution]
skip = true
[assignments.02_conv_layer]
files."cnnlab/conv.py" = { mistakes = ["conv2d_no_bias"] }
[assignments.03_equivariance_pooling]
files."cnnlab/pool.py" = { mistakes = ["maxpool_backward_assign_overlap"] }
[assignments.04_residual]
skip = true
[assignments.05_conv_pool_stacks]
files."cnnlab/network.py" = { mistakes = ["rf_pool_ignored"] }
# the stubs: notebook 05's digit network stops at once (it needs 2.1-3.2); the graded cells do not
files."cnnlab/conv.py" = "stub"
files."cnnlab/pool.py" = "stub"
files."cnnlab/residual.py" = "stub"
""",
    "broken": """description = "syntax error in conv.py (01), conv.py missing (02), notebook not JSON (03)"
default = "reference"
[assignments.01_convolution]
files."cnnlab/conv.py" = { file = "files/bobby_conv_syntax_error.py.txt" }
[assignments.02_conv_layer]
files."cnnlab/conv.py" = "missing"
[assignments.03_equivariance_pooling]
notebooks."03_equivariance_pooling.ipynb" = "invalid_json"
[assignments.04_residual]
skip = true
[assignments.05_conv_pool_stacks]
skip = true
""",
}
STUDENTS = ["ada", *TEST_SAMPLES]
MUTANTS = {"2.1": "conv2d_no_bias", "3.2": "maxpool_backward_assign_overlap", "5.2": "rf_pool_ignored"}


@dataclass
class Graded:
    root: Path
    manifest: dict[str, Assignment]
    autograde: course.NbgraderRun
    feedback: course.NbgraderRun
    csv: Path
    table: course.Table


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    """Release once, fabricate the students, autograde them, generate feedback, export the CSV."""
    root = tmp_path_factory.mktemp("course")
    samples = tmp_path_factory.mktemp("samples")
    shutil.copytree(course.SAMPLES_DIR, samples, dirs_exist_ok=True)
    for name, text in TEST_SAMPLES.items():
        (samples / f"{name}.toml").write_text(text)
    manifest = load_manifest()
    course.use_fixed_secret(root)  # the same hidden cases on every run
    course.release(root, manifest, log=lambda _: None)
    course.fabricate(root, STUDENTS, manifest, samples)
    run = course.autograde_all(root)  # one nbgrader start-up for all submissions
    feedback = course.generate_feedback(root)
    csv_path = course.export_csv(root)
    return Graded(root, manifest, run, feedback, csv_path, course.grade_table(root, STUDENTS, manifest))


def _text(path: Path) -> str:
    """The visible text of an HTML file (tags dropped, entities decoded, whitespace collapsed)."""
    raw = re.sub(r"<(style|script)\b.*?</\1>", " ", path.read_text(), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


def _outputs(nb_path: Path) -> str:
    """All outputs (streams, results, tracebacks) of an autograded notebook, as one string."""
    parts = []
    for cell in json.loads(nb_path.read_text())["cells"]:
        for out in cell.get("outputs", []):
            parts += [str(out.get("text", "")), str(out.get("data", "")), str(out.get("evalue", ""))]
            parts += out.get("traceback", [])
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(parts))


@pytest.fixture(scope="module")
def postgres() -> Any:
    """A throwaway PostgreSQL server (tests/pg.py), or a skip where Debian's postgresql is missing."""
    if pg.binaries() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    with pg.server(("gradebook",)) as urls:
        yield urls


# --- release ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_release_is_clean(graded: Graded) -> None:
    assert course.check_release(graded.root, graded.manifest) == []
    for name, assignment in graded.manifest.items():
        source, release = graded.root / "source" / name, graded.root / "release" / name
        for nb in assignment.notebooks:
            assert "BEGIN HIDDEN TESTS" in (source / nb).read_text()  # the check below is meaningful
            assert "grade_task(" not in (release / nb).read_text()
        # the released package is the generated stubs, complete (all files, so that imports work)
        released = (release / "cnnlab").rglob("*")
        got = sorted(p.relative_to(release / "cnnlab").as_posix() for p in released if p.is_file())
        assert got == sorted(course.built_package())


@pytest.mark.slow
def test_release_check_catches_planted_leaks(graded: Graded, tmp_path: Path) -> None:
    secret = sorted(course.secret_lines(), key=lambda line: (line.startswith("#"), line))[0]  # code
    nb_name = graded.manifest["02_conv_layer"].notebooks[0]
    plants = {
        "marker in a .py": ("02_conv_layer/cnnlab/conv.py", "    ### BEGIN SOLUTION\n"),
        "hidden-test marker": ("01_convolution/cnnlab/pool.py", "### BEGIN HIDDEN TESTS\n"),
        "solution line in a .py": ("04_residual/cnnlab/residual.py", f"        {secret}\n"),
        "reference module name": (
            "03_equivariance_pooling/cnnlab/_internal/checks.py",
            "import cnnlab_reference\n",
        ),
    }
    for what, (rel, text) in plants.items():
        root = tmp_path / what.replace(" ", "_")
        shutil.copytree(graded.root / "release", root / "release")
        with open(root / "release" / rel, "a") as fh:
            fh.write(text)
        assert course.check_release(root, graded.manifest), f"not caught: {what}"

    # a solution line in a notebook cell, and the reference package copied into the release
    root = tmp_path / "notebook"
    shutil.copytree(graded.root / "release", root / "release")
    nb_path = root / "release" / "02_conv_layer" / nb_name
    nb = json.loads(nb_path.read_text())
    nb["cells"][-1]["source"] = f"x = 1\n{secret}\n"
    nb_path.write_text(json.dumps(nb))
    problems = course.check_release(root, graded.manifest)
    assert any("a line of a solution" in p for p in problems), problems
    shutil.copytree(course.SOLUTIONS_PKG, root / "release" / "01_convolution" / "solutions" / "cnnlab")
    assert any("solutions/ or autograder/" in p for p in course.check_release(root, graded.manifest))

    # the command line fails loudly (exit 1) on a leaky release
    env = {**course.nbgrader_env(root), "CNNLAB_COURSE_ROOT": str(root)}
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "check-release"],
        cwd=course.REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "RELEASE CHECK FAILED" in proc.stdout


def test_release_fails_loudly_on_a_wrong_manifest_path(tmp_path: Path) -> None:
    from autograder import build

    files = {build.RELEASE_PKG / "conv.py": "# stub\n", build.RELEASE_PKG / "__init__.py": ""}
    real = load_manifest()["02_conv_layer"]
    wrong = Assignment("02_conv_layer", real.notebooks, ("cnnlab/convolution.py",), real.points)
    with pytest.raises(ManifestError, match="convolution.py"):
        course.assemble_source(tmp_path, {"02_conv_layer": wrong}, files)
    no_nb = Assignment("02_conv_layer", ("02_nowhere.ipynb",), real.files, real.points)
    with pytest.raises(course.CourseError, match="02_nowhere.ipynb"):
        course.assemble_source(tmp_path, {"02_conv_layer": no_nb}, files)


# --- exclude_overwriting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        *("cnnlab", "cnnlab/", "cnnlab/*.py", "cnnlab/conv.*", "./cnnlab/conv.py", "cnnlab//conv.py"),
        *("cnnlab/../cnnlab/conv.py", "/cnnlab/conv.py", "cnnlab\\conv.py", " cnnlab/conv.py"),
        "cnnlab/nothere.py",
    ],
)
def test_exclude_overwriting_rejects_what_nbgrader_would_ignore(tmp_path: Path, entry: str) -> None:
    (tmp_path / "a" / "cnnlab").mkdir(parents=True)
    (tmp_path / "a" / "cnnlab" / "conv.py").write_text("")
    good = {"a": Assignment("a", ("a.ipynb",), ("cnnlab/conv.py",), {"1.1": 1})}
    assert exclude_overwriting(tmp_path, good) == {"a": ["cnnlab/conv.py"]}
    bad = {"a": Assignment("a", ("a.ipynb",), (entry,), {"1.1": 1})}
    with pytest.raises(ManifestError):
        exclude_overwriting(tmp_path, bad)


@pytest.mark.slow
def test_nbgrader_refuses_to_run_with_a_bad_manifest(
    graded: Graded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory entry passes nbgrader silently; our config stops the command instead."""
    entry = "cnnlab"
    text = course.REPO.joinpath("autograder", "assignments.toml").read_text()
    bad = tmp_path / "assignments.toml"
    bad.write_text(text.replace('files = ["cnnlab/conv.py"]', f'files = ["{entry}"]'))
    monkeypatch.setenv("CNNLAB_MANIFEST", str(bad))
    before = (graded.root / "autograded" / "ada" / "02_conv_layer").stat().st_mtime
    run = course.run_nbgrader(["autograde", "02_conv_layer", "--student", "ada", "--force"], graded.root)
    assert run.returncode != 0
    assert entry in run.output and "[cnnlab] nbgrader_config.py" in run.output
    assert (graded.root / "autograded" / "ada" / "02_conv_layer").stat().st_mtime == before


# --- grades -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reference_gets_full_marks(graded: Graded) -> None:
    assert graded.table.rows["ada"] == graded.table.max_points


@pytest.mark.slow
def test_stubs_score_zero(graded: Graded) -> None:
    assert graded.table.rows["stubs"] == dict.fromkeys(graded.table.tasks, 0.0)


@pytest.mark.slow
def test_export_csv_carries_the_totals(graded: Graded) -> None:
    totals = course.read_csv_totals(graded.csv)
    for name, assignment in graded.manifest.items():
        assert totals[("ada", name)] == pytest.approx(assignment.total)
        assert totals[("stubs", name)] == 0
    for student in STUDENTS:
        csv_total = sum(v for (s, _), v in totals.items() if s == student)
        assert csv_total == pytest.approx(graded.table.total(student), abs=0.01)


@pytest.mark.slow
def test_missing_student_file_is_not_replaced_by_another_copy(graded: Graded) -> None:
    """No fallback to the instructor's stub (source/), nor to the repo's cnnlab (editable install)."""
    assert graded.table.rows["broken"]["2.1"] == 0 and graded.table.rows["broken"]["2.2"] == 0
    folder = graded.root / "autograded" / "broken" / "02_conv_layer"
    assert not (folder / "cnnlab" / "conv.py").exists()
    out = _outputs(folder / graded.manifest["02_conv_layer"].notebooks[0])
    assert "ImportError" in out or "ModuleNotFoundError" in out
    assert "implement conv2d_forward" not in out  # the stub's message: a stub was imported


@pytest.mark.slow
def test_known_mistakes_lose_points_on_their_task_only(graded: Graded) -> None:
    row, top = graded.table.rows["mutant"], graded.table.max_points
    assert row["2.1"] < top["2.1"] and row["2.2"] == top["2.2"]
    assert row["3.1"] == top["3.1"] and row["3.2"] < top["3.2"]
    assert row["5.1"] == top["5.1"] and row["5.2"] < top["5.2"]
    assert row["1.1"] == row["4.1"] == course.NOT_SUBMITTED
    for task, mistake in MUTANTS.items():
        name = next(a for a, asg in graded.manifest.items() if task in asg.points)
        nb = graded.manifest[name].notebooks[0].replace(".ipynb", ".html")
        page = _text(graded.root / "feedback" / "mutant" / name / nb)
        first_sentence = " ".join(BY_ID[mistake].message.split(":")[0].split())
        assert first_sentence in page, f"the diagnosis of {mistake} is not in the feedback"


@pytest.mark.slow
def test_broken_submission_does_not_stop_the_grading(graded: Graded) -> None:
    # nbgrader reports the notebook that is not JSON, and only that one
    assert course.failed_submissions(graded.autograde) == {("broken", "03_equivariance_pooling")}
    assert graded.autograde.returncode != 0
    row = graded.table.rows["broken"]
    assert row["1.1"] == row["1.2"] == 0  # syntax error: cnnlab does not import
    assert row["3.1"] == row["3.2"] == course.NOT_GRADED
    totals = course.read_csv_totals(graded.csv)
    assert totals[("broken", "01_convolution")] == totals[("broken", "03_equivariance_pooling")] == 0


# --- feedback ---------------------------------------------------------------------------------------

LEAKS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "grade_task(", "autograder.hidden", "cnnlab_reference")
HIDDEN_FRAME = re.compile(r"autograder[/\\](hidden|cases|reference|mistakes|manifest)\.py")


@pytest.mark.slow
def test_feedback_shows_no_hidden_tests(graded: Graded) -> None:
    pages = course.feedback_files(graded.root)
    graded_notebooks = list((graded.root / "autograded").rglob("*.ipynb"))
    assert len(pages) == len(graded_notebooks) >= 10
    assert graded.feedback.ok, graded.feedback.problems()
    # the hidden tests are in the autograded notebooks (so the check below means something) ...
    assert all("grade_task(" in nb.read_text() for nb in graded_notebooks)
    for page in pages:
        text = page.read_text()
        for leak in LEAKS:
            assert leak not in text, f"{page.relative_to(graded.root)} shows {leak!r}"
        assert not HIDDEN_FRAME.search(text), f"{page.relative_to(graded.root)}: a traceback from hidden code"
    ada = _text(graded.root / "feedback" / "ada" / "02_conv_layer" / "02_conv_layer.html")
    assert "Score: 10.0 / 10.0" in ada


REMOTE_SCRIPT = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']?\s*(https?:)?//""", re.I)


def test_feedback_loads_no_remote_script(graded: Graded) -> None:
    """Feedback renders offline: no page loads a script from the network (nbgrader's default loads
    MathJax from a CDN); MathJax is inlined from node_modules (``npm ci``)."""
    from autograder import feedback_assets

    assert feedback_assets.mathjax_problem() is None, feedback_assets.mathjax_problem()
    pages = course.feedback_files(graded.root)
    assert pages
    for page in pages:
        text = page.read_text()
        found = REMOTE_SCRIPT.search(text)
        assert not found, f"{page.relative_to(graded.root)} loads a remote script: {found[0]}"
        assert 'id="cnnlab-mathjax">' in text and "MathJax" in text, page.relative_to(graded.root)


@pytest.mark.browser
def test_feedback_typesets_its_formulas_with_no_network(graded: Graded) -> None:
    """In headless Chromium with every non-file request aborted, the formulas of a feedback page are
    typeset by the inlined MathJax, with no MathJax error, and nothing was even requested."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    from chromium import CHROMIUM_ARGS, chromium_path, offline_page

    page_path = graded.root / "feedback" / "ada" / "02_conv_layer" / "02_conv_layer.html"
    n_formulas = page_path.read_text().count("$")
    assert n_formulas > 10, "the page has no formulas to typeset"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            context, page = offline_page(browser, ("file://",), {"width": 1200, "height": 900}, 60_000)
            page.goto(page_path.as_uri())
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
            page.evaluate("() => MathJax.startup.promise")
            typeset, errors = page.evaluate(
                "() => [document.querySelectorAll('mjx-container').length,"
                " document.querySelectorAll('mjx-merror').length]"
            )
            context.close()
        finally:
            browser.close()
    assert typeset > 10 and errors == 0, (typeset, errors)
    assert page.blocked == [], page.blocked


# --- fabrication (no nbgrader) ------------------------------------------------------------------------


def test_reference_variants() -> None:
    full = course.reference_variant("conv")
    assert "SOLUTION" not in full and "NotImplementedError(" not in full
    done = ["1.1", "1.2", "2.1"]
    half = course.reference_variant("conv", done=done)
    assert "SOLUTION" not in half
    rest = [t.id for t in load_reference().tasks.TASKS.values() if t.module == "conv" and t.id not in done]
    assert re.findall(r'NotImplementedError\("Task (\d\.\d)', half) == rest
    mutant = course.reference_variant("conv", mistakes=["conv2d_no_bias"])
    assert BY_ID["conv2d_no_bias"].new in mutant and "SOLUTION" not in mutant
    with pytest.raises(course.CourseError, match="does not apply"):  # both patch the same text
        course.reference_variant("conv", mistakes=["conv2d_no_bias", "conv2d_flipped_kernel"])
    with pytest.raises(course.CourseError, match="patches"):
        course.reference_variant("pool", mistakes=["conv2d_no_bias"])


# --- the same autograded course on PostgreSQL ----------------------------------------------------------


@pytest.mark.slow
def test_the_autograded_course_on_postgresql(
    graded: Graded, postgres: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The course this module autograded into SQLite, its gradebook copied into PostgreSQL: nbgrader's
    own commands (autograde, export) and the grade table read and write PostgreSQL through
    ``autograder/nbgrader_config.py``, agree with SQLite, and write nothing to SQLite."""
    root = tmp_path / "course"
    shutil.copytree(graded.root, root, ignore=shutil.ignore_patterns("gradebook.db", "grades.csv"))
    assert pg.copy_gradebook(graded.root / "gradebook.db", postgres["gradebook"]) > 0
    monkeypatch.setenv(database.ENV, postgres["gradebook"])
    monkeypatch.setenv("CNNLAB_COURSE_ROOT", str(root))
    table = course.grade_table(root, STUDENTS, graded.manifest)
    assert table.rows == graded.table.rows  # the copy is the course
    # nbgrader autogrades one submission again, into PostgreSQL: the same points as in SQLite
    ada = course.run_nbgrader(["autograde", "02_conv_layer", "--student", "ada", "--force"], root)
    assert ada.ok, ada.output[-3000:]
    assert course.grade_table(root, STUDENTS, graded.manifest).rows == graded.table.rows
    totals = course.read_csv_totals(course.export_csv(root))
    assert totals == course.read_csv_totals(graded.csv)
    assert not (root / "gradebook.db").exists()  # nothing went to SQLite
