"""One sandbox per test module, served from a thread while ``polysim`` processes use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._support import ThreadSandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ThreadSandbox]:
    """A sandbox (rate limits off, clock flowing) shared by the tests of one module."""
    served = ThreadSandbox(seed=21)
    try:
        yield served
    finally:
        served.close()
