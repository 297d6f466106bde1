"""The public surface is exactly what ``polysim_async.__all__`` names."""

from __future__ import annotations

import subprocess
import sys

import polysim_async


def test_all_is_sorted_and_unique() -> None:
    names = [n for n in polysim_async.__all__ if n != "__version__"]
    assert names == sorted(names, key=str)
    assert len(set(polysim_async.__all__)) == len(polysim_async.__all__)


def test_every_name_in_all_exists() -> None:
    for name in polysim_async.__all__:
        assert hasattr(polysim_async, name), name


def test_public_names_are_all_exported() -> None:
    public = {n for n in vars(polysim_async) if not n.startswith("_")}
    modules = {n for n, v in vars(polysim_async).items() if type(v) is type(sys)}
    assert public - modules == set(polysim_async.__all__) - {"__version__"}


def test_importing_the_client_does_not_load_the_sandbox() -> None:
    # A fresh interpreter: other test modules import aiohttp.web for their loopback servers.
    code = (
        "import sys, polysim_async; "
        "assert 'aiohttp.web' not in sys.modules, 'aiohttp.web'; "
        "assert 'polysim_async.sandbox' not in sys.modules, 'sandbox'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
