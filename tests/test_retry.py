"""Which failures are repeated, how long each wait is, budgets, deadline, logging, cancellation."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import sys
import time
from typing import Any

import pytest
import tenacity

import polysim_async as ps
from polysim_async._errors import from_response
from polysim_async._retry import CallKind, retry_reason

from ._helpers import (
    ACCOUNT_201,
    ACCOUNT_ID,
    ACCOUNT_STATE,
    SECRET,
    USER_201,
    FakeClock,
    Routes,
    calls,
    error_body,
    make_client,
    url,
)

GET = CallKind(idempotent=True)
UNSAFE = CallKind(idempotent=False)
CLOSE = CallKind(idempotent=True, drain=True)
RESET = CallKind(idempotent=False, drain=True)
USER = url("/v1/partner/users/1")
CREATE = url("/v1/partner/accounts")
CLOSE_URL = url(f"/v1/partner/accounts/{ACCOUNT_ID}/close")
RESET_URL = url(f"/v1/partner/accounts/{ACCOUNT_ID}/reset")
CREATE_ARGS: dict[str, Any] = {
    "user_id": 12345,
    "external_id": "pc_challenge_001",
    "stage": "challenge",
    "starting_balance": "10000.00",
}


def status_error(status: int, code: str | None = None) -> ps.APIStatusError:
    return from_response(status, {"X-Polysim-Code": code} if code else {}, b"")


def connector_error() -> ps.ConnectError:
    return ps.ConnectError("cannot connect to https://api.test: Connection refused")


def not_cancelled() -> dict[str, Any]:
    return {"status": 409, "payload": error_body("ORDERS_NOT_CANCELLED", "2 orders remain")}


class TestRetryReason:
    @pytest.mark.parametrize(
        ("exc", "kind", "reason"),
        [
            (status_error(429), UNSAFE, "rate_limit"),
            (status_error(429), GET, "rate_limit"),
            (status_error(503), GET, "server"),
            (status_error(502), GET, "server"),
            (status_error(504), GET, "server"),
            (status_error(425), GET, "server"),
            (status_error(503), UNSAFE, None),
            (status_error(503), RESET, None),
            (status_error(503), CLOSE, "server"),
            (status_error(500), GET, None),
            (status_error(503, "VENUE_UNAVAILABLE"), GET, None),
            (status_error(503, "PERSISTENCE_UNKNOWN"), GET, None),
            (status_error(503, "DEADLINE_OVERSHOT_BUT_PERSISTED"), GET, None),
            (status_error(404), GET, None),
            (status_error(400), GET, None),
            (status_error(409, "ORDERS_NOT_CANCELLED"), CLOSE, "drain"),
            (status_error(409, "ORDERS_NOT_CANCELLED"), RESET, "drain"),
            (status_error(409, "ORDERS_NOT_CANCELLED"), GET, None),
            (status_error(409, "TRADE_IN_PROGRESS"), GET, "conflict"),
            (status_error(409, "LOCK_BUSY_RETRY"), UNSAFE, None),
            (status_error(409, "DUPLICATE_CLIENT_ORDER_ID"), GET, None),
            (ps.ConnectError("refused"), UNSAFE, "transport"),
            (ps.ConnectTimeoutError("slow"), UNSAFE, "transport"),
            (ps.NetworkError("dropped"), UNSAFE, None),
            (ps.NetworkError("dropped"), GET, "transport"),
            (ps.ReadTimeoutError("slow"), UNSAFE, None),
            (ps.ReadTimeoutError("slow"), GET, "transport"),
            (ps.DeadlineExceededError("late"), GET, None),
            (ps.DecodeError("bad"), GET, None),
            (ValueError("bug"), GET, None),
        ],
    )
    def test_table(self, exc: BaseException, kind: CallKind, reason: str | None) -> None:
        assert retry_reason(exc, kind) == reason


class TestRateLimited:
    async def test_waits_retry_after_seconds_then_succeeds(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.get(
            USER,
            status=429,
            payload=error_body("RATE_LIMIT_EXCEEDED"),
            headers={"Retry-After": "2"},
        )
        mock.get(USER, payload=USER_201)
        async with make_client(clock) as client:
            user = await client.partner.users.get(1)
        assert user.user_id == 12345
        assert clock.t == pytest.approx(1002.0)
        assert len(calls(mock)) == 2
        assert client.stats.retries["rate_limit"] == 1
        assert client.stats.retry_wait == pytest.approx(2.0)
        assert client.stats.attempts == 2

    async def test_waits_until_an_http_date(self, mock: Routes, clock: FakeClock) -> None:
        when = email.utils.formatdate(time.time() + 10, usegmt=True)
        mock.get(USER, status=429, headers={"Retry-After": when})
        mock.get(USER, payload=USER_201)
        async with make_client(clock) as client:
            await client.partner.users.get(1)
        assert dict(client.stats.retries) == {"rate_limit": 1}
        assert 8.0 <= client.stats.retry_wait <= 10.0  # the date has whole-second precision
        assert clock.sleeps == [client.stats.retry_wait]

    async def test_a_retry_after_above_the_cap_raises_at_once(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.get(
            USER,
            status=429,
            payload=error_body("RATE_LIMIT_EXCEEDED"),
            headers={"Retry-After": "61"},
        )
        async with make_client(clock) as client:
            with pytest.raises(ps.RateLimitError) as info:
                await client.partner.users.get(1)
        assert info.value.retry_after == 61.0
        assert info.value.code == "RATE_LIMIT_EXCEEDED"
        assert len(calls(mock)) == 1
        assert clock.t == 1000.0

    async def test_the_cap_is_configurable(self, mock: Routes, clock: FakeClock) -> None:
        mock.get(USER, status=429, headers={"Retry-After": "5"})
        async with make_client(clock, max_retry_after=4) as client:
            with pytest.raises(ps.RateLimitError):
                await client.partner.users.get(1)
        assert len(calls(mock)) == 1

    async def test_without_retry_after_it_backs_off(self, mock: Routes, clock: FakeClock) -> None:
        mock.get(USER, status=429)
        mock.get(USER, payload=USER_201)
        async with make_client(clock) as client:
            await client.partner.users.get(1)
        assert 0.25 <= clock.t - 1000.0 <= 0.5

    async def test_an_unsafe_post_is_repeated_after_a_429(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.post(CREATE, status=429, headers={"Retry-After": "1"})
        mock.post(CREATE, status=201, payload=ACCOUNT_201)
        async with make_client(clock) as client:
            account = await client.partner.accounts.create(**CREATE_ARGS)
        assert account.account_id == ACCOUNT_ID
        assert len(calls(mock, "POST")) == 2

    async def test_budget_exhausted_raises_the_last_429(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.get(USER, status=429, headers={"Retry-After": "1"}, repeat=True)
        async with make_client(clock, max_retries=2) as client:
            with pytest.raises(ps.RateLimitError):
                await client.partner.users.get(1)
        assert len(calls(mock)) == 3


class TestServerErrors:
    @pytest.mark.parametrize("status", [425, 502, 503, 504])
    async def test_get_backs_off_exponentially_with_jitter(
        self, mock: Routes, clock: FakeClock, status: int
    ) -> None:
        mock.get(USER, status=status, repeat=True)
        async with make_client(clock) as client:
            with pytest.raises(ps.APIStatusError) as info:
                await client.partner.users.get(1)
        assert info.value.status == status
        assert not isinstance(info.value, tenacity.RetryError)
        assert len(calls(mock)) == 1 + ps.DEFAULT_MAX_RETRIES
        waits = clock.sleeps
        assert len(waits) == 3
        for i, wait in enumerate(waits):  # base 0.5 s, doubling, "equal jitter"
            ceiling = 0.5 * 2**i
            assert ceiling / 2 <= wait <= ceiling
        assert client.stats.retries["server"] == 3

    async def test_backoff_is_capped(self, mock: Routes, clock: FakeClock) -> None:
        mock.get(USER, status=502, repeat=True)
        async with make_client(clock, max_retries=8, deadline=None) as client:
            with pytest.raises(ps.ServerError):
                await client.partner.users.get(1)
        assert len(clock.sleeps) == 8
        assert all(15.0 <= wait <= 30.0 for wait in clock.sleeps[6:])  # 0.5 * 2**6 > 30

    async def test_jitter_varies(self, mock: Routes) -> None:
        firsts = set()
        for _ in range(5):
            clock = FakeClock()
            mock.get(USER, status=503)
            mock.get(USER, payload=USER_201)
            async with make_client(clock) as client:
                await client.partner.users.get(1)
            firsts.add(clock.sleeps[0])
        assert len(firsts) > 1

    async def test_retry_after_on_a_503_is_honoured(self, mock: Routes, clock: FakeClock) -> None:
        mock.get(USER, status=503, headers={"Retry-After": "4"})
        mock.get(USER, payload=USER_201)
        async with make_client(clock) as client:
            await client.partner.users.get(1)
        assert clock.sleeps == [4.0]

    async def test_500_is_not_repeated(self, mock: Routes, clock: FakeClock) -> None:
        mock.get(USER, status=500, repeat=True)
        async with make_client(clock) as client:
            with pytest.raises(ps.ServerError):
                await client.partner.users.get(1)
        assert len(calls(mock)) == 1

    async def test_venue_unavailable_is_not_repeated(self, mock: Routes, clock: FakeClock) -> None:
        body = {"error": "VENUE_UNAVAILABLE", "message": "down", "retry_after": 60}
        mock.get(USER, status=503, payload=body, repeat=True)
        async with make_client(clock) as client:
            with pytest.raises(ps.VenueUnavailableError) as info:
                await client.partner.users.get(1)
        assert info.value.retry_after == 60.0
        assert len(calls(mock)) == 1

    async def test_a_4xx_is_not_repeated(self, mock: Routes, clock: FakeClock) -> None:
        mock.get(USER, status=404, payload=error_body("NOT_FOUND"), repeat=True)
        async with make_client(clock) as client:
            with pytest.raises(ps.NotFoundError):
                await client.partner.users.get(1)
        assert len(calls(mock)) == 1


class TestWhatIsSafeToRepeat:
    """A 503 or a dropped connection may mean the server acted: only safe calls repeat."""

    @pytest.mark.parametrize(
        ("method", "pattern", "call", "body"),
        [
            ("POST", url("/v1/partner/users"), "register", USER_201),
            ("POST", CLOSE_URL, "close", ACCOUNT_STATE),
            ("PATCH", url(f"/v1/partner/accounts/{ACCOUNT_ID}"), "update", ACCOUNT_STATE),
            ("GET", url(f"/v1/partner/accounts/{ACCOUNT_ID}"), "get_account", ACCOUNT_STATE),
        ],
    )
    @pytest.mark.parametrize("failure", ["503", "disconnect"])
    async def test_safe_calls_are_repeated(
        self,
        mock: Routes,
        clock: FakeClock,
        method: str,
        pattern: Any,
        call: str,
        body: Any,
        failure: str,
    ) -> None:
        first = (
            {"status": 503}
            if failure == "503"
            else {"exception": ps.NetworkError("connection lost")}
        )
        mock.add(pattern, method, **first)
        mock.add(pattern, method, payload=body)
        async with make_client(clock) as client:
            await invoke(client, call)
        assert len(calls(mock, method)) == 2

    @pytest.mark.parametrize(
        ("pattern", "call"),
        [
            (CREATE, "create"),
            (url("/v1/partner/users/1/login-link"), "login_link"),
            (RESET_URL, "reset"),
        ],
    )
    @pytest.mark.parametrize(
        ("failure", "error"),
        [
            ({"status": 503}, ps.ServerError),
            ({"status": 502}, ps.ServerError),
            ({"exception": ps.NetworkError("connection lost")}, ps.NetworkError),
            ({"exception": ps.NetworkError("cut")}, ps.NetworkError),
            ({"exception": ps.ReadTimeoutError("slow")}, ps.ReadTimeoutError),
        ],
    )
    async def test_unsafe_posts_are_never_repeated_once_they_may_have_arrived(
        self,
        mock: Routes,
        clock: FakeClock,
        pattern: Any,
        call: str,
        failure: dict[str, Any],
        error: type[Exception],
    ) -> None:
        mock.post(pattern, repeat=True, **failure)
        async with make_client(clock) as client:
            with pytest.raises(error):
                await invoke(client, call)
        assert len(calls(mock, "POST")) == 1
        assert clock.sleeps == []

    @pytest.mark.parametrize(
        ("pattern", "call", "body"),
        [
            (CREATE, "create", ACCOUNT_201),
            (url("/v1/partner/users/1/login-link"), "login_link", {"status": "accepted"}),
            (RESET_URL, "reset", ACCOUNT_STATE),
        ],
    )
    @pytest.mark.parametrize(
        "exc",
        [connector_error, lambda: ps.ConnectTimeoutError("slow connect")],
    )
    async def test_unsafe_posts_are_repeated_when_the_connection_never_opened(
        self, mock: Routes, clock: FakeClock, pattern: Any, call: str, body: Any, exc: Any
    ) -> None:
        mock.post(pattern, exception=exc())
        mock.post(pattern, exception=exc())
        mock.post(pattern, status=201, payload=body)
        async with make_client(clock) as client:
            await invoke(client, call)
        assert len(calls(mock, "POST")) == 3
        assert client.stats.retries["transport"] == 2

    async def test_connect_errors_give_up_after_the_budget(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.post(CREATE, exception=connector_error(), repeat=True)
        async with make_client(clock, max_retries=2) as client:
            with pytest.raises(ps.ConnectError):
                await invoke(client, "create")
        assert len(calls(mock, "POST")) == 3


async def invoke(client: ps.Client, call: str) -> Any:
    accounts, users = client.partner.accounts, client.partner.users
    if call == "register":
        return await users.register("pc_trader_123", "trader@example.com")
    if call == "login_link":
        return await users.send_login_link(1, redirect_url="https://portal.example/markets")
    if call == "create":
        return await accounts.create(**CREATE_ARGS)
    if call == "get_account":
        return await accounts.get(ACCOUNT_ID)
    if call == "update":
        return await accounts.update(ACCOUNT_ID, stage="funded")
    if call == "close":
        return await accounts.close(ACCOUNT_ID)
    if call == "reset":
        return await accounts.reset(ACCOUNT_ID)
    raise AssertionError(call)


class TestDrain:
    @pytest.mark.parametrize(("pattern", "call"), [(CLOSE_URL, "close"), (RESET_URL, "reset")])
    async def test_409_orders_not_cancelled_is_repeated_until_drained(
        self, mock: Routes, clock: FakeClock, pattern: Any, call: str
    ) -> None:
        for _ in range(3):
            mock.post(pattern, **not_cancelled())
        mock.post(pattern, payload={**ACCOUNT_STATE, "status": "closed"})
        async with make_client(clock) as client:
            state = await invoke(client, call)
        assert state.status is ps.AccountStatus.CLOSED
        assert len(calls(mock, "POST")) == 4
        assert client.stats.retries["drain"] == 3
        assert all(w > 0 for w in clock.sleeps)

    async def test_the_drain_has_its_own_budget(self, mock: Routes, clock: FakeClock) -> None:
        for _ in range(5):
            mock.post(CLOSE_URL, **not_cancelled())
        mock.post(CLOSE_URL, payload=ACCOUNT_STATE)
        async with make_client(clock, max_retries=1, drain_retries=5) as client:
            await client.partner.accounts.close(ACCOUNT_ID)
        assert len(calls(mock, "POST")) == 6

    @pytest.mark.parametrize(("pattern", "call"), [(CLOSE_URL, "close"), (RESET_URL, "reset")])
    async def test_a_spent_drain_raises_orders_not_cancelled(
        self, mock: Routes, clock: FakeClock, pattern: Any, call: str
    ) -> None:
        mock.post(pattern, repeat=True, **not_cancelled())
        async with make_client(clock, drain_retries=2) as client:
            with pytest.raises(ps.OrdersNotCancelledError) as info:
                await invoke(client, call)
        assert info.value.status == 409
        assert len(calls(mock, "POST")) == 3

    async def test_the_drain_honours_retry_after(self, mock: Routes, clock: FakeClock) -> None:
        mock.post(CLOSE_URL, headers={"Retry-After": "3"}, **not_cancelled())
        mock.post(CLOSE_URL, payload=ACCOUNT_STATE)
        async with make_client(clock) as client:
            await client.partner.accounts.close(ACCOUNT_ID)
        assert clock.sleeps == [3.0]

    async def test_other_conflicts_on_close_are_not_repeated(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.post(CLOSE_URL, status=409, payload=error_body("SOMETHING_ELSE"), repeat=True)
        async with make_client(clock) as client:
            with pytest.raises(ps.ConflictError):
                await client.partner.accounts.close(ACCOUNT_ID)
        assert len(calls(mock, "POST")) == 1

    async def test_orders_not_cancelled_elsewhere_is_not_drained(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.patch(url(f"/v1/partner/accounts/{ACCOUNT_ID}"), repeat=True, **not_cancelled())
        async with make_client(clock) as client:
            with pytest.raises(ps.OrdersNotCancelledError):
                await client.partner.accounts.update(ACCOUNT_ID, stage="funded")
        assert len(calls(mock)) == 1


class TestMaxRetriesZero:
    @pytest.mark.parametrize(
        ("method", "pattern", "call", "failure"),
        [
            ("GET", USER, "get_user", {"status": 503}),
            ("GET", USER, "get_user", {"status": 429, "headers": {"Retry-After": "1"}}),
            ("GET", USER, "get_user", {"exception": ps.NetworkError("connection lost")}),
            ("POST", CREATE, "create", {"exception": connector_error()}),
            ("POST", CLOSE_URL, "close", not_cancelled()),
        ],
    )
    async def test_disables_every_repeat(
        self,
        mock: Routes,
        clock: FakeClock,
        method: str,
        pattern: Any,
        call: str,
        failure: dict[str, Any],
    ) -> None:
        mock.add(pattern, method, repeat=True, **failure)
        async with make_client(clock, max_retries=0) as client:
            with pytest.raises(ps.PolySimError):
                if call == "get_user":
                    await client.partner.users.get(1)
                else:
                    await invoke(client, call)
        assert len(calls(mock)) == 1
        assert sum(client.stats.retries.values()) == 0


class TestDeadline:
    async def test_the_deadline_bounds_attempts_and_waits_together(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.get(USER, status=429, headers={"Retry-After": "2"}, repeat=True)
        async with make_client(clock, deadline=5, max_retries=10) as client:
            with pytest.raises(ps.DeadlineExceededError) as info:
                await client.partner.users.get(1)
        err = info.value
        assert isinstance(err, TimeoutError)
        assert isinstance(err.__cause__, ps.RateLimitError)
        assert clock.t - 1000.0 <= 5.0
        assert len(calls(mock)) == 3  # at 0 s, 2 s and 4 s; a wait to 6 s would pass 5 s

    async def test_no_deadline_means_the_budget_decides(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.get(USER, status=429, headers={"Retry-After": "50"}, repeat=True)
        async with make_client(clock, deadline=None, max_retries=4) as client:
            with pytest.raises(ps.RateLimitError):
                await client.partner.users.get(1)
        assert clock.t == pytest.approx(1200.0)

    async def test_a_per_call_attempt_timeout_never_outlasts_the_deadline(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.get(USER, status=503, headers={"Retry-After": "9"})
        mock.get(USER, payload=USER_201)
        async with make_client(clock, deadline=10) as client:
            await client.partner.users.get(1)
        (_, _, second) = calls(mock)[1]
        assert second["timeout"].total == pytest.approx(1.0)


class TestObservability:
    async def test_each_retry_is_logged_at_debug_with_its_reason_and_no_key(
        self, mock: Routes, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        mock.get(USER, status=503, headers={"X-Request-Id": "rid-503"})
        mock.get(USER, exception=ps.NetworkError("connection lost"))
        mock.get(USER, status=429, headers={"Retry-After": "1"})
        mock.get(USER, payload=USER_201)
        async with make_client(clock) as client:
            await client.partner.users.get(1)
        retries = [r for r in caplog.records if r.name == "polysim_async"]
        assert [r.levelno for r in retries] == [logging.DEBUG] * 3
        messages = [r.getMessage() for r in retries]
        assert "server" in messages[0] and "rid-503" in messages[0]
        assert "transport" in messages[1]
        assert "rate_limit" in messages[2]
        assert all("GET /v1/partner/users/1" in m for m in messages)
        assert dict(client.stats.retries) == {"server": 1, "transport": 1, "rate_limit": 1}
        for record in caplog.records:
            assert SECRET not in record.getMessage()
            assert SECRET not in caplog.text

    async def test_a_malformed_response_being_retried_does_not_log_the_key(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        # aiohttp puts the request headers (the key) in ClientResponseError's repr.
        caplog.set_level(logging.DEBUG)

        async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(garbage, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with make_client(clock, base_url=f"http://127.0.0.1:{port}") as client:
                with pytest.raises(ps.NetworkError) as info:
                    await client.partner.users.get(1)
        finally:
            server.close()
            await server.wait_closed()
        assert client.stats.attempts == 4
        assert SECRET not in str(info.value)
        assert SECRET not in caplog.text
        assert all(SECRET not in r.getMessage() for r in caplog.records)


class StuckClock(FakeClock):
    """Every sleep waits forever."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


class TestCancellation:
    async def test_cancelling_during_a_backoff_sleep_propagates(self, mock: Routes) -> None:
        sleeping = asyncio.Event()

        class StuckClock(FakeClock):
            async def sleep(self, seconds: float) -> None:
                sleeping.set()
                await asyncio.Event().wait()

        mock.get(USER, status=503, repeat=True)
        async with make_client(StuckClock()) as client:
            task = asyncio.create_task(client.partner.users.get(1))
            await asyncio.wait_for(sleeping.wait(), 2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert task.cancelled()
        assert len(calls(mock)) == 1

    async def test_cancelling_a_caller_waiting_on_asyncio_timeout_is_not_wrapped(
        self, mock: Routes
    ) -> None:
        # asyncio.timeout is 3.11+; on 3.10 aiohttp's own dependency async-timeout
        # is the same scope-based cancellation.
        if sys.version_info >= (3, 11):
            timeout = asyncio.timeout
        else:
            import async_timeout  # type: ignore[import-not-found,unused-ignore]

            timeout = async_timeout.timeout
        mock.get(USER, status=503, repeat=True)
        async with make_client(StuckClock()) as client:
            with pytest.raises(asyncio.TimeoutError) as info:
                async with timeout(0.01):
                    await client.partner.users.get(1)
        # The timeout converts its own cancellation: nothing of ours in between.
        assert type(info.value) is asyncio.TimeoutError

    async def test_cancelling_a_caller_waiting_on_wait_for_is_not_wrapped(
        self, mock: Routes
    ) -> None:
        mock.get(USER, status=503, repeat=True)
        async with make_client(StuckClock()) as client:
            with pytest.raises(asyncio.TimeoutError) as info:
                await asyncio.wait_for(client.partner.users.get(1), 0.01)
        # wait_for converts its own cancellation (3.10 and later): nothing of ours in between.
        assert type(info.value) is asyncio.TimeoutError
