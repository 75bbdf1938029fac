"""``python -m gateway.cli``: the ``modelgate`` command (how the tests and the bench start it)."""

import sys

from gateway.cli.main import main

sys.exit(main())
