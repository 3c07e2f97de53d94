"""``python -m autograder.batch grade ...`` (the same as ``python -m autograder grade ...``)."""

import sys

from autograder.batch.cli import main

sys.exit(main())
