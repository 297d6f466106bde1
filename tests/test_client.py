"""Client: configuration, one lazily created session, headers, closing, secrecy of the key."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import polysim_async as ps
from polysim_async._transport import AiohttpTransport

from ._helpers import (
    BASE,
    SECRET,
    USER_201,
    FakeClock,
    Routes,
    base_of,
    calls,
    make_client,
    serve,
    url,
)


def capture(seen: list[web.Request], status: int = 200, body: Any = USER_201) -> Any:
    async def handler(request: web.Request) -> web.Response:
        seen.append(request)
        await request.read()
        return web.json_response(body, status=status)

    def routes(app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", handler)

    return routes


class TestConfiguration:
    def test_key_from_argument_then_tenant_env_then_api_env(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("POLYSIM_API_KEY", "api-env-key")
        assert ps.Client()._api_key == "api-env-key"
        monkeypatch.setenv("POLYSIM_TENANT_KEY", "tenant-env-key")
        assert ps.Client()._api_key == "tenant-env-key"
        assert ps.Client("arg-key")._api_key == "arg-key"

    def test_no_key_anywhere_is_refused(self) -> None:
        with pytest.raises(ps.InvalidArgumentError, match="POLYSIM_TENANT_KEY"):
            ps.Client()

    def test_base_url_from_argument_then_env_then_production(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert ps.Client(SECRET).base_url == "https://api.polysimulator.com"
        monkeypatch.setenv("POLYSIM_BASE_URL", "https://staging.example.com/")
        assert ps.Client(SECRET).base_url == "https://staging.example.com"
        assert ps.Client(SECRET, "https://arg.example.com").base_url == "https://arg.example.com"

    def test_plain_http_is_refused_unless_loopback_or_allowed(self) -> None:
        with pytest.raises(ps.InvalidArgumentError) as info:
            ps.Client(SECRET, "http://api.polysimulator.com")
        assert SECRET not in str(info.value)
        assert ps.Client(SECRET, "http://127.0.0.1:8000").base_url == "http://127.0.0.1:8000"
        insecure = ps.Client(SECRET, "http://partner.internal", allow_insecure=True)
        assert insecure.base_url == "http://partner.internal"

    def test_options_are_keyword_only_with_named_defaults(self) -> None:
        params = inspect.signature(ps.Client).parameters
        positional = [
            n for n, p in params.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        ]
        assert positional == ["api_key", "base_url"]
        defaults = {n: p.default for n, p in params.items()}
        assert defaults["timeout"] is ps.DEFAULT_TIMEOUT
        assert defaults["deadline"] == ps.DEFAULT_DEADLINE
        assert defaults["max_retries"] == ps.DEFAULT_MAX_RETRIES
        assert defaults["max_retry_after"] == ps.DEFAULT_MAX_RETRY_AFTER == 60
        assert defaults["drain_retries"] == ps.DEFAULT_DRAIN_RETRIES
        assert defaults["rate_limit"] == "auto"  # starts at DEFAULT_RATE_LIMIT, may tighten
        assert defaults["pool_size"] == ps.DEFAULT_POOL_SIZE
        assert defaults["allow_insecure"] is False
        with pytest.raises(TypeError):
            ps.Client(SECRET, "https://a.example", 5)  # type: ignore[misc]

    def test_options_reach_the_config_objects(self) -> None:
        client = ps.Client(SECRET, timeout=7, max_retries=1, max_retry_after=9, drain_retries=2)
        assert client.timeout == ps.Timeout(total=7)
        assert (client.retry_policy.max_retries, client.retry_policy.drain_retries) == (1, 2)
        assert client.retry_policy.max_retry_after == 9
        assert client.limiter.limit == ps.DEFAULT_RATE_LIMIT

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"timeout": -1},
            {"timeout": "30"},
            {"deadline": 0},
            {"deadline": "60"},
            {"deadline": True},
            {"deadline": float("nan")},
            {"deadline": float("inf")},
            {"max_retries": -1},
            {"max_retry_after": 0},
            {"drain_retries": 1.5},
            {"pool_size": 0},
            {"pool_size": True},
            {"rate_limit": {"per_second": 5}},
        ],
    )
    def test_bad_options_are_refused(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ps.InvalidArgumentError) as info:
            ps.Client(SECRET, **kwargs)
        assert isinstance(info.value, ValueError)


class TestSecrecy:
    def test_repr_and_str_hide_the_key(self) -> None:
        client = ps.Client(SECRET)
        for text in (repr(client), str(client), f"{client}"):
            assert SECRET not in text
            assert SECRET[4:] not in text
            assert "api.polysimulator.com" in text

    async def test_error_messages_do_not_carry_the_key(self, mock: Routes) -> None:
        mock.get(
            url("/v1/partner/users/1"),
            status=401,
            payload={"error": "INVALID_KEY", "message": "API key is unknown"},
        )
        async with make_client(max_retries=0) as client:
            with pytest.raises(ps.AuthenticationError) as info:
                await client.partner.users.get(1)
        assert SECRET not in str(info.value)
        assert SECRET not in repr(info.value)

    async def test_nothing_logged_during_a_call_carries_the_key(
        self, mock: Routes, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        mock.get(url("/v1/partner/users/1"), status=502)
        mock.get(url("/v1/partner/users/1"), payload=USER_201)
        async with make_client() as client:
            await client.partner.users.get(1)
        assert caplog.records  # the retry was logged
        assert SECRET not in caplog.text


class TestWire:
    async def test_every_request_carries_key_content_type_and_user_agent(self) -> None:
        seen: list[web.Request] = []
        async with serve(capture(seen)) as server, ps.Client(SECRET, base_of(server)) as client:
            await client.partner.users.get(12345)
            await client.partner.users.register("pc_trader_123", "trader@example.com")
        assert [r.method for r in seen] == ["GET", "POST"]
        for request in seen:
            assert request.headers["X-API-Key"] == SECRET
            assert request.headers["Content-Type"] == "application/json"
            assert request.headers["User-Agent"] == f"polysim-async/{ps.__version__}"
            assert "Authorization" not in request.headers

    async def test_a_base_url_path_prefix_is_kept(self) -> None:
        seen: list[web.Request] = []
        async with (
            serve(capture(seen)) as server,
            ps.Client(SECRET, base_of(server) + "/gateway/") as client,
        ):
            await client.partner.users.get(5)
        assert seen[0].path == "/gateway/v1/partner/users/5"


@contextlib.asynccontextmanager
async def loopback() -> AsyncIterator[str]:
    """A real loopback server answering every user GET and the balance: its base URL."""

    async def user(request: web.Request) -> web.Response:
        return web.json_response(USER_201)

    async def balance(request: web.Request) -> web.Response:
        return web.json_response({"balance": "1"})

    def routes(app: web.Application) -> None:
        app.router.add_get("/v1/partner/users/{uid}", user)
        app.router.add_get("/v1/account/balance", balance)

    async with serve(routes) as server:
        yield base_of(server)


class TestLifecycle:
    """The default transport's one aiohttp session, over a real loopback socket."""

    def test_constructing_outside_a_loop_creates_no_session(self) -> None:
        client = ps.Client(SECRET)
        assert client._transport._session is None  # type: ignore[attr-defined]
        assert not client.closed

    async def test_one_session_created_lazily_and_shared(self) -> None:
        async with loopback() as base:
            client = ps.Client(SECRET, base)
            transport = client._transport
            assert isinstance(transport, AiohttpTransport)
            assert transport._session is None
            async with client:
                assert transport._session is None  # not even on enter
                await client.partner.users.get(12345)
                session = transport._session
                assert isinstance(session, aiohttp.ClientSession)
                assert session._loop is asyncio.get_running_loop()
                await asyncio.gather(*(client.partner.users.get(12345) for _ in range(10)))
                assert transport._session is session
                with pytest.warns(DeprecationWarning, match="Client.session"):
                    assert client.session is session
            assert session.closed
            assert client.closed

    async def test_a_closed_client_refuses_work_clearly(self) -> None:
        async with loopback() as base:
            async with ps.Client(SECRET, base) as client:
                await client.partner.users.get(12345)
            with pytest.raises(ps.ClientClosedError, match="closed"):
                await client.partner.users.get(12345)
            with pytest.raises(ps.ClientClosedError):
                async with client:
                    pass
            with pytest.raises(ps.ClientClosedError), pytest.warns(DeprecationWarning):
                client.session  # noqa: B018
            assert client.stats.attempts == 1

    async def test_a_client_closed_before_use_refuses_work(self, mock: Routes) -> None:
        client = make_client()
        await client.aclose()
        await client.aclose()  # idempotent
        with pytest.raises(ps.ClientClosedError):
            await client.partner.users.get(1)
        assert calls(mock) == []

    async def test_aclose_without_async_with(self) -> None:
        async with loopback() as base:
            client = ps.Client(SECRET, base)
            await client.partner.users.get(12345)
            session = client._transport._session  # type: ignore[attr-defined]
            assert session is not None
            await client.aclose()
            assert session.closed

    async def test_an_unclosed_client_warns_on_collection(self) -> None:
        async with loopback() as base:
            client = ps.Client(SECRET, base)
            await client.__aenter__()
            await client.partner.users.get(12345)
            with pytest.warns(ResourceWarning, match="unclosed"):
                client.__del__()
            await client.aclose()
            client.__del__()  # closed: silent (filterwarnings=error would fail otherwise)

    async def test_cancelling_a_call_in_flight_propagates_and_the_client_still_works(
        self,
    ) -> None:
        arrived = asyncio.Event()
        release = asyncio.Event()

        async def handler(request: web.Request) -> web.Response:
            if request.match_info["uid"] == "1":
                arrived.set()
                await release.wait()
            return web.json_response(USER_201)

        def routes(app: web.Application) -> None:
            app.router.add_get("/v1/partner/users/{uid}", handler)

        async with serve(routes) as server, ps.Client(SECRET, base_of(server)) as client:
            task = asyncio.create_task(client.partner.users.get(1))
            await asyncio.wait_for(arrived.wait(), 2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert task.cancelled()
            release.set()
            user = await client.partner.users.get(12345)
            assert user.user_id == 12345
            assert client.stats.attempts == 2  # the cancelled call was not retried


async def test_concurrent_calls_through_one_client(clock: FakeClock, mock: Routes) -> None:
    mock.get(url("/v1/partner/users/12345"), payload=USER_201, repeat=True)
    async with make_client(clock) as client:
        users = await asyncio.gather(*(client.partner.users.get(12345) for _ in range(60)))
    assert {u.user_id for u in users} == {12345}
    assert client.stats.attempts == 60


class TestLifecycleEdges:
    async def test_a_closed_client_fails_at_once_even_while_the_limiter_is_paused(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        client = make_client(clock)
        async with client:
            client.limiter.pause(30)
        start = clock()
        with pytest.raises(ps.ClientClosedError):
            await client.account.balance()
        assert clock() == start and client.stats.limiter_wait == 0  # no waiting in line first

    async def test_a_client_used_without_async_with_and_dropped_warns(self) -> None:
        async with loopback() as base:
            client = ps.Client(SECRET, base)
            await client.account.balance()  # the session is created without `async with`
            session = client._transport._session  # type: ignore[attr-defined]
            assert session is not None
            with pytest.warns(ResourceWarning, match="unclosed <polysim_async.Client"):
                del client
                gc.collect()
            await session.close()

    def test_the_session_outside_a_running_loop_is_a_clear_usage_error(self) -> None:
        client = ps.Client("k_123456789", "http://127.0.0.1:1")
        with (
            pytest.raises(ps.UsageError, match="running event loop"),
            pytest.warns(DeprecationWarning),
        ):
            client.session  # noqa: B018
        assert not client.closed
        del client
        gc.collect()  # nothing was opened, so nothing warns

    async def test_a_mock_transport_has_no_session(self, mock: Routes) -> None:
        async with make_client() as client:
            with (
                pytest.raises(ps.UsageError, match="another transport"),
                pytest.warns(DeprecationWarning),
            ):
                client.session  # noqa: B018


class TestOneClock:
    async def test_one_clock_object_reaches_every_timing_path(self, mock: Routes) -> None:
        clock = FakeClock()
        client = make_client(clock)
        assert client.clock is clock
        assert client.limiter._clock is clock and client._requester.clock is clock
        await client.aclose()

    def test_the_old_separate_time_functions_still_work_with_a_warning(self) -> None:
        fake = FakeClock()
        with pytest.warns(DeprecationWarning, match="one Clock"):
            client = ps.Client(SECRET, BASE, clock=fake.now, sleep=fake.sleep)
        clock = client.clock
        assert clock.now() == fake.t and clock.wall() > 1e9
        with pytest.warns(DeprecationWarning):
            ps.Client(SECRET, BASE, wall_clock=lambda: 5.0)
        with pytest.raises(ps.InvalidArgumentError, match="Clock"):
            ps.Client(SECRET, BASE, clock=42)  # type: ignore[arg-type]

    async def test_the_old_forms_drive_the_request_path(self, mock: Routes) -> None:
        fake = FakeClock()
        mock.get(url("/v1/partner/users/1"), status=503)
        mock.get(url("/v1/partner/users/1"), payload=USER_201)
        with pytest.warns(DeprecationWarning):
            client = ps.Client(
                SECRET, BASE, clock=fake.now, sleep=fake.sleep, transport=mock.transport
            )
        async with client:
            await client.partner.users.get(1)
        assert len(fake.sleeps) == 1  # the backoff slept on the given function

    def test_settings_are_read_only(self) -> None:
        client = ps.Client(SECRET, BASE, timeout=7)
        assert client.timeout == ps.Timeout(total=7)
        assert client.retry_policy.max_retries == ps.DEFAULT_MAX_RETRIES
        with pytest.raises(AttributeError):
            client.timeout = ps.Timeout()  # type: ignore[misc]
        with pytest.raises(AttributeError):
            client.retry_policy = ps.RetryPolicy()  # type: ignore[misc]

    @pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
    def test_max_response_size_must_be_a_positive_integer(self, bad: Any) -> None:
        with pytest.raises(ps.InvalidArgumentError, match="max_response_size"):
            ps.Client(SECRET, BASE, max_response_size=bad)


async def test_a_declared_oversized_body_is_refused_before_reading() -> None:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 2048, content_type="application/json")

    def routes(app: web.Application) -> None:
        app.router.add_get("/v1/account/balance", big)

    async with (
        serve(routes) as server,
        ps.Client(SECRET, base_of(server), max_response_size=1024) as client,
    ):
        with pytest.raises(ps.ResponseTooLargeError, match="1024 bytes") as info:
            await client.account.balance()
    assert info.value.status == 200 and isinstance(info.value, ps.DecodeError)
