"""``python -m enrolldb``: same as the ``enrolldb`` console script."""

import sys

from enrolldb.cli import main

sys.exit(main())
