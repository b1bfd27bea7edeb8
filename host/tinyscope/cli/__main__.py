"""``python -m tinyscope.cli``: the ``tinyscope`` command."""

import sys

from tinyscope.cli.app import main

sys.exit(main())
