"""``make lab``: JupyterLab where a student finds the notebooks and ``cnnlab/*.py`` side by side.

Runs ``make lab ARGS="--no-browser --port=..."`` in a copy of the course (see ``student_lab.py``) and
asks Jupyter's contents API for ``01_convolution.ipynb`` and ``cnnlab/conv.py``; checks that the
project's ``jupyter-config/`` made it a student's Lab (nbgrader's instructor extensions off, Validate
on, no news), with an empty ``~/.jupyter``; and that the notebooks name files that exist there.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from student_lab import ROOT, get_json, make_lab, student_copy

pytestmark = pytest.mark.slow

INSTRUCTOR_PLUGINS = [
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    course = student_copy(tmp_path_factory.mktemp("clone"))
    home = tmp_path_factory.mktemp("jupyter-home")
    with make_lab(course, home, []) as (base, log):
        yield base, course, log


def test_make_lab_serves_the_notebooks_and_the_students_files(lab):
    base, course, _ = lab
    nb = get_json(f"{base}/api/contents/01_convolution.ipynb?content=1")
    assert nb["type"] == "notebook" and nb["content"]["cells"], nb["path"]
    conv = get_json(f"{base}/api/contents/cnnlab/conv.py?content=1")
    assert conv["type"] == "file" and conv["content"] == (course / "cnnlab" / "conv.py").read_text()
    assert "# TODO: Task 1.1" in conv["content"]
    top = {item["name"] for item in get_json(f"{base}/api/contents/")["content"]}
    assert {"cnnlab", "01_convolution.ipynb", "05_conv_pool_stacks.ipynb"} <= top, top


def test_the_lab_is_a_students(lab):
    base, _, log = lab
    with urllib.request.urlopen(f"{base}/lab", timeout=30) as r:
        page = r.read().decode()
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S)
    assert found, "no jupyter-config-data in /lab"
    config = json.loads(found[1])
    disabled = set(config.get("disabledExtensions", []))
    for plugin in [*INSTRUCTOR_PLUGINS, "@jupyterlab/apputils-extension:announcements"]:
        assert plugin in disabled, f"{plugin} is not disabled: {sorted(disabled)}"
    assert "@jupyter/nbgrader:validate-assignment" not in disabled
    # nbgrader's instructor server extensions (formgrader, course list, assignment list) are not loaded
    for path in ("formgrader/api/status", "formgraders", "assignments"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/{path}", timeout=30)
        assert err.value.code == 404, path
    text = log.read_text()
    assert "nbgrader.server_extensions.validate_assignment | extension was successfully loaded" in text
    assert "nbgrader.server_extensions.formgrader | extension was successfully loaded" not in text


def test_the_notebooks_name_files_that_exist_next_to_them():
    """Every ``cnnlab/<module>.py`` a released notebook mentions exists beside it (through the link),
    as it does in the nbgrader release."""
    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = "".join(
            "".join(c["source"])
            for c in json.loads(nb_path.read_text())["cells"]
            if c["cell_type"] == "markdown"
        )
        for name in set(re.findall(r"cnnlab/\w+\.py", text)):
            assert (nb_path.parent / name).is_file(), f"{nb_path.name} names {name}, not next to it"
