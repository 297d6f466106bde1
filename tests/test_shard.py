"""Deterministic sharding: every worker agrees on the owner of an account, on every machine."""

from __future__ import annotations

import subprocess
import sys

import pytest

from polysim_async import InvalidArgumentError, MissingDependencyError
from polysim_async._extras import require
from polysim_async._shard import check_shard, in_shard, select_shard, shard_of

IDS = [f"acc-{i:04d}" for i in range(2000)]


def test_shards_partition_the_ids() -> None:
    parts = [select_shard(IDS, (i, 4)) for i in range(4)]
    assert sorted(aid for part in parts for aid in part) == sorted(IDS)
    assert all(350 < len(part) < 650 for part in parts)  # roughly even
    assert select_shard(IDS, None) == IDS
    assert all(in_shard(aid, (shard_of(aid, 4), 4)) for aid in IDS)


def test_the_hash_is_stable_across_processes() -> None:
    # Python's own hash() is salted per process; the shard must not be.
    code = "from polysim_async._shard import shard_of; print(shard_of('acc-0042', 7))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert int(out.stdout) == shard_of("acc-0042", 7)


@pytest.mark.parametrize(
    "bad", [(1, 1), (-1, 2), (0, 0), (True, 2), [0, 2.0], (0, 2, 1), "0/2", "01", b"01"]
)
def test_bad_shards_are_refused(bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match=r"two integers \(index, count\)"):
        check_shard(bad)


def test_a_shard_from_json_configuration_is_accepted() -> None:
    """``[0, 2]`` is what a JSON or YAML file gives for ``(0, 2)``."""
    assert check_shard([1, 2]) == (1, 2)
    assert select_shard(IDS, [1, 2]) == select_shard(IDS, (1, 2))  # type: ignore[arg-type]


def test_a_missing_extra_is_named() -> None:
    with pytest.raises(MissingDependencyError, match=r'pip install "polysim-async\[nope\]"'):
        require("polysim_no_such_module.sub", "nope", feature="Testing")
    assert issubclass(MissingDependencyError, ImportError)
