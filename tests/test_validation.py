"""Every validation rule raises ValueError naming the argument and the rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from autograder.reference import load_reference

ROOT = Path(__file__).resolve().parent.parent

X = np.zeros((2, 3, 5, 6))
W = np.zeros((4, 3, 3, 3))
B = np.zeros(4)


# Task 1.1's rules, as its docstring and notebook text state them: (arguments, words of the message).
CONV_OUTPUT_SIZE_RULES = [
    ((0, 3, 1, 0), "n must be >= 1"),
    ((5, 0, 1, 0), "f must be >= 1"),
    ((5, 3, 0, 0), "stride must be >= 1"),
    ((5, 3, 1, -1), "pad must be >= 0"),
    ((5.0, 3, 1, 0), "n must be an integer"),
    ((5, 3.0, 1, 0), "f must be an integer"),
    ((5, 3, 1.5, 0), "stride must be an integer"),
    ((5, 3, 1, 0.5), "pad must be an integer"),
    ((2, 5, 1, 1), "f=5 is larger than the padded input"),
]


@pytest.mark.task1_1
@pytest.mark.parametrize(("args", "words"), CONV_OUTPUT_SIZE_RULES)
def test_conv_output_size_rules(cn, args, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        cn.conv.conv_output_size(*args)


@pytest.mark.task1_1
def test_conv_output_size_accepts_a_filter_that_just_fits(cn):
    assert cn.conv.conv_output_size(3, 5, 1, 1) == 1  # f = n + 2*pad: one window, no error


def test_task_1_1_rules_are_one_specification():
    """The docstring, the notebook's task text, the visible check (tasks.ERROR_RULES) and the tests
    above state the same rules with the same words."""
    ref = load_reference()
    rules = ref.tasks.ERROR_RULES["1.1"]
    assert [(r.args, r.words) for r in rules] == CONV_OUTPUT_SIZE_RULES
    doc = " ".join(ref.conv.conv_output_size.__doc__.split())
    task_text = " ".join(_task_text("01_convolution", "1.1").split())
    checked = [c.words for c in ref.checks.hand_cases("1.1") if c.words]
    for rule in rules:
        # the integer rule is stated once, for n, "with that argument's name"; the fit rule for f=5
        stated = re.sub(r"^\w+ must be an integer$", "n must be an integer", rule.words)
        assert stated in doc or stated.replace("f=5", "f=<f>") in doc, f"docstring lacks {rule.words!r}"
        assert stated in task_text, f"the notebook's Task 1.1 text does not state {rule.words!r}"
        assert rule.words in checked, f"the visible check does not test {rule.words!r}"
    assert "n, f, stride or pad is not an integer" in doc


def _task_text(notebook: str, task_id: str) -> str:
    nb = json.loads((ROOT / "solutions" / "notebooks" / f"{notebook}.ipynb").read_text())
    for cell in nb["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown" and source.startswith(f"## Task {task_id}"):
            return source
    raise AssertionError(f"no '## Task {task_id}' cell in {notebook}")


CONV_MATRIX_RULES = [
    ((np.ones((2, 2)), 3, "full"), "w must be a non-empty 1-D array"),
    ((np.ones(0), 3, "full"), "w must be a non-empty 1-D array"),
    ((np.ones(2), 3.0, "full"), "n must be an integer"),
    ((np.ones(2), 0, "full"), "n must be >= 1"),
    ((np.ones(2), 3, "circular"), "mode must be one of"),
]


# provided checks (above the TODO): unmarked, they pass against the stubs too
@pytest.mark.parametrize(("args", "words"), CONV_MATRIX_RULES, ids=lambda v: str(v)[:30])
def test_conv_matrix_rules(cn, args, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        cn.conv.conv_matrix(*args)


def test_conv_matrix_rules_are_one_specification():
    """The docstring, the notebook's task text, the visible check (tasks.ERROR_RULES) and the tests
    above state the same rules with the same words."""
    ref = load_reference()
    rules = ref.tasks.ERROR_RULES["1.3"]
    assert [r.words for r in rules] == [w for _, w in CONV_MATRIX_RULES]
    for rule, (args, _) in zip(rules, CONV_MATRIX_RULES, strict=True):
        assert len(rule.args) == len(args) and all(
            np.array_equal(a, b) for a, b in zip(rule.args, args, strict=True)
        )
    doc = " ".join(ref.conv.conv_matrix.__doc__.split())
    task_text = " ".join(_task_text("01_convolution", "1.3").split())
    checked = [c.words for c in ref.checks.hand_cases("1.3") if c.words]
    for rule in rules:
        assert rule.words in doc, f"the docstring lacks {rule.words!r}"
        assert rule.words in task_text, f"the notebook's Task 1.3 text does not state {rule.words!r}"
        assert rule.words in checked, f"the visible check does not test {rule.words!r}"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: c.conv.conv1d(np.zeros((2, 2)), np.ones(2)), r"x must be a non-empty 1-D array"),
        (lambda c: c.conv.conv1d(np.zeros(3), np.ones(0)), r"w must be a non-empty 1-D array"),
        (lambda c: c.conv.conv1d(np.zeros(3), np.ones(2), "circular"), r"mode must be one of"),
        (lambda c: c.conv.correlate1d(np.zeros(3), np.ones(2), "wrap"), r"mode must be one of"),
        (lambda c: c.conv.pad2d(np.zeros((3, 3)), 1), r"x must have 4 axes"),
        (lambda c: c.conv.pad2d(X, -1), r"pad must be >= 0"),
        (lambda c: c.conv.conv2d_forward(X[0], W, B), r"x must be a 4-D array"),
        (lambda c: c.conv.conv2d_forward(X, W[0], B), r"w must be a 4-D array"),
        (lambda c: c.conv.conv2d_forward(X, W[:, :2], B), r"w has C=2 channels but x has C=3"),
        (lambda c: c.conv.conv2d_forward(X, W, B[:3]), r"b must have shape \(K,\) = \(4,\)"),
        (lambda c: c.conv.conv2d_forward(X, W, B, stride=0), r"stride must be >= 1"),
        (lambda c: c.conv.conv2d_forward(X, W, B, pad=-1), r"pad must be >= 0"),
        (lambda c: c.conv.conv2d_forward(X, np.zeros((4, 3, 6, 1)), B), r"filter height FH=6 is larger"),
        (
            lambda c: c.conv.conv2d_forward(X, np.zeros((4, 3, 1, 9)), B, pad=1),
            r"filter width FW=9 is larger",
        ),
        (lambda c: c.pool.maxpool2d_forward(X[0]), r"x must be a 4-D array"),
        (lambda c: c.pool.maxpool2d_forward(X, size=0), r"size must be >= 1"),
        (lambda c: c.pool.maxpool2d_forward(X, 2, stride=0), r"stride must be >= 1"),
        (lambda c: c.pool.maxpool2d_forward(X, size=6), r"pool size=6 is larger than the input"),
        (lambda c: c.pool.avgpool2d_forward(X, size=6), r"pool size=6 is larger than the input"),
        (lambda c: c.residual.residual_block_forward(X[0], {}), r"x must be a 4-D array"),
        (
            lambda c: c.residual.residual_block_forward(X, {"w1": W}),
            r"params is missing \['b1', 'b2', 'w2'\]",
        ),
        (
            lambda c: c.residual.residual_block_forward(X, _params(w1=np.zeros((2, 4, 3, 3)))),
            r"params\['w1'\] must have shape \(C1, C=3",
        ),
        (
            lambda c: c.residual.residual_block_forward(X, _params(w2=np.zeros((4, 2, 3, 3)))),
            r"params\['w2'\] must have shape \(C=3, C1=2",
        ),
        (
            lambda c: c.residual.residual_block_forward(X, _params(w1=np.zeros((2, 3, 2, 3)))),
            r"'same' padding needs odd filter sizes, got FH=2",
        ),
        (lambda c: c.equivariance.shift2d(np.zeros(3), 1, 1), r"x must have at least 2 axes"),
        (lambda c: c.equivariance.shift2d(X, 1, 1, "reflect"), r"mode must be one of"),
        (lambda c: c.equivariance.blur_kernel(0), r"size must be >= 1"),
    ],
)
def test_provided_validation_rules(cn, call, match):
    with pytest.raises(ValueError, match=match):
        call(cn)


def _params(**override):
    p = {
        "w1": np.zeros((2, 3, 3, 3)),
        "b1": np.zeros(2),
        "w2": np.zeros((3, 2, 3, 3)),
        "b2": np.zeros(3),
    }
    return {**p, **override}


# The argument checks written for the students (above the TODO of these task functions): the words of
# their ValueErrors, which test_provided_validation_rules above raises and the docstrings state.
PROVIDED_RULES = {
    ("conv", "conv1d"): [
        "x must be a non-empty 1-D array",
        "w must be a non-empty 1-D array",
        "mode must be one of",
    ],
    ("conv", "conv2d_forward"): [
        "x must be a 4-D array",
        "w must be a 4-D array",
        "channels but x has C=",
        "b must have shape (K,)",
        "stride must be >= 1",
        "pad must be >= 0",
        "filter height FH=",
        "filter width FW=",
    ],
    ("pool", "maxpool2d_forward"): [
        "x must be a 4-D array",
        "size must be >= 1",
        "stride must be >= 1",
        "is larger than the input",
    ],
    ("residual", "residual_block_forward"): [
        "x must be a 4-D array",
        "params is missing",
        "params['w1'] must have shape (C1, C=",
        "params['w2'] must have shape (C=",
        "'same' padding needs odd filter sizes",
    ],
}


@pytest.mark.parametrize(("where", "words"), PROVIDED_RULES.items(), ids=lambda v: str(v))
def test_docstrings_state_the_provided_rules(where, words):
    module, function = where
    doc = " ".join(getattr(getattr(load_reference(), module), function).__doc__.split())
    missing = [w for w in words if w not in doc]
    assert not missing, f"the docstring of {function} does not state {missing}"
