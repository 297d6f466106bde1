"""``RedisCheckpointStore``: checkpoints and fenced leases in Redis, for workers on any machine."""

from __future__ import annotations

from typing import Any, TypeVar

from .._checkpoints import Lease, check_lease_args, decode_checkpoint, encode_checkpoint
from .._config import check_positive
from .._errors import ClientClosedError, InvalidArgumentError, LeaseLostError, StoreUnavailableError
from .._tasks import wait_within
from ._connect import connect, refusal, unavailable_errors

__all__ = ["RedisCheckpointStore"]

T = TypeVar("T")
_FEATURE = "RedisCheckpointStore"

# KEYS: 1 lease, 2 fencing counter. ARGV: 1 owner, 2 ttl (ms).
# Returns the new fencing token (a string), or 0 while another worker holds the lease.
# The token is one more than the last one, and at least the server's time in
# microseconds: a Redis that lost its memory (restart without persistence, failover
# to a replica that missed the last grant) still hands out tokens above every token
# granted before. Everything is checked before the first write: a script that fails
# writes nothing.
_ACQUIRE = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'hash' then return 0 end
if kind ~= 'none' then
  return redis.error_reply('WRONGTYPE the lease key ' .. KEYS[1] .. ' holds a ' .. kind)
end
local ttl = tonumber(ARGV[2])
if not ttl or ttl < 1 or ttl > 86400000 then return redis.error_reply('ERR bad lease ttl') end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if not last then return redis.error_reply('ERR the fencing counter is not a number') end
local t = redis.call('TIME')
local token = math.max(last + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
token = string.format('%.0f', token)
redis.call('SET', KEYS[2], token)
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', token)
redis.call('PEXPIRE', KEYS[1], ttl)
return token
"""
# KEYS: 1 lease. ARGV: 1 token, 2 ttl (ms). Returns 1 if renewed, 0 if the lease is lost.
_RENEW = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
# KEYS: 1 lease. ARGV: 1 token. Deletes the lease only if it is still this grant.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
# KEYS: 1 value, 2 lease (or the value key again: no lease). ARGV: 1 token ('' for
# none), 2 data ('' with ARGV[3] = 'del' to delete). Returns 0 if fenced off, else 1.
_WRITE = """
if ARGV[1] ~= '' and redis.call('HGET', KEYS[2], 'token') ~= ARGV[1] then return 0 end
if ARGV[3] == 'del' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
"""


class RedisCheckpointStore:
    """Checkpoints and leases in Redis, shared by workers on every machine.

    Implements :class:`~polysim_async.CheckpointStore`. Lease expiry runs on
    the Redis server's clock (key expiry), so worker clocks do not matter. A
    write with a lease and the check that the lease is still the current grant
    happen in one Lua script, so a worker that lost its lease can never
    overwrite its successor's progress. Every key of one ``namespace`` carries
    the same hash tag, so the scripts run on Redis Cluster (one namespace lives
    on one shard). Checkpoints do not expire; delete the ones you no longer need.

    Fencing tokens are the larger of the last token plus one and the Redis
    server's time in microseconds, so they keep growing even after Redis lost
    its memory (a restart without persistence, a failover to a replica that
    missed the last grant), as long as the server's clock does not step back
    past the old grants. A worker whose lease was granted before such a loss
    can then no longer write, renew or release: its token is not the current
    one.

    Unlike :class:`~polysim_async.RedisRateLimit` there is no local fallback:
    while Redis is down every call raises
    :class:`~polysim_async.StoreUnavailableError` (a checkpoint kept only
    locally would be invisible to the worker that takes over).

    Args:
        url: a redis-py URL (``redis://host:6379/0``, ``rediss://...``, ``unix://...``).
        namespace: keeps the keys of different applications apart.
        timeout: seconds to wait for Redis to connect or answer.
        cluster: ``url`` names a node of a Redis Cluster (redis-py's ``RedisCluster``).

    Cancellation: a call cancelled while Redis answers raises ``CancelledError``
    (never swallowed, also on Python 3.10/3.11); the command may or may not have run.

    Every method raises :class:`~polysim_async.CoordinationError` (not
    :class:`~polysim_async.StoreUnavailableError`) when Redis refuses a
    command because one of the store's keys holds a value it did not write.

    Raises:
        InvalidArgumentError: a bad option.
        MissingDependencyError: redis-py is not installed
            (``pip install "polysim-async[redis]"``).
    """

    def __init__(
        self, url: str, *, namespace: str = "default", timeout: float = 5.0, cluster: bool = False
    ) -> None:
        if not isinstance(url, str) or not url:
            raise InvalidArgumentError(f"url must be a Redis URL, got {url!r}")
        if not isinstance(namespace, str) or not namespace or any(c in namespace for c in "{}"):
            raise InvalidArgumentError(
                f"namespace must be a non-empty string without braces, got {namespace!r}"
            )
        check_positive("timeout", timeout, allow_none=False)
        self.url = url
        self.cluster = bool(cluster)
        self.namespace = namespace
        self.timeout = timeout
        self._errors = unavailable_errors()  # also fails early if redis-py is missing
        self._prefix = f"polysim:cp:{{{namespace}}}"
        self._redis: Any = None
        self._scripts: dict[str, Any] = {}
        self._closed = False
        self._answered = False  # Redis answered once: a name that stops resolving is an outage

    def __repr__(self) -> str:
        return f"RedisCheckpointStore(namespace={self.namespace!r})"

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}:{kind}:{name}"

    def _connection(self) -> Any:
        if self._closed:
            raise ClientClosedError(f"{self!r} is closed")
        if self._redis is None:
            self._redis = connect(
                self.url, cluster=self.cluster, timeout=self.timeout, feature=_FEATURE
            )
        return self._redis

    async def _call(self, names: list[str], fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = await wait_within(fn(*args, **kwargs), self.timeout, "Redis")
        except self._errors as exc:  # a timeout too: TimeoutError is an OSError
            refused = refusal(exc, self, names, answered=self._answered)
            if refused is not None:
                raise refused from exc
            raise StoreUnavailableError(
                f"Redis is unavailable for {self!r}: {exc.__class__.__name__}: {exc}"
            ) from exc
        self._answered = True
        return result

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        redis = self._connection()
        runner = self._scripts.get(script)
        if runner is None:
            runner = self._scripts[script] = redis.register_script(script)
        return await self._call(keys, runner, keys=keys, args=args)

    async def get(self, key: str, type: type[T]) -> T | None:
        """See :meth:`CheckpointStore.get`."""
        value_key = self._key("v", key)
        data = await self._call([value_key], self._connection().get, value_key)
        return None if data is None else decode_checkpoint(data, type, key)

    async def _write(self, key: str, data: bytes, lease: Lease | None, op: str) -> None:
        value_key = self._key("v", key)
        lease_key = value_key if lease is None else self._key("l", lease.name)
        token = "" if lease is None else str(lease.token)
        if not await self._run(_WRITE, [value_key, lease_key], [token, data, op]):
            assert lease is not None
            raise LeaseLostError(f"the lease on {lease.name!r} (token {lease.token}) is lost")

    async def put(self, key: str, value: Any, *, lease: Lease | None = None) -> None:
        """See :meth:`CheckpointStore.put`."""
        await self._write(key, encode_checkpoint(value), lease, "set")

    async def delete(self, key: str, *, lease: Lease | None = None) -> None:
        """See :meth:`CheckpointStore.delete`."""
        await self._write(key, b"", lease, "del")

    async def acquire_lease(self, name: str, *, owner: str, ttl: float) -> Lease | None:
        """See :meth:`CheckpointStore.acquire_lease`."""
        check_lease_args(name, owner, ttl)
        token = await self._run(
            _ACQUIRE, [self._key("l", name), self._key("f", name)], [owner, _ms(ttl)]
        )
        return Lease(name=name, owner=owner, token=int(token), ttl=ttl) if token else None

    async def renew_lease(self, lease: Lease) -> Lease:
        """See :meth:`CheckpointStore.renew_lease`."""
        if not await self._run(
            _RENEW, [self._key("l", lease.name)], [str(lease.token), _ms(lease.ttl)]
        ):
            raise LeaseLostError(f"the lease on {lease.name!r} (token {lease.token}) is lost")
        return lease

    async def release_lease(self, lease: Lease) -> None:
        """See :meth:`CheckpointStore.release_lease`."""
        await self._run(_RELEASE, [self._key("l", lease.name)], [str(lease.token)])

    async def aclose(self) -> None:
        """Close the connections to Redis. Idempotent; the store cannot be used afterwards."""
        self._closed = True
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.aclose()

    async def __aenter__(self) -> RedisCheckpointStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
