"""``python -m billing_cli``: the ``billing`` command where its script is not installed (the worker's image)."""

import sys

from billing_cli.cli import main

sys.exit(main())
