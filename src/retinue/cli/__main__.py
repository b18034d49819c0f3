"""`python -m retinue.cli ...` is the `retinue` command, as `python -m retinue ...` is."""

import sys

from retinue.cli import main

sys.exit(main())
