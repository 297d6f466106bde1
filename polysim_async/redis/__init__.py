"""Coordination through Redis: one budget and one checkpoint store for every worker.

Needs the ``redis`` extra (``pip install "polysim-async[redis]"``); redis-py
is imported when one of these objects is created, not when this package is.
"""

from ._limiter import RedisLimiterStats, RedisRateLimit
from ._store import RedisCheckpointStore

__all__ = ["RedisCheckpointStore", "RedisLimiterStats", "RedisRateLimit"]
