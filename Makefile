# cnnlab — `make setup` + `make lab` for students; `make demo` and `make test` for the course's developers.
# Each creates the virtualenv .venv (with pip) on first use and installs what it needs into it:
# `make setup` only the student's tools, every other target also the test, PyTorch and book tools.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STUDENT_STAMP := $(VENV)/.installed-student
TEST_STAMP := $(VENV)/.installed-test
STAMP := $(VENV)/.installed-dev
# extra arguments for the JupyterLab server of `make lab`, e.g. ARGS="--no-browser --port=8899"
ARGS ?=

.PHONY: help setup setup-test setup-dev lab demo test test-fast release check-release lint format bench grade \
	grade-bench clean book test-browser student-bundle hub-demo

help:
	@echo "make setup    students: .venv with numpy, matplotlib, JupyterLab, ipywidgets, nbgrader (~500 MB)"
	@echo "make lab      students: JupyterLab on notebooks/, with cnnlab/ in its file browser [ARGS=...]"
	@echo "make setup-test  students: add pytest, hypothesis and scipy, for pytest -m taskX_Y"
	@echo "make demo     release the course, grade the sample submissions with nbgrader and the batch grader"
	@echo "make test     run every test (reference, stubs, notebooks, nbgrader end to end)"
	@echo "make release  rebuild the student release (cnnlab/, notebooks/) from solutions/"
	@echo "make bench    convolution benchmark (loop vs im2col vs PyTorch)"
	@echo "make grade A=02_conv_layer [ZIPS=dir]   batch-grade an assignment (parallel, sandboxed)"
	@echo "make student-bundle [OUT=dir]   the student course to hand out (default _build/student-course)"
	@echo "make hub-demo [HUB_ARGS=...]   as root: a class on a local JupyterHub, end to end (docs/hub.md)"
	@echo "make book     the self-study book (HTML, offline) into _build/book/"
	@echo "make lint     ruff"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# pip prints each package as it goes (no --quiet): the first install takes a minute or more.
$(STUDENT_STAMP): pyproject.toml | $(PY)
	@echo "== installing the student tools into $(VENV): numpy, matplotlib, JupyterLab, ipywidgets, nbgrader"
	$(PY) -m pip install -e '.[student]'
	touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	@echo "== installing the student tools and the task tests into $(VENV) (adds pytest, hypothesis, scipy)"
	$(PY) -m pip install -e '.[student,test]'
	touch $@ $(STUDENT_STAMP)

# everything: the tests, PyTorch (a test oracle), the book and the browser tests' Playwright (~2 GB)
$(STAMP): pyproject.toml | $(PY)
	@echo "== installing the development tools into $(VENV): tests, the grader's sandbox, Dask, PostgreSQL's driver, PyTorch, jupyter-book, Playwright"
	$(PY) -m pip install -e '.[dev,grader,dask,postgres,torch,book,hub]'
	touch $@ $(TEST_STAMP) $(STUDENT_STAMP)

setup: $(STUDENT_STAMP)

setup-test: $(TEST_STAMP)

setup-dev: $(STAMP)

# JupyterLab rooted at notebooks/, where cnnlab/ (a link to ../cnnlab, as in the nbgrader release)
# sits next to the notebooks. jupyter-config/ is the student's Lab: nbgrader's Validate button without
# its instructor tools, and no news pop-up. It is added to JUPYTER_CONFIG_PATH: nothing in your home
# is changed (settings in ~/.jupyter still take precedence).
# As root (a container) Jupyter refuses to start without --allow-root: the target passes it, and says so.
lab: $(STUDENT_STAMP)
	@if [ "$$(id -u)" = 0 ]; then \
		echo "make lab: running as root (a container?): starting JupyterLab with --allow-root"; \
		allow_root=--allow-root; \
	fi; \
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter-config$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)/notebooks" $$allow_root $(ARGS)

release: $(STAMP)
	$(PY) -m tools.build

check-release: $(STAMP)
	$(PY) -m tools.build --check

demo: $(STAMP)
	test -f node_modules/mathjax/es5/tex-svg-full.js || npm ci --no-audit --no-fund  # MathJax for the feedback HTML
	$(PY) -m tools.build --check
	$(PY) -m autograder demo

# in parallel: one worker per core, each test file on one worker (its module fixtures built once)
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest --impl=reference -n auto --dist loadfile --no-loadscope-reorder --durations=15

# the quick loop while developing (under 90 s on 2 cores): no notebook runs, no nbgrader, no database
# or cluster, no browser; in parallel like `make test`
test-fast: $(STAMP)
	$(PY) -m pytest --impl=reference -m "not slow" -n auto --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	$(PY) benchmarks/conv_bench.py

# batch grading: make grade A=02_conv_layer [ZIPS=~/Downloads/submissions]
grade: $(STAMP)
	@test -n "$(A)" || { echo "usage: make grade A=<assignment> [ZIPS=<folder of zip files>]"; exit 2; }
	$(PY) -m autograder grade $(A) $(if $(ZIPS),--zips $(ZIPS))

# The standalone student course to hand out through the LMS (leak-checked): OUT/ and OUT.zip
OUT ?= _build/student-course
student-bundle: $(STUDENT_STAMP)
	$(PY) -m autograder bundle --out $(OUT) --zip

# A class on a local JupyterHub (as root; real users, nbgrader's exchange, one student in Chromium):
# release, fetch, submit, collect, grade, feedback; prints the grade table and removes what it made.
# HUB_ARGS="--students 5 --keep --no-browser" (see python -m autograder.hub --help)
HUB_ARGS ?=
hub-demo: $(STAMP)
	test -x node_modules/.bin/configurable-http-proxy || npm ci --no-audit --no-fund
	$(PY) -m autograder.hub $(HUB_ARGS)

grade-bench: $(STAMP)
	$(PY) benchmarks/grade_bench.py

clean:
	rm -rf autograder/course .pytest_cache .hypothesis benchmarks/.otter-venv

# The self-study book: the notebooks executed against the reference, solutions folded, MathJax served
# locally (npm's mathjax@3); builds with no network into _build/book/index.html.
book: $(STAMP)
	test -f node_modules/mathjax/es5/tex-mml-chtml.js || npm ci --no-audit --no-fund
	$(PY) -m tools.book

# The browser tests only (headless Debian chromium): the student's path in JupyterLab, and the book.
test-browser: $(STAMP)
	$(PY) -m pytest --impl=reference -m browser

