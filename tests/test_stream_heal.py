"""The executions stream's REST check after unreadable frames (virtual time, mock exchange).

An unreadable frame makes one REST check due; it runs once the frames already
received are read, so a burst of garbage costs one history walk, not one each.
A check that fails for a transient reason keeps the healthy socket (as the
periodic check does) and is made again at the next check.
"""

from __future__ import annotations

import logging

import pytest

import polysim_async as ps

from ._helpers import virtual
from .test_stream import FAST, Exchange, ids, running, take, until

NESTED = '{"type":"fill","data":' + "[" * 3000 + "]" * 3000 + "}"


class Flaky(Exchange):
    """History answers 503 while ``busy`` is set."""

    busy = False

    def history(self, request: ps.Request) -> ps.Response:
        if self.busy:
            self.history_calls += 1
            return ps.Response.from_json({"error": "SERVER_BUSY", "message": "busy"}, status=503)
        return super().history(request)


@virtual
async def test_a_burst_of_unreadable_frames_costs_one_rest_check() -> None:
    async with running() as (ex, client):
        async with client.executions.stream(policy=FAST, gaps=True) as fills:
            await until(lambda: ex.live)
            before = ex.history_calls
            await ex.fill(1, push=False)  # only REST will show it
            for _ in range(100):
                ex.open_sockets[0].send(NESTED)
            got = await take(fills, 1)
            await until(lambda: fills.stats.unreadable == 100)
            assert ex.history_calls - before == 1
            assert fills.stats.reconciles == 1
            # Later garbage makes one more check due: one per burst, not one ever.
            await ex.fill(1, push=False)
            await ex.push("not json")
            await ex.push("not json either")
            got += await take(fills, 1)
            assert ex.history_calls - before == 2
        assert ids(got) == [1, 2] and ex.connects == 1
        gaps = [g for g in got if isinstance(g, ps.StreamGap)]
        assert [g.reason for g in gaps] == ["unreadable frame"] * 2


@virtual
async def test_a_failed_check_after_an_unreadable_frame_keeps_the_socket_and_is_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = ps.StreamPolicy(
        backoff_base=0.001,
        backoff_max=0.004,
        ping_interval=5.0,
        ping_timeout=5.0,
        reconcile_interval=20.0,
    )
    async with running(Flaky(), max_retries=0) as (ex, client):
        assert isinstance(ex, Flaky)
        async with client.executions.stream(policy=policy) as fills:
            await until(lambda: ex.live)
            ex.busy = True
            calls = ex.history_calls
            with caplog.at_level(logging.WARNING, "polysim_async"):
                await ex.push("not json")
                await until(lambda: ex.history_calls > calls)
            assert "REST check (unreadable frame) failed" in caplog.text
            ex.busy = False
            await ex.fill(1, push=False)
            got = await take(fills, 1)  # found by the next periodic check
        assert ids(got) == [1]
        assert ex.connects == 1 and fills.stats.connects == 1
