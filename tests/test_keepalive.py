"""The dead-man's switch: ``heartbeat()`` and ``keepalive()`` on virtual time.

Each keepalive test runs on a :class:`VirtualTimeLoop` whose clock jumps to the
next timer when nothing is ready, with the client's clock and sleep on that
loop: minutes of beats take no real time, and every beat lands at its exact
virtual instant whatever the machine's load.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from typing import Any

import pytest

import polysim_async as ps
from polysim_async._keepalive import KeepAlive

from ._helpers import (
    CallbackResult,
    LoopClock,
    Routes,
    VirtualTimeLoop,
    calls,
    error_body,
    make_client,
    routes,
    run_virtual,
)
from ._helpers import url as path_url
from ._trader import sent

HEARTBEATS = path_url("/v1/heartbeats")
T0 = 1000.0  # the virtual loop's start


def beat_ok(loop: VirtualTimeLoop, interval_ms: int = 10_000) -> CallbackResult:
    expires = int((loop.time() * 1000) + interval_ms + max(1000, interval_ms // 4))
    return CallbackResult(payload={"ok": True, "expires_at_ms": expires})


class Server:
    """Answers heartbeats from a script of outcomes, noting when each arrived."""

    def __init__(self, loop: VirtualTimeLoop, script: Callable[[int], Any] | None = None) -> None:
        self.loop = loop
        self.script = script or (lambda n: None)
        self.times: list[float] = []

    def __call__(self, u: Any, **kwargs: Any) -> CallbackResult:
        self.times.append(self.loop.time() - T0)
        outcome = self.script(len(self.times))
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, CallbackResult):
            return outcome
        return beat_ok(self.loop)


def on_virtual_time(
    body: Callable[[ps.Client, Server, VirtualTimeLoop], Coroutine[Any, Any, Any]],
    script: Callable[[int], Any] | None = None,
    **client_options: Any,
) -> Any:
    async def main(loop: VirtualTimeLoop) -> Any:
        server = Server(loop, script)
        with routes() as mock:
            mock.post(HEARTBEATS, callback=server, repeat=True)
            client = make_client(LoopClock(), rate_limit=None, **client_options)
            async with client:
                return await body(client, server, loop)

    return run_virtual(main)


class TestHeartbeat:
    async def test_body_and_answer(self, mock: Routes) -> None:
        mock.post(HEARTBEATS, payload={"ok": True, "expires_at_ms": 1715518800123})
        async with make_client() as client:
            beat = await client.orders.heartbeat(5000, label="alpha-bot")
        assert [kw["data"] for kw in sent(mock, "/v1/heartbeats")] == [
            b'{"interval_ms":5000,"client_label":"alpha-bot"}'
        ]
        assert beat.ok and beat.expires_at == datetime(
            2024, 5, 12, 13, 0, 0, 123000, tzinfo=timezone.utc
        )

    async def test_the_label_defaults_to_the_single_stream(self, mock: Routes) -> None:
        mock.post(HEARTBEATS, payload={"ok": True, "expires_at_ms": 1})
        async with make_client() as client:
            await client.orders.heartbeat(1000)
        assert b'"client_label":""' in sent(mock, "/v1/heartbeats")[0]["data"]

    @pytest.mark.parametrize(
        ("interval_ms", "label"),
        [(999, ""), (60_001, ""), (5000.0, ""), (True, ""), (5000, "x" * 65), (5000, None)],
    )
    async def test_bounds_are_checked_before_sending(
        self, mock: Routes, interval_ms: Any, label: Any
    ) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                await client.orders.heartbeat(interval_ms, label=label)
        assert calls(mock) == []

    async def test_a_beat_is_retried_like_a_read(self, mock: Routes) -> None:
        mock.post(HEARTBEATS, exception=ConnectionResetError("lost"))
        mock.post(HEARTBEATS, payload={"ok": True, "expires_at_ms": 1})
        async with make_client() as client:
            await client.orders.heartbeat(1000)
        assert len(calls(mock)) == 2

    async def test_a_pydantic_422_is_a_validation_error(self, mock: Routes) -> None:
        detail = {"detail": [{"loc": ["body", "interval_ms"], "msg": "too small"}]}
        mock.post(HEARTBEATS, status=422, payload=detail)
        async with make_client() as client:
            with pytest.raises(ps.ValidationError, match="too small"):
                await client.orders.heartbeat(1000)

    @pytest.mark.parametrize("expires_at_ms", [10**20, -(10**17), 2**63 - 1, -1])
    async def test_an_expiry_outside_what_a_datetime_holds_is_a_decode_error(
        self, mock: Routes, expires_at_ms: int
    ) -> None:
        # Before: it decoded, then Heartbeat.expires_at raised OverflowError/OSError/ValueError.
        mock.post(HEARTBEATS, payload={"ok": True, "expires_at_ms": expires_at_ms})
        async with make_client() as client:
            with pytest.raises(ps.DecodeError, match="expires_at_ms"):
                await client.orders.heartbeat(5000)

    def test_the_latest_expiry_a_datetime_holds_is_accepted(self, mock: Routes) -> None:
        beat = ps.Heartbeat(expires_at_ms=253_402_300_799_999)
        assert beat.expires_at.year == 9999

    @pytest.mark.parametrize("interval", [0.5, 61, float("nan"), "10", True])
    def test_keepalive_bounds(self, interval: Any) -> None:
        client = make_client()
        with pytest.raises(ps.InvalidArgumentError):
            client.orders.keepalive(interval=interval)


class TestKeepAlive:
    def test_beats_at_half_the_interval_until_the_block_ends(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="polysim_async")

        async def body(client: ps.Client, server: Server, loop: VirtualTimeLoop) -> Any:
            async with client.orders.keepalive(interval=10, label="mm") as switch:
                assert switch.alive and switch.beats == 1
                await asyncio.sleep(21)
                assert switch.alive
            await asyncio.sleep(60)  # nothing beats after the block
            return switch

        switch = on_virtual_time(body)
        assert switch.beats == 5 and switch.lapses == 0 and not switch.alive
        assert "keepalive 'mm' stopped" in caplog.text
        assert "cancels every pending order" in caplog.text
        # Leaving ends the protection: check() raises and waiters are released.
        with pytest.raises(ps.HeartbeatLapsedError, match="stopped"):
            switch.check()
        assert "stopped" in repr(switch)

    def test_leaving_releases_a_waiter(self) -> None:
        async def body(client: ps.Client, server: Server, loop: VirtualTimeLoop) -> Any:
            async with client.orders.keepalive(interval=10) as switch:
                waiter = asyncio.create_task(switch.wait_lapsed())
                await asyncio.sleep(3)
                assert not waiter.done()
            return await waiter, switch

        stopped, switch = on_virtual_time(body)
        assert "stopped" in str(stopped) and switch.lapses == 0

    def test_a_keepalive_is_entered_once(self) -> None:
        async def body(client: ps.Client, server: Server, loop: VirtualTimeLoop) -> Any:
            switch = client.orders.keepalive(interval=10)
            async with switch:
                with pytest.raises(ps.UsageError):
                    await switch.__aenter__()
            return server.times

        assert on_virtual_time(body) == [0.0]

    def test_times_and_body(self) -> None:
        async def body(client: ps.Client, server: Server, loop: VirtualTimeLoop) -> Any:
            async with client.orders.keepalive(interval=4, label="b"):
                await asyncio.sleep(9)
            return server.times

        assert on_virtual_time(body) == [0.0, 2.0, 4.0, 6.0, 8.0]

    def test_survives_transient_errors_within_the_interval(self) -> None:
        # Beats 2 to 4 fail (a reset, a 503, a 429); the switch never lapses.
        failures = {
            2: ConnectionResetError("reset"),
            3: CallbackResult(status=503, payload=error_body("SERVER_BUSY")),
            4: CallbackResult(
                status=429, headers={"Retry-After": "1"}, payload=error_body("RATE_LIMITED")
            ),
        }

        async def body(client: ps.Client, server: Server, loop: VirtualTimeLoop) -> Any:
            lapses: list[ps.HeartbeatLapsedError] = []
            async with client.orders.keepalive(interval=10, on_lapse=lapses.append) as switch:
                await asyncio.sleep(30)
                assert switch.alive and lapses == []
                assert isinstance(switch.error, ps.RateLimitError)
                return server.times, switch.beats

        times, beats = on_virtual_time(body, failures.get, max_retries=0)
        assert times[0] == 0.0 and times[1] == 5.0
        assert 5.0 < times[4] < 5.0 + 10.0  # the retried beat landed well before expiry
        assert beats == len(times) - 3

    def test_reports_the_lapse_when_no_beat_gets_through(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="polysim_async")

        def script(n: int) -> Any:
            return None if n == 1 else ConnectionResetError("network partition")

        async def body(client: ps.Client, server: Server, loop: VirtualTimeLoop) -> Any:
            seen: list[tuple[float, ps.HeartbeatLapsedError]] = []
            async with client.orders.keepalive(
                interval=10, label="mm", on_lapse=lambda e: seen.append((loop.time() - T0, e))
            ) as switch:
                lapse = await switch.wait_lapsed()
                at = loop.time() - T0
                assert not switch.alive
                with pytest.raises(ps.HeartbeatLapsedError):
                    switch.check()
            return at, lapse, seen, switch

        at, lapse, seen, switch = on_virtual_time(body, script, max_retries=0)
        # Last good beat at 0 s: the server may fire from interval + grace = 12.5 s.
        assert at == pytest.approx(12.5)
        assert seen == [(pytest.approx(12.5), lapse)]
        assert lapse.label == "mm" and isinstance(lapse.cause, ps.TransportError)
        assert lapse.expires_at == switch.expires_at is not None
        assert "lapsed" in caplog.text and "cancels every pending order" in caplog.text
        assert switch.lapses == 1

    def test_registers_again_after_a_lapse(self) -> None:
        def script(n: int) -> Any:
            return ConnectionResetError("partition") if 2 <= n <= 12 else None

        async def body(client: ps.Client, server: Server, loop: VirtualTimeLoop) -> Any:
            async with client.orders.keepalive(interval=4) as switch:
                await switch.wait_lapsed()
                await asyncio.sleep(30)  # the partition heals after beat 12
                return switch.alive, switch.lapses, switch.beats

        alive, lapses, beats = on_virtual_time(body, script, max_retries=0)
        assert alive and lapses == 1 and beats > 2

    def test_a_refused_beat_stops_at_once(self) -> None:
        def script(n: int) -> Any:
            if n == 1:
                return None
            return CallbackResult(status=401, payload=error_body("INVALID_KEY"))

        async def body(client: ps.Client, server: Server, loop: VirtualTimeLoop) -> Any:
            async with client.orders.keepalive(interval=10) as switch:
                lapse = await switch.wait_lapsed()
                at = loop.time() - T0
                await asyncio.sleep(60)
            return at, lapse, server.times

        at, lapse, times = on_virtual_time(body, script)
        assert at == 5.0 and times == [0.0, 5.0]  # no further attempts
        assert isinstance(lapse.cause, ps.AuthenticationError)
        assert "refused" in str(lapse)

    def test_entering_fails_if_the_first_beat_fails(self) -> None:
        def script(n: int) -> Any:
            return CallbackResult(status=403, payload=error_body("INSUFFICIENT_PERMISSION"))

        async def body(client: ps.Client, server: Server, loop: VirtualTimeLoop) -> Any:
            switch = client.orders.keepalive(interval=10)
            with pytest.raises(ps.PermissionDeniedError):
                async with switch:
                    raise AssertionError("not reached")
            await asyncio.sleep(60)
            return server.times, switch

        times, switch = on_virtual_time(body, script)
        assert times == [0.0] and not switch.alive and switch.beats == 0

    def test_a_crash_in_the_block_stops_the_beats(self) -> None:
        async def body(client: ps.Client, server: Server, loop: VirtualTimeLoop) -> Any:
            with pytest.raises(RuntimeError, match="strategy bug"):
                async with client.orders.keepalive(interval=10):
                    await asyncio.sleep(7)
                    raise RuntimeError("strategy bug")
            await asyncio.sleep(60)
            return server.times

        assert on_virtual_time(body) == [0.0, 5.0]

    def test_a_broken_callback_does_not_stop_the_beats(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        def script(n: int) -> Any:
            return ConnectionResetError("partition") if 2 <= n <= 30 else None

        def broken(error: ps.HeartbeatLapsedError) -> None:
            raise ValueError("callback bug")

        async def body(client: ps.Client, server: Server, loop: VirtualTimeLoop) -> Any:
            async with client.orders.keepalive(interval=1, on_lapse=broken) as switch:
                await switch.wait_lapsed()
                await asyncio.sleep(30)  # the partition heals after beat 30
                return switch.alive, switch.lapses

        assert on_virtual_time(body, script, max_retries=0) == (True, 1)
        assert "on_lapse callback raised" in caplog.text and "callback bug" in caplog.text

    def test_a_stalled_beat_after_a_lapse_is_abandoned_and_sent_again(self) -> None:
        # Heartbeats arriving during [0.2 s, 2.3 s) hang for a minute (a stalled gateway).
        # Before: after the lapse at 2 s, the beat sent then waited for the 30 s HTTP
        # timeout, so the switch stayed down until ~32 s though the server was back at 2.3 s.
        async def main(loop: VirtualTimeLoop) -> Any:
            arrivals: list[float] = []

            async def handler(request: ps.Request) -> ps.Response:
                at = loop.time() - T0
                arrivals.append(at)
                if 0.2 < at < 2.3:
                    await asyncio.sleep(60)
                expires = int(loop.time() * 1000) + 2000
                return ps.Response.from_json({"ok": True, "expires_at_ms": expires})

            client = make_client(LoopClock(), rate_limit=None, transport=ps.MockTransport(handler))
            async with client, client.orders.keepalive(interval=1) as switch:
                await switch.wait_lapsed()
                lapsed_at = loop.time() - T0
                while not switch.alive:  # noqa: ASYNC110 - polls the switch on virtual time
                    await asyncio.sleep(0.01)
                return lapsed_at, loop.time() - T0, arrivals

        lapsed_at, alive_at, arrivals = run_virtual(main)
        assert lapsed_at == pytest.approx(2.0)  # last good beat at 0 s: interval + grace
        # Each beat after the lapse waits half an interval at most: 2.0 (stalls), 2.5 (ok).
        assert arrivals == [0.0, 0.5, pytest.approx(2.0), pytest.approx(2.5)]
        assert alive_at == pytest.approx(2.5, abs=0.02)

    def test_leaving_with_an_unshowable_expiry_never_masks_the_blocks_error(self) -> None:
        # A Heartbeat built by hand (a custom beat) skips the decode-time range check.
        async def beat() -> ps.Heartbeat:
            return ps.Heartbeat(expires_at_ms=10**20)

        async def main(loop: VirtualTimeLoop) -> Any:
            switch = KeepAlive(beat, interval=10, label="x", clock=LoopClock())
            with pytest.raises(RuntimeError, match="strategy bug"):
                async with switch:
                    raise RuntimeError("strategy bug")
            return switch

        switch = run_virtual(main)
        with pytest.raises(ps.HeartbeatLapsedError, match="its last expiry") as info:
            switch.check()
        assert info.value.expires_at is None

    def test_repr_names_the_state(self) -> None:
        client = make_client()
        switch = client.orders.keepalive(interval=10, label="mm")
        assert repr(switch) == "<KeepAlive label='mm' interval=10.0s idle beats=0 lapses=0>"
