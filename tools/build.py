"""``python -m tools.build [--check]`` (``make release``): the student release from ``solutions/``.

The build itself is :mod:`autograder.build` (the course's release step uses it too); this is its
command. ``tools`` imports ``autograder``, never the other way round.
"""

import sys

from autograder.build import main

if __name__ == "__main__":
    sys.exit(main())
