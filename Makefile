# cnnlab — the two commands that matter: `make demo` and `make test`.
# Both create the virtualenv .venv (with pip) on first use and install the project into it.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help setup demo test test-fast release check-release lint format bench grade grade-bench clean

help:
	@echo "make demo     release the course, autograde the sample submissions, print the grade table"
	@echo "make test     run every test (reference, stubs, notebooks, nbgrader end to end)"
	@echo "make release  rebuild the student release (cnnlab/, notebooks/) from solutions/"
	@echo "make bench    convolution benchmark (loop vs im2col vs PyTorch)"
	@echo "make grade A=02_conv_layer [ZIPS=dir]   batch-grade an assignment (parallel, sandboxed)"
	@echo "make book     the self-study book (HTML, offline) into _build/book/"
	@echo "make lint     ruff"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,grader,dask,postgres,torch,book]'
	touch $(STAMP)

setup: $(STAMP)

release: $(STAMP)
	$(PY) -m tools.build

check-release: $(STAMP)
	$(PY) -m tools.build --check

demo: $(STAMP)
	$(PY) -m tools.build --check
	$(PY) benchmarks/conv_bench.py --quick
	$(PY) -m autograder demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest --impl=reference

# the quick loop while developing: no notebooks, no nbgrader
test-fast: $(STAMP)
	$(PY) -m pytest --impl=reference -m "not slow"

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

grade-bench: $(STAMP)
	$(PY) benchmarks/grade_bench.py

clean:
	rm -rf autograder/course .pytest_cache .hypothesis

# The self-study book: the notebooks executed against the reference, solutions folded, MathJax served
# locally (npm's mathjax@3); builds with no network into _build/book/index.html.
book: $(STAMP)
	test -f node_modules/mathjax/es5/tex-mml-chtml.js || npm ci --no-audit --no-fund
	$(PY) -m tools.book

# The browser tests only (headless Debian chromium): the student's path in JupyterLab, and the book.
test-browser: $(STAMP)
	$(PY) -m pytest --impl=reference -m browser

.PHONY: book test-browser
