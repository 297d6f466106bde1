"""``POLYSIM_LOG=debug|info``: send the ``polysim_async`` logger's records to stderr.

The library logs on the ``polysim_async`` logger (retries and limiter changes
at DEBUG; stream reconnects and heals at INFO; recovered anomalies at WARNING)
and, like any library, adds no handler of its own. Setting ``POLYSIM_LOG`` is a
shortcut for a quick look without touching the application's logging setup.
Log records never contain the API key or a WebSocket token.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["configure_from_env"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_configured = False


def configure_from_env() -> None:
    """Apply ``POLYSIM_LOG`` once per process; an unknown value is ignored with a warning."""
    global _configured
    if _configured:
        return
    _configured = True
    value = os.environ.get("POLYSIM_LOG", "").strip().lower()
    if not value:
        return
    logger = logging.getLogger("polysim_async")
    level = _LEVELS.get(value)
    if level is None:
        logger.warning("POLYSIM_LOG=%r is not one of debug, info; ignored", value[:20])
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
