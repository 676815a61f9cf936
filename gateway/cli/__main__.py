"""`python -m gateway.cli`: the same as the `community-edge` console script."""

import sys

from gateway.cli import main

sys.exit(main())
