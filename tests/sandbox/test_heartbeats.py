"""The dead-man's switch (API.md O8): bounds, expiry, and lapses on both clocks.

A lapse is proven on the sandbox's simulated clock (``advance``), and as real
time passes with a flowing clock: there the timed-event loop's wait is replaced
by one that moves the sandbox's clock by the delay it was asked to wait, so no
test sleeps.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from polysim_async.sandbox import Sandbox
from polysim_async.sandbox._heartbeats import HeartbeatBook, grace_us

from ._helpers import Api, assert_error


async def _rest(sb: Sandbox, **kw: Any) -> int:
    placed = await sb.place_order(
        market_id=sb.market_id,
        side="BUY",
        outcome="Yes",
        quantity="5",
        price="0.20",
        order_type="limit",
        **kw,
    )
    return int(placed["order_id"])


async def _status(api: Api, order_id: int) -> tuple[str, str | None]:
    _, _, row = await api.trader("GET", f"/orders/{order_id}")
    return row["status"], row["cancelled_reason"]


def _now_ms(sb: Sandbox) -> int:
    return int(sb.now().timestamp() * 1000)


@pytest.mark.parametrize(
    ("interval", "grace"), [(1000, 1000), (4000, 1000), (5000, 1250), (60_000, 15_000)]
)
async def test_expiry_is_the_beat_plus_interval_plus_grace(
    api: Api, sb: Sandbox, interval: int, grace: int
) -> None:
    status, headers, body = await api.trader("POST", "/heartbeats", json={"interval_ms": interval})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body == {"ok": True, "expires_at_ms": _now_ms(sb) + interval + grace}


def test_the_grace_is_exact_for_odd_intervals() -> None:
    assert grace_us(5001) == 1_250_250  # 0.25 x 5001 ms, in microseconds
    book = HeartbeatBook()
    reg = book.beat(1, "", 5001, now_us=0)
    assert reg.expires_us == 5_001_000 + 1_250_250
    assert book.pop_lapsed(reg.expires_us) == []  # a beat on the expiry instant still counts
    assert book.pop_lapsed(reg.expires_us + 1) == [reg] and len(book) == 0


async def test_a_lapse_cancels_every_pending_order_of_the_account_whatever_the_label(
    api: Api, sb: Sandbox
) -> None:
    ids = [await _rest(sb) for _ in range(3)]
    # API.md O8: all pending orders of the account, its other wallets included.
    _, _, lab = await api.trader("POST", "/me/wallets", json={"label": "lab"})
    lab_order = await _rest(sb, wallet_id=lab["id"])
    _, account_id = await api.new_account()
    partner_order = await _rest(sb, account_id=account_id)  # another user: untouched
    await api.trader("POST", "/heartbeats", json={"interval_ms": 60_000, "client_label": "slow"})
    await api.trader("POST", "/heartbeats", json={"interval_ms": 2000, "client_label": "fast"})
    sb.advance(3)  # exactly 2 s + 1 s grace: not lapsed yet
    assert {await _status(api, i) for i in ids} == {("PENDING", None)}
    sb.advance(0.001)
    assert {await _status(api, i) for i in ids} == {("CANCELLED", "heartbeat_expired")}
    _, _, row = await api.trader("GET", f"/orders/{lab_order}?wallet_id={lab['id']}")
    assert (row["status"], row["cancelled_reason"]) == ("CANCELLED", "heartbeat_expired")
    _, _, row = await api.trader("GET", f"/orders/{ids[0]}")
    assert row["cancelled_at"] == "2026-06-01T00:00:03.000001Z"  # the expiry instant, on the clock
    assert sb.account_state(account_id)["balance"] == "9999.00"  # its 1.00 still reserved
    _, _, bal = await api.trader("GET", "/account/balance")
    assert bal["balance"] == "10000.00"  # every reservation returned
    assert [h["client_label"] for h in sb.heartbeats()] == ["slow"]  # only "fast" lapsed
    assert partner_order not in ids


async def test_beats_keep_the_orders_and_a_new_beat_registers_again(api: Api, sb: Sandbox) -> None:
    first = await _rest(sb)
    for _ in range(5):
        await api.trader("POST", "/heartbeats", json={"interval_ms": 1000})
        sb.advance(1.5)  # within 1 s + 1 s grace of the last beat
    assert await _status(api, first) == ("PENDING", None)
    sb.advance(1)
    assert await _status(api, first) == ("CANCELLED", "heartbeat_expired")
    assert sb.heartbeats() == []
    second = await _rest(sb)  # without a registration nothing cancels it
    sb.advance(hours=1)
    assert await _status(api, second) == ("PENDING", None)
    await api.call("POST", "/heartbeats", key=sb.api_key, json={"interval_ms": 1000})  # root alias
    sb.advance(2.001)
    assert await _status(api, second) == ("CANCELLED", "heartbeat_expired")


async def test_a_lapse_inside_a_long_jump_happens_at_its_instant(api: Api, sb: Sandbox) -> None:
    order = await _rest(sb)
    await api.trader("POST", "/heartbeats", json={"interval_ms": 60_000})
    sb.advance(hours=2)  # the lapse at 00:01:15 runs before the hourly events at 01:00
    _, _, row = await api.trader("GET", f"/orders/{order}")
    assert (row["status"], row["cancelled_at"]) == ("CANCELLED", "2026-06-01T00:01:15.000001Z")


async def test_the_control_api_lists_and_lapses_registrations(api: Api, sb: Sandbox) -> None:
    order = await _rest(sb)
    await api.trader("POST", "/heartbeats", json={"interval_ms": 10_000, "client_label": "mm"})
    _, _, listed = await api.call("GET", "/_sandbox/heartbeats")
    assert listed == [
        {
            "user_id": sb.user_id,
            "client_label": "mm",
            "interval_ms": 10_000,
            "last_beat_at": "2026-06-01T00:00:00Z",
            "expires_at_ms": _now_ms(sb) + 12_500,
        }
    ]
    _, _, lapsed = await api.call("POST", "/_sandbox/heartbeats/lapse", json={})
    assert lapsed == {"cancelled": 1} and sb.heartbeats() == []
    assert await _status(api, order) == ("CANCELLED", "heartbeat_expired")


@pytest.mark.parametrize(
    ("body", "kind", "loc"),
    [
        ({"interval_ms": 999}, "greater_than_equal", ["body", "interval_ms"]),
        ({"interval_ms": 60_001}, "less_than_equal", ["body", "interval_ms"]),
        ({}, "missing", ["body", "interval_ms"]),
        ({"interval_ms": "soon"}, "int_parsing", ["body", "interval_ms"]),
        ({"interval_ms": 1500.5}, "int_from_float", ["body", "interval_ms"]),
        ({"interval_ms": True}, "int_type", ["body", "interval_ms"]),
        (
            {"interval_ms": 5000, "client_label": "x" * 65},
            "string_too_long",
            ["body", "client_label"],
        ),
        ({"interval_ms": 5000, "client_label": 7}, "string_type", ["body", "client_label"]),
        ([5000], "model_attributes_type", ["body"]),
    ],
)
async def test_bad_bodies_get_the_pydantic_detail_envelope(
    api: Api, body: Any, kind: str, loc: list[Any]
) -> None:
    status, headers, got = await api.trader("POST", "/heartbeats", json=body)
    assert status == 422 and headers["X-Polysim-Code"] == "VALIDATION_FAILED"
    assert headers["X-Request-Id"] and set(got) == {"detail"}
    (item,) = got["detail"]
    assert (item["type"], item["loc"]) == (kind, loc) and item["msg"]


async def test_lax_integers_and_unknown_keys_pass(api: Api) -> None:
    for body in ({"interval_ms": "5000"}, {"interval_ms": 5000.0, "extra": 1}):
        status, _, got = await api.trader("POST", "/heartbeats", json=body)
        assert status == 200 and got["ok"] is True
    status, _, got = await api.trader("POST", "/heartbeats", data=b"{not json")
    assert status == 422 and got["detail"][0]["type"] == "json_invalid"


async def test_heartbeats_need_a_key_not_the_trade_permission(api: Api, sb: Sandbox) -> None:
    assert_error(*await api.call("POST", "/v1/heartbeats", json={}), 401, "MISSING_API_KEY")
    reader = sb.create_trader(permissions={"read"}).api_key
    status, _, _ = await api.trader("POST", "/heartbeats", key=reader, json={"interval_ms": 1000})
    assert status == 200


async def test_a_flowing_clock_lapses_registrations_as_real_time_passes(
    http: aiohttp.ClientSession,
) -> None:
    """The timed-event loop waits until the next lapse and cancels with no request."""
    waits: list[float] = []
    woke = asyncio.Event()
    async with Sandbox(seed=3, random_walk=False, rate_limits=False) as sb:
        core = sb._core  # the loop's wait is its one seam (Core.wait_event)

        async def fake_wait(delay: float | None) -> None:
            if delay is None or delay > 60:  # nothing due soon: wait to be woken
                await core.wake.wait()
                return
            waits.append(delay)
            core.clock.advance(delay)  # as if that much real time had passed: no catch-up
            woke.set()

        core.wait_event = fake_wait  # type: ignore[method-assign]
        core.wake.set()  # the loop picks up the new wait
        api = Api(sb, http)
        order = await _rest(sb)
        await api.trader("POST", "/heartbeats", json={"interval_ms": 1000})
        await asyncio.wait_for(woke.wait(), 5)
        await asyncio.sleep(0)  # the loop's sweep runs right after the wait returns
        row = core.state.orders[order]
        assert (row.status, row.cancelled_reason) == ("CANCELLED", "heartbeat_expired")
    # 1 s interval + 1 s grace (+1 us: a lapse is strictly past the expiry), less the
    # real time the requests took.
    assert waits and 1.5 < waits[0] <= 2.000001
