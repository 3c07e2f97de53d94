"""The course's machinery, out of the student's way (provided; nothing here is a task).

:mod:`.tasks` (the task table), :mod:`.checks` (the visible checks the notebooks run, public as
``cnnlab.checks``), :mod:`.check_examples` (their hand-worked examples), :mod:`.verdicts` (outcomes,
comparison, diagnosis: what the checks and both graders decide with), :mod:`.threads` (the thread
pool behind ``cnnlab.fast``) and :mod:`.validate` (the provided code's argument checks).

This file imports nothing: ``cnnlab.fast`` and the grader's sandbox import single modules of this
subpackage, and pay only for what they use.
"""
