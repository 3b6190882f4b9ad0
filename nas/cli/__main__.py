"""`python -m nas.cli`: the same entry point as the `nas` command."""

import sys

from nas.cli import main

sys.exit(main())
