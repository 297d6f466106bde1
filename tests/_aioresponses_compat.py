"""Make aioresponses 0.7.9 work with aiohttp >= 3.14.

aiohttp 3.14 (a security release) added a required ``stream_writer`` argument to
``ClientResponse.__init__``; aioresponses does not pass it yet (upstream issue
pnuckowski/aioresponses#289, fix in PR #288). aiohttp only reads
``stream_writer.output_size``, so a stub is enough. A no-op on older aiohttp and
once aioresponses passes the argument itself.
"""

from __future__ import annotations

import inspect
from typing import Any
from unittest.mock import Mock

import aiohttp
from aioresponses import core


def install() -> None:
    if "stream_writer" not in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        return
    if getattr(core.RequestMatch, "_polysim_compat", False):
        return

    class CompatResponse(aiohttp.ClientResponse):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", Mock(output_size=0))
            super().__init__(*args, **kwargs)

    original = core.RequestMatch._build_response

    def build_response(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("response_class") is None:
            kwargs["response_class"] = CompatResponse
        return original(self, *args, **kwargs)

    core.RequestMatch._build_response = build_response  # type: ignore[method-assign]
    core.RequestMatch._polysim_compat = True  # type: ignore[attr-defined]
