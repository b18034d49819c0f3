"""`python -m retinue ...` is the `retinue` command."""

import sys

from retinue.cli import main

sys.exit(main())
