"""`python -m service.cli` runs the chronoseal command (used where the console script is absent)."""

import sys

from service.cli import main

sys.exit(main())
