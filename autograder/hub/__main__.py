"""``python -m autograder.hub``: the hub demo (see :mod:`autograder.hub.demo`)."""

import sys

from autograder.hub.demo import main

sys.exit(main())
