"""The README's control-API table says what ``GET /_sandbox/state`` really answers."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from polysim_async.sandbox import Sandbox

README = Path(__file__).resolve().parents[1] / "README.md"


async def test_the_state_row_of_the_control_table_lists_the_real_fields() -> None:
    row = next(line for line in README.read_text().splitlines() if "`GET /_sandbox/state`" in line)
    documented = set(re.findall(r'"(\w+)"', row))
    async with (
        Sandbox(seed=7) as sb,
        aiohttp.ClientSession() as http,
        http.get(f"{sb.url}/_sandbox/state") as answer,
    ):
        body = await answer.json()
    assert documented == set(body)
    # The Python-only attributes exist on the Sandbox object.
    assert sb.market_id == body["market_ids"][0]
