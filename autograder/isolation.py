"""Grading isolation, the rule both graders apply: while a task is graded, the provided functions of
the student's modules are the course's, and the student's own task functions stay the student's.

``autograder/sandbox/child.py`` applies the same rule to the released copy inside the sandbox.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

from autograder.reference import reference

#: the student files, in the order of the task table; grading puts their provided functions back
ISOLATED_MODULES = tuple(dict.fromkeys(t.module for t in reference().tasks.values()))


def restored_functions(module: ModuleType, module_name: str, tasks: Any) -> dict[str, Callable[..., Any]]:
    """Grading isolation: the functions of ``cnnlab.<module_name>`` that are put back while a task
    is graded, by name: every function bound in the pristine module ``module`` (the reference, or
    the released copy, which is the same code outside the task bodies) except the task functions
    defined in it. The student's own task functions stay the student's, so both graders agree;
    backward tasks get caches built by the reference forward (:func:`task_inputs`), and a residual
    block runs the provided ``cnnlab.fast`` convolutions, so a wrong ``conv2d_forward`` costs points
    in its own task only.

    ``autograder/sandbox/child.py`` applies the same rule to the released copy inside the sandbox.
    """
    own = {t.function for t in tasks.values() if t.module == module_name}
    return {
        name: value for name, value in vars(module).items() if inspect.isfunction(value) and name not in own
    }
