"""`python -m loopweave` runs the `loopweave` command."""

import sys

from loopweave.cli import main

sys.exit(main())
