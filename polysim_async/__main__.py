"""``python -m polysim_async``: the ``polysim`` command."""

import sys

from .cli import main

sys.exit(main())
