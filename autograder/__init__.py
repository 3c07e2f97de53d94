"""cnnlab's autograder: nbgrader course configuration, hidden checks and grading tools."""
