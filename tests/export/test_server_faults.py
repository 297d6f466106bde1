"""An account's walk meeting a failing or misbehaving server.

* A request that fails mid-walk (401, 404, 5xx after retries) ends that account,
  but the pages fetched before it are written with their cursor, so a re-run
  resumes after them instead of starting from zero.
* A server that breaks its keyset pagination: a row repeated on the next page is
  exported once; a page that goes back *above* the previous one is refused with
  :class:`PaginationError` (the feed is not newest first, so the watermark could
  not be trusted), keeping what was read before.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

import polysim_async as ps
from polysim_async.export._manifest import Walk
from polysim_async.export._marks import Tracker

from ._feed import Feed, at, feed_server, trade
from ._fleet import by_trade, read_ndjson


def exported_ids(out: Path) -> list[int]:
    return sorted(row["trade_id"] for row in read_ndjson(out))


def manifest(out: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((out / "_manifest.json").read_text())
    return result


def newest_first(feed: Feed, account: str) -> list[int]:
    rows = sorted(feed.rows[account], key=lambda r: r["_key"], reverse=True)
    return [r["trade_id"] for r in rows]


async def export(url: str, out: Path, ids: list[str], **kwargs: Any) -> ps.ExportSummary:
    async with ps.Client("tk_test", url, rate_limit=None, max_retries=0) as client:
        return await client.partner.accounts.export(
            ids, out, format="ndjson", page_size=2, **kwargs
        )


class Refusing(Feed):
    """Answers ``status`` with a JSON envelope from request ``start`` until ``stop`` is set."""

    start = 10**9
    status = 401

    async def handle(self, request: web.Request) -> web.Response:
        if self.requests + 1 >= self.start:
            self.requests += 1
            return web.json_response(
                {"error": {"code": "INVALID_KEY", "message": "revoked"}}, status=self.status
            )
        return await super().handle(request)


@pytest.mark.parametrize("on_error", ["raise", "continue"])
@pytest.mark.parametrize("status", [401, 404])
async def test_a_failed_accounts_pages_before_the_error_are_written_and_resumed(
    tmp_path: Path, on_error: str, status: int
) -> None:
    feed = Refusing()
    for i in range(10):
        feed.add("A", at(i), i)
    feed.start, feed.status = 3, status  # pages 1 and 2 answered, then refused
    async with feed_server(feed) as url:
        with pytest.raises(ps.ExportError) as info:
            await export(url, tmp_path, ["A"], on_error=on_error)
        assert info.value.summary.fills == 4
        newest = newest_first(feed, "A")
        assert exported_ids(tmp_path) == sorted(newest[:4])
        walk = manifest(tmp_path)["accounts"]["A"]["walk"]
        assert walk is not None and walk["cursor"]
        # The re-run resumes after the written pages: 3 more pages, then one from the top.
        feed.start, feed.requests = 10**9, 0
        summary = await export(url, tmp_path, ["A"])
    assert summary.resumed == 1 and summary.fills == 6
    assert feed.requests == 3 + 1
    assert exported_ids(tmp_path) == sorted(newest)


async def test_with_on_error_raise_the_other_accounts_fetched_pages_are_written_too(
    tmp_path: Path,
) -> None:
    class FailsB(Feed):
        async def handle(self, request: web.Request) -> web.Response:
            if request.match_info["account_id"] == "B" and request.query.get("cursor"):
                self.requests += 1
                return web.json_response(
                    {"error": {"code": "SERVER_ERROR", "message": "down"}}, status=500
                )
            return await super().handle(request)

    feed = FailsB()
    for i in range(6):
        feed.add("A", at(i), i)
        feed.add("B", at(i), i)
    async with feed_server(feed) as url:
        with pytest.raises(ps.ExportError) as info:
            await export(url, tmp_path, ["A", "B"], on_error="raise", concurrency=1)
    assert set(info.value.failures) == {"B"}
    rows = read_ndjson(tmp_path)
    assert sorted(r["trade_id"] for r in rows if r["account_id"] == "B") == sorted(
        newest_first(feed, "B")[:2]
    )
    assert manifest(tmp_path)["accounts"]["B"]["walk"]["cursor"]


class Repeating(Feed):
    """A server whose keyset is off by one: every next page repeats the previous page's last row."""

    def page(self, account: str, limit: int, cursor: str | None) -> dict[str, Any]:
        out = super().page(account, limit, cursor)
        if cursor is not None:
            named = json.loads(base64.b64decode(cursor))
            key = (datetime.fromisoformat(named["filled_at"]), named["order_id"])
            row = next(r for r in self.rows[account] if r["_key"] == key)
            out["data"].insert(0, {k: v for k, v in row.items() if k != "_key"})
        return out


async def test_a_row_repeated_on_the_next_page_is_exported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    feed = Repeating()
    for i in range(9):
        feed.add("A", at(i), i)
    feed.add("A", at(3), 100)  # a tie with another row's instant, spanning pages
    async with feed_server(feed) as url:
        with caplog.at_level(logging.WARNING, "polysim_async"):
            summary = await export(url, tmp_path, ["A"])
    assert summary.fills == 10
    assert exported_ids(tmp_path) == sorted(newest_first(feed, "A"))
    assert "repeated 1 fill(s) of an earlier page" in caplog.text


async def test_a_repeat_right_after_a_resume_is_exported_once(tmp_path: Path) -> None:
    """The walk's floor is kept in the manifest, so a repeat across a resume is caught too."""
    feed = Repeating()
    for i in range(8):
        feed.add("A", at(i), i)

    class Fails(Repeating):
        async def handle(self, request: web.Request) -> web.Response:
            if self.requests >= 2:
                self.requests += 1
                return web.json_response({"error": {"code": "X", "message": "no"}}, status=500)
            return await super().handle(request)

    failing = Fails(rows=feed.rows)
    async with feed_server(failing) as url:
        with pytest.raises(ps.ExportError):
            await export(url, tmp_path, ["A"])
    assert len(exported_ids(tmp_path)) == 4  # two pages: 2 rows, then a repeat + 2 new
    assert manifest(tmp_path)["accounts"]["A"]["walk"]["floor_ids"]
    async with feed_server(feed) as url:
        await export(url, tmp_path, ["A"])
    assert exported_ids(tmp_path) == sorted(newest_first(feed, "A"))


class GoingBackUp(Feed):
    """A server whose second page starts with the newest row again (keyset broken)."""

    def page(self, account: str, limit: int, cursor: str | None) -> dict[str, Any]:
        out = super().page(account, limit, cursor)
        if cursor is not None:
            top = max(self.rows[account], key=lambda r: r["_key"])
            out["data"].insert(0, {k: v for k, v in top.items() if k != "_key"})
        return out


async def test_a_page_going_back_above_the_previous_one_is_refused_keeping_what_was_read(
    tmp_path: Path,
) -> None:
    feed = GoingBackUp()
    for i in range(6):
        feed.add("A", at(i), i)
    async with feed_server(feed) as url:
        with pytest.raises(ps.ExportError) as info:
            await export(url, tmp_path, ["A"])
    error = info.value.failures["A"]
    assert isinstance(error, ps.PaginationError)
    assert "out of order" in str(error)
    assert by_trade(read_ndjson(tmp_path)).keys() == set(newest_first(feed, "A")[:2])


def test_the_tracker_drops_only_repeats_at_the_floor_and_keeps_ties() -> None:
    tracker = Tracker(None, None)
    first = [trade(1, 9), trade(2, 8), trade(3, 7)]
    assert tracker.page(first)[0] == first
    # 3 is a repeat; 4 ties with it (same instant, another trade): kept.
    keep, _ = tracker.page([trade(3, 7), trade(4, 7), trade(5, 6)])
    assert [t.trade_id for t in keep] == [4, 5] and tracker.repeated == 1
    walk = tracker.walk("c")
    assert walk.floor == at(6).isoformat(timespec="microseconds") and walk.floor_ids == [5]
    resumed = Tracker(None, walk)
    keep, _ = resumed.page([trade(5, 6), trade(6, 5)])
    assert [t.trade_id for t in keep] == [6]
    with pytest.raises(ps.PaginationError):
        resumed.page([trade(7, 5.5)])


def test_a_walk_recorded_before_floors_were_kept_still_decodes() -> None:
    old = b'{"cursor": "c", "top": "2026-06-01T12:00:00.000000+00:00", "top_ids": [1]}'
    walk = msgspec.json.decode(old, type=Walk)
    assert walk.floor is None and walk.floor_ids == []
    assert Tracker(None, walk).page([trade(1, 0)])[0] == [trade(1, 0)]
