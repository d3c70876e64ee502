"""``python -m sweep.cli``: the ``sweep`` console script."""

import sys

from sweep.cli import main

sys.exit(main())
