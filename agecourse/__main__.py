"""``python -m agecourse`` runs the command line (see :mod:`agecourse.cli`)."""

import sys

from agecourse.cli import main

sys.exit(main())
