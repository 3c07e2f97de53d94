"""A class on JupyterHub with nbgrader's exchange, on one machine: ``make hub-demo``.

:mod:`autograder.hub.demo` runs the round trip (users, hub, release, fetch, submit, collect, grade,
feedback) and :mod:`autograder.hub.browser` is the student who uses the Assignments tab in Chromium.
``docs/hub.md`` says how to run the same on a real deployment.
"""
