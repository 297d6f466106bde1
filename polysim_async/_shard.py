"""Deterministic sharding of account ids across workers: ``shard=(i, n)``.

Every process that uses the same ``n`` agrees on which worker owns an account,
without coordination: the shard is a stable hash of the id (BLAKE2b, not
Python's per-process ``hash``), so it is the same on every machine and run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from ._errors import InvalidArgumentError

__all__ = ["Shard", "check_shard", "in_shard", "select_shard", "shard_of"]

#: ``(index, count)``: this worker is number ``index`` of ``count`` (0-based).
Shard = tuple[int, int]


def check_shard(shard: object) -> Shard:
    """Validate a ``shard=(i, n)`` argument and return it as a tuple.

    Any two-item sequence of integers is accepted (``[0, 2]`` from a JSON or
    YAML configuration too).

    Raises:
        InvalidArgumentError: not two integers with ``0 <= i < n``.
    """
    if (
        not isinstance(shard, Sequence)
        or isinstance(shard, (str, bytes))
        or len(shard) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
        or not 0 <= shard[0] < shard[1]
    ):
        raise InvalidArgumentError(
            "shard must be two integers (index, count) with 0 <= index < count,"
            f" such as (0, 2) or [0, 2]; got {shard!r}"
        )
    return (shard[0], shard[1])


def shard_of(account_id: str, count: int) -> int:
    """The shard (``0..count-1``) that owns ``account_id`` when work is split ``count`` ways."""
    digest = hashlib.blake2b(account_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def in_shard(account_id: str, shard: Shard | None) -> bool:
    """Whether ``account_id`` belongs to ``shard`` (always, when ``shard`` is ``None``)."""
    return shard is None or shard_of(account_id, shard[1]) == shard[0]


def select_shard(account_ids: Iterable[str], shard: Shard | None) -> list[str]:
    """The ids of ``account_ids`` that ``shard`` owns, in their order."""
    if shard is None:
        return list(account_ids)
    index, count = check_shard(shard)
    return [aid for aid in account_ids if shard_of(aid, count) == index]
