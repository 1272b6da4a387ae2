"""``python -m agecourse.grading SUBMISSIONS --out OUT`` (see :mod:`agecourse.grading.command`)."""

import sys

from agecourse.grading.command import main

if __name__ == "__main__":
    sys.exit(main())
