"""``python -m polysim_async``: the ``polysim`` command."""

import sys

from polysim_async_cli import main

sys.exit(main())
