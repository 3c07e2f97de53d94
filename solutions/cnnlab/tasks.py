"""The course's task table: one ID per student exercise, and everything known about it, in one place.

The ID ``"2.1"`` is the TODO line in ``cnnlab/conv.py``, the pytest marker ``task2_1``
(run ``pytest -m task2_1``), the notebook heading "Task 2.1" and the nbgrader ``grade_id``
``task2_1`` of that task's check cell. The checks (argument names, result parts, how a result is
split) and the grader (which modules grading isolates, how inputs are drawn, which forward pass a
backward task's cache comes from) read this table; none keeps a table of its own.

A new task is: its row here, its solution body between the markers, its check cell in the notebook,
its points in ``autograder/assignments.toml``, its named mistakes in ``autograder/mistakes.py``, its
tests (and, for a new kind of inputs, a case generator in ``autograder/cases.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    id: str  # "2.1"
    function: str  # name of the function the student writes
    module: str  # module inside cnnlab, e.g. "conv"
    notebook: str  # notebook (without .ipynb) that teaches it
    args: tuple[str, ...]  # the function's argument names, in order
    parts: tuple[str, ...]  # what its result holds, part by part (a forward's cache is not compared)
    returns: str  # how the result splits into parts: "value", "pair" (out, cache), "tuple", or a
    #               task's own splitter in checks.py ("dx_grads", "layer_table")
    inputs: str  # the case generator of autograder/cases.py that draws its arguments
    forward: str | None = None  # a backward task: the forward function whose cache it takes
    depends: tuple[str, ...] = ()  # tasks whose functions this one calls in the student's own file

    @property
    def marker(self) -> str:
        """The pytest marker / nbgrader grade_id for this task, e.g. ``task2_1``."""
        return "task" + self.id.replace(".", "_")

    @property
    def path(self) -> str:
        """The student file to edit, relative to the folder holding ``cnnlab/``."""
        return f"cnnlab/{self.module}.py"


TASKS: dict[str, Task] = {
    t.id: t
    for t in [
        Task(
            "1.1",
            "conv_output_size",
            "conv",
            "01_convolution",
            ("n", "f", "stride", "pad"),
            ("M",),
            "value",
            "output_size",
        ),
        Task("1.2", "conv1d", "conv", "01_convolution", ("x", "w", "mode"), ("h",), "value", "conv1d"),
        Task(
            "2.1",
            "conv2d_forward",
            "conv",
            "02_conv_layer",
            ("x", "w", "b", "stride", "pad"),
            ("out",),
            "pair",
            "conv_layer",
        ),
        Task(
            "2.2",
            "conv2d_backward",
            "conv",
            "02_conv_layer",
            ("dout", "cache"),
            ("dx", "dw", "db"),
            "tuple",
            "conv_layer",
            forward="conv2d_forward",
            depends=("2.1",),
        ),
        Task(
            "3.1",
            "maxpool2d_forward",
            "pool",
            "03_equivariance_pooling",
            ("x", "size", "stride"),
            ("out",),
            "pair",
            "pooling",
        ),
        Task(
            "3.2",
            "maxpool2d_backward",
            "pool",
            "03_equivariance_pooling",
            ("dout", "cache"),
            ("dx",),
            "value",
            "pooling",
            forward="maxpool2d_forward",
        ),
        Task(
            "4.1",
            "residual_block_forward",
            "residual",
            "04_residual",
            ("x", "params", "lam"),
            ("out",),
            "pair",
            "residual",
            depends=("2.1",),
        ),
        Task(
            "4.2",
            "residual_block_backward",
            "residual",
            "04_residual",
            ("dout", "cache"),
            ("dx", "grads['w1']", "grads['b1']", "grads['w2']", "grads['b2']"),
            "dx_grads",
            "residual",
            forward="residual_block_forward",
            depends=("2.1", "2.2"),
        ),
        Task(
            "5.1",
            "layer_shapes",
            "network",
            "05_conv_pool_stacks",
            ("input_shape", "layers"),
            ("shapes", "params"),
            "layer_table",
            "layer_shapes",
        ),
        Task(
            "5.2",
            "receptive_field",
            "network",
            "05_conv_pool_stacks",
            ("layers",),
            ("size", "jump"),
            "tuple",
            "receptive_field",
        ),
    ]
}


@dataclass(frozen=True)
class ErrorRule:
    """One argument rule of a task function: a call that breaks it, and the words of its ValueError.

    The task's docstring and notebook text state the rule and the words; the visible check
    (``check_task``) and the task's pytest tests demand exactly these: a ``ValueError`` whose message
    contains ``words``.
    """

    rule: str  # the rule broken, in words: "n < 1"
    args: tuple[object, ...]  # positional arguments of a call that breaks it (and only it)
    words: str  # what the ValueError's message must contain: "n must be >= 1"


#: The ValueError rules of the tasks whose students write the argument checks themselves. (In the
#: other tasks the checks are provided, above the TODO.)
ERROR_RULES: dict[str, tuple[ErrorRule, ...]] = {
    "1.1": (
        ErrorRule("n < 1", (0, 3, 1, 0), "n must be >= 1"),
        ErrorRule("f < 1", (5, 0, 1, 0), "f must be >= 1"),
        ErrorRule("stride < 1", (5, 3, 0, 0), "stride must be >= 1"),
        ErrorRule("pad < 0", (5, 3, 1, -1), "pad must be >= 0"),
        ErrorRule("n is not an integer", (5.0, 3, 1, 0), "n must be an integer"),
        ErrorRule("f is not an integer", (5, 3.0, 1, 0), "f must be an integer"),
        ErrorRule("stride is not an integer", (5, 3, 1.5, 0), "stride must be an integer"),
        ErrorRule("pad is not an integer", (5, 3, 1, 0.5), "pad must be an integer"),
        ErrorRule(
            "the filter is larger than the padded input (f > n + 2*pad)",
            (2, 5, 1, 1),
            "f=5 is larger than the padded input",
        ),
    ),
}


def task_for_function(module: str, function: str) -> Task:
    """The task whose student-written body is ``cnnlab.<module>.<function>``."""
    for task in TASKS.values():
        if task.module == module and task.function == function:
            return task
    raise KeyError(f"no task writes {module}.{function}; add it to cnnlab/tasks.py TASKS")


def not_implemented_message(task: Task) -> str:
    """The message a student stub raises, e.g. 'Task 1.2: implement conv1d in cnnlab/conv.py'."""
    return f"Task {task.id}: implement {task.function} in {task.path}"
