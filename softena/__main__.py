"""python -m softena: the same as the `softena` command."""

import sys

from softena.cli.main import main

sys.exit(main())
