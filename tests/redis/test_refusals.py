"""A Redis that refuses (wrong password, an ACL without a needed command, a host name that
does not resolve) is a configuration error, never an outage: the limiter raises
CoordinationError in both ``on_unavailable`` modes instead of pacing each process alone at the
whole budget, and the store raises it instead of StoreUnavailableError. Only a key holding
data of another kind gets the advice to delete it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
import redis.exceptions

import polysim_async as ps
from polysim_async.redis._connect import refusal

from ._server import RedisServer

ONE_WORKER = {"per_second": 50, "per_minute": 3000}


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[RedisServer]:
    server = RedisServer("--requirepass", "s3cret")
    server.start()
    yield server
    server.close()


def with_password(server: RedisServer, password: str) -> str:
    return f"redis://:{password}@127.0.0.1:{server.port}/0"


@pytest.fixture
async def limited_user(redis_server: RedisServer, name: str) -> AsyncIterator[str]:
    """The URL of a Redis user that may run every command but scripts."""
    async with redis_asyncio.Redis.from_url(redis_server.url) as raw:
        await raw.acl_setuser(
            name,
            enabled=True,
            passwords=["+pw"],
            keys=["*"],
            commands=["+@all", "-@scripting"],
        )
        yield f"redis://{name}:pw@127.0.0.1:{redis_server.port}/0"
        await raw.acl_deluser(name)


@pytest.mark.parametrize("mode", ["local", "raise"])
async def test_a_wrong_password_is_a_configuration_error_not_a_fallback(
    locked_redis: RedisServer, name: str, mode: Any
) -> None:
    for url in (with_password(locked_redis, "wrong"), locked_redis.url):
        async with ps.RedisRateLimit(url, name=name, on_unavailable=mode) as limit:
            with pytest.raises(ps.CoordinationError, match="credentials") as got:
                await limit.acquire()
            assert not isinstance(got.value, ps.StoreUnavailableError)
            assert "delete" not in str(got.value)
            assert limit.stats.local == 0 and limit.available
    # The right password works.
    async with ps.RedisRateLimit(with_password(locked_redis, "s3cret"), name=name) as limit:
        await limit.acquire()
        assert limit.stats.local == 0


async def test_the_store_reports_a_wrong_password_as_such(locked_redis: RedisServer) -> None:
    async with ps.RedisCheckpointStore(with_password(locked_redis, "wrong")) as store:
        with pytest.raises(ps.CoordinationError, match="credentials") as got:
            await store.get("k", dict)
    assert not isinstance(got.value, ps.StoreUnavailableError)


async def test_a_missing_acl_permission_is_named_without_advice_to_delete(
    limited_user: str, name: str
) -> None:
    async with ps.RedisRateLimit(limited_user, name=name, **ONE_WORKER) as limit:
        with pytest.raises(ps.CoordinationError, match="lacks a permission") as got:
            await limit.acquire()
        message = str(got.value)
        assert "evalsha" in message.lower() and "delete" not in message
        assert "Redis permissions" in message
        assert limit.stats.local == 0
    async with ps.RedisCheckpointStore(limited_user, namespace=name) as store:
        assert await store.get("k", dict) is None  # GET is allowed
        with pytest.raises(ps.CoordinationError, match="lacks a permission") as got:
            await store.put("k", {"a": 1})
        message = str(got.value)
        assert "delete" not in message
        # Each key once, although the script names the value key twice without a lease.
        key = f"polysim:cp:{{{name}}}:v:k"
        assert message.count(key) == 1


async def test_a_host_name_that_never_resolved_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    async def no_such_host(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # No lookup leaves the machine: the loop's resolver fails as for a typo.
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_host)
    url = "redis://no-such-host.invalid:6379/0"
    async with ps.RedisRateLimit(url, name=name) as limit:
        with pytest.raises(ps.CoordinationError, match="does not resolve"):
            await limit.acquire()
        assert limit.stats.local == 0
    async with ps.RedisCheckpointStore(url) as store:
        with pytest.raises(ps.CoordinationError, match="does not resolve"):
            await store.get("k", dict)


def test_refusals_are_told_apart() -> None:
    """What is an outage, what is a configuration error, and which gets "delete it"."""
    lookup = redis.exceptions.ConnectionError("Error -2 connecting to x:6379")
    lookup.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    transient = redis.exceptions.ConnectionError("Error -3 connecting to x:6379")
    transient.__cause__ = socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
    keys = ["k1", "k1", "k2"]
    # A name that resolved before and stops resolving: an outage (a DNS server down).
    assert refusal(lookup, "o", keys, answered=True) is None
    assert refusal(transient, "o", keys) is None
    assert refusal(redis.exceptions.ConnectionError("refused"), "o", keys) is None
    assert refusal(redis.exceptions.ReadOnlyError("READONLY"), "o", keys) is None
    unresolved = refusal(lookup, "o", keys)
    assert unresolved is not None and "does not resolve" in str(unresolved)
    wrongtype = refusal(redis.exceptions.ResponseError("WRONGTYPE Operation"), "o", keys)
    assert wrongtype is not None and "delete it" in str(wrongtype)
    assert "on k1, k2:" in str(wrongtype)  # each key once
    noscript = refusal(redis.exceptions.NoScriptError("NOSCRIPT No matching script"), "o", keys)
    assert noscript is not None and "EVALSHA" in str(noscript) and "delete" not in str(noscript)
    other = refusal(redis.exceptions.ResponseError("ERR bad lease ttl"), "o", keys)
    assert other is not None and "delete" not in str(other)


README = Path(__file__).resolve().parents[2] / "README.md"


async def test_the_acl_the_readme_documents_is_enough(redis_server: RedisServer, name: str) -> None:
    readme = README.read_text()
    line = next(x for x in readme.splitlines() if x.startswith("ACL SETUSER polysim "))
    rules = [r for r in line.split()[3:] if not r.startswith(">")]
    async with redis_asyncio.Redis.from_url(redis_server.url) as raw:
        await raw.execute_command("ACL", "SETUSER", name, "on", ">pw", *rules)
        url = f"redis://{name}:pw@127.0.0.1:{redis_server.port}/0"
        try:
            async with ps.RedisRateLimit(url, name=name, **ONE_WORKER) as limit:
                for _ in range(3):
                    await limit.acquire()
                limit.pause(5.0)  # written to Redis by the pause script, in the background
                for _ in range(500):
                    if await raw.exists(f"polysim:rl:{{{name}}}:p"):
                        break
                    await asyncio.sleep(0.01)
                else:
                    raise AssertionError("the pause never reached Redis")
                assert limit.stats.local == 0
            async with ps.RedisCheckpointStore(url, namespace=name) as store:
                lease = await store.acquire_lease("a", owner="w", ttl=5)
                assert lease is not None
                await store.put("k", {"a": 1}, lease=lease)
                assert await store.get("k", dict) == {"a": 1}
                await store.renew_lease(lease)
                await store.delete("k", lease=lease)
                await store.release_lease(lease)
        finally:
            await raw.acl_deluser(name)
