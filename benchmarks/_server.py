"""Run the sandbox in a separate process, so its CPU never shares the client's loop.

The child process starts ``polysim_async.sandbox.Sandbox`` on a loopback port,
creates the accounts and bulk-generates their fills, sends a :class:`ServerInfo`
back through a pipe and serves until the parent says stop.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["ServerInfo", "SandboxUnavailable", "sandbox_available", "sandbox_process"]


class SandboxUnavailable(RuntimeError):
    """The sandbox package (or a feature a benchmark needs) is not there yet."""


@dataclass
class ServerInfo:
    """Where the child's sandbox listens and what it holds."""

    url: str
    tenant_key: str
    accounts: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


def sandbox_available() -> bool:
    """Whether ``polysim_async.sandbox.Sandbox`` can be imported."""
    try:
        from polysim_async.sandbox import Sandbox  # noqa: F401
    except ImportError:
        return False
    return True


async def _serve(
    conn: Connection, accounts: int, fills: int | list[int], rate_limits: bool
) -> None:
    from polysim_async import Client
    from polysim_async.sandbox import Sandbox

    async with Sandbox(seed=1, rate_limits=False, random_walk=False) as sb:
        ids = []
        async with Client(sb.tenant_key, sb.url, rate_limit=None) as client:
            for i in range(accounts):
                user = await client.partner.users.register(f"bench-{i}", f"b{i}@bench.local")
                account = await client.partner.accounts.create(
                    user_id=user.user_id,
                    external_id=f"bench-acc-{i}",
                    stage="challenge",
                    starting_balance="10000.00",
                )
                count = fills[i] if isinstance(fills, list) else fills
                if count:
                    sb.generate_fills(count, account_id=account.account_id)
                ids.append(account.account_id)
        sb.configure(rate_limits=rate_limits)
        conn.send(ServerInfo(sb.url, sb.tenant_key, ids, {"api_key": sb.api_key}))
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_reader(conn.fileno(), stop.set)
        await stop.wait()
        loop.remove_reader(conn.fileno())


def _child(conn: Connection, accounts: int, fills: int | list[int], rate_limits: bool) -> None:
    try:
        asyncio.run(_serve(conn, accounts, fills, rate_limits))
    except BaseException as exc:
        conn.send(exc)
        raise


@contextmanager
def sandbox_process(
    *,
    accounts: int,
    fills_per_account: int | list[int],
    rate_limits: bool,
    timeout: float = 600,
) -> Iterator[ServerInfo]:
    """Start a sandbox in a child process and yield where it listens.

    Raises:
        SandboxUnavailable: the sandbox package is not importable.
        RuntimeError: the child failed to start (its error is chained).
    """
    if not sandbox_available():
        raise SandboxUnavailable("polysim_async.sandbox is not available yet")
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_child, args=(child, accounts, fills_per_account, rate_limits), daemon=True
    )
    proc.start()
    try:
        if not parent.poll(timeout):
            raise RuntimeError("the sandbox process did not start in time")
        got = parent.recv()
        if isinstance(got, BaseException):
            raise RuntimeError("the sandbox process failed") from got
        yield got
    finally:
        with suppress(OSError):
            parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
