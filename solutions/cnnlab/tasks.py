"""The course's task table: one ID per student exercise, used everywhere.

The ID ``"2.1"`` is the TODO line in ``cnnlab/conv.py``, the pytest marker ``task2_1``
(run ``pytest -m task2_1``), the notebook heading "Task 2.1" and the nbgrader ``grade_id``
``task2_1`` of that task's check cell.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    id: str  # "2.1"
    function: str  # name of the function the student writes
    module: str  # module inside cnnlab, e.g. "conv"
    notebook: str  # notebook (without .ipynb) that teaches it

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
        Task("1.1", "conv_output_size", "conv", "01_convolution"),
        Task("1.2", "conv1d", "conv", "01_convolution"),
        Task("2.1", "conv2d_forward", "conv", "02_conv_layer"),
        Task("2.2", "conv2d_backward", "conv", "02_conv_layer"),
        Task("3.1", "maxpool2d_forward", "pool", "03_equivariance_pooling"),
        Task("3.2", "maxpool2d_backward", "pool", "03_equivariance_pooling"),
        Task("4.1", "residual_block_forward", "residual", "04_residual"),
        Task("4.2", "residual_block_backward", "residual", "04_residual"),
        Task("5.1", "layer_shapes", "network", "05_conv_pool_stacks"),
        Task("5.2", "receptive_field", "network", "05_conv_pool_stacks"),
    ]
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
