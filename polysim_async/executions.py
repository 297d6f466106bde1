"""The execution feed (``/v1/ws/executions``, personal key): ``client.executions``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, overload

from ._checkpoints import CheckpointStore
from ._config import DEFAULT_QUEUE_SIZE, DEFAULT_STREAM_POLICY, StreamPolicy
from ._errors import InvalidArgumentError
from ._leases import DEFAULT_LEASE_TTL, check_store
from ._requester import Requester
from ._stream import FillStream
from ._validation import check_int, wallet_param
from .account import AccountAPI
from .models.executions import Fill
from .models.orders import WsToken
from .models.streams import StreamCheckpoint, StreamGap, Watermark

__all__ = ["ExecutionsAPI"]


class ExecutionsAPI:
    """``client.executions``: the key owner's fills as one reconnecting, gap-free stream."""

    def __init__(
        self,
        requester: Requester,
        *,
        account: AccountAPI,
        mint: Callable[[], Awaitable[WsToken]],
        user_agent: str,
    ) -> None:
        self._r = requester
        self._account = account
        self._mint = mint
        self._user_agent = user_agent

    @overload
    def stream(
        self,
        *,
        since: Watermark | StreamCheckpoint | None = ...,
        gaps: Literal[False] = ...,
        queue_size: int = ...,
        policy: StreamPolicy = ...,
        wallet_id: int | str | None = ...,
        store: CheckpointStore | None = ...,
        key: str | None = ...,
        lease_ttl: float = ...,
    ) -> FillStream[Fill]: ...

    @overload
    def stream(
        self,
        *,
        since: Watermark | StreamCheckpoint | None = ...,
        gaps: Literal[True],
        queue_size: int = ...,
        policy: StreamPolicy = ...,
        wallet_id: int | str | None = ...,
        store: CheckpointStore | None = ...,
        key: str | None = ...,
        lease_ttl: float = ...,
    ) -> FillStream[Fill | StreamGap]: ...

    def stream(
        self,
        *,
        since: Watermark | StreamCheckpoint | None = None,
        gaps: bool = False,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        policy: StreamPolicy = DEFAULT_STREAM_POLICY,
        wallet_id: int | str | None = "all",
        store: CheckpointStore | None = None,
        key: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
    ) -> FillStream[Fill] | FillStream[Fill | StreamGap]:
        """Stream every fill of the key's owner, exactly once, in order, across drops.

        ``async with client.executions.stream() as fills: async for fill in fills: ...``

        On entering, a token is minted (``POST /v1/keys/ws-token``) and the
        socket opened at the base URL with ``https→wss`` / ``http→ws`` and
        path ``/v1/ws/executions?token=``. All three documented frame shapes
        become :class:`Fill`; ``connected`` and ``pong`` frames are ignored; a
        JSON ping is sent when the socket is idle. After every reconnect, the
        fills missed meanwhile are read from ``GET /v1/account/history`` (the
        source of truth) and delivered before live frames resume; duplicates
        between the two are dropped by ``(order_id, filled_at)``.

        Args:
            since: where to resume. A saved :attr:`FillStream.checkpoint` resumes
                exactly: every fill not handed over before is delivered (read from
                REST first), none twice. A :class:`Watermark` resumes after that
                fill (``Watermark.beginning()`` replays the whole history), but a
                fill older than it that reached REST and not the socket before the
                save is not recovered. ``None`` starts at the newest fill REST
                shows on entering.
            gaps: also yield a :class:`StreamGap` before the fills recovered
                after each reconnect (and after resuming from ``since``).
            queue_size: fills buffered for a slow consumer before the socket
                reader pauses (backpressure; nothing is ever dropped).
            policy: backoff, ping, REST-check and lookback settings.
            wallet_id: history scope of the backfill. The socket carries the fills
                of every wallet of the user, so the default ``"all"`` matches it;
                ``"api"`` or a wallet id narrows the backfill only (``None``
                sends no scope: the server's default, the API wallet).
            store: a :class:`CheckpointStore` shared by the processes that may run
                this stream (SQLite on one machine, Redis across machines). The
                stream is then owned under a lease named ``key``: entering waits
                until no other process holds it, and resumes from the
                :class:`StreamCheckpoint` saved under ``key`` (``since`` only
                counts while nothing is saved). The checkpoint is saved, fenced by
                the lease, as fills are *acknowledged*: a fill is acknowledged when
                you ask for the next item or leave the ``async with`` normally. So
                every fill is acknowledged exactly once across the processes; the
                fill a crashed process had in hand is delivered again by the next
                owner (at least once: make its handling idempotent).
            key: the stream's name in ``store`` (required with it).
            lease_ttl: seconds the lease lasts (at least 1); renewed every third of it while
                the stream runs, released when it ends. A dead owner's stream is
                taken over this long after its last renewal.

        Returns:
            The stream, to be entered with ``async with``. Its ``position`` is
            what to save; its ``stats`` count reconnects, recoveries and duplicates.

        Raises:
            InvalidArgumentError: bad ``since``, ``queue_size``, ``policy``,
                ``wallet_id``, ``store``, ``key`` or ``lease_ttl`` (at once).
            Entering with a store: StoreUnavailableError when the store cannot be
            reached. While iterating with one: LeaseLostError when another
            process took the stream over (this one could not renew the lease).
            While iterating: AuthenticationError or PermissionDeniedError when a
            token is refused (401/403), StreamClosedError after
            ``policy.max_failures`` consecutive failures or when the base URL
            has no executions WebSocket. Transient failures (``is_transient``:
            transport errors, 408/425/429/5xx) reconnect with backoff; any other
            error ends the stream with it (``policy.process_exception`` changes
            that). An unreadable frame is counted (``stats.unreadable``) and
            skipped, and REST is checked for the fill it may have carried.

        Cancellation: cancelling the consumer, ``break`` or an error inside the
        ``async with`` closes the socket and stops the reader task before the
        block exits.
        """
        size = check_int("queue_size", queue_size, low=1)
        if since is not None and not isinstance(since, (Watermark, StreamCheckpoint)):
            raise InvalidArgumentError(
                f"since must be a StreamCheckpoint, a Watermark or None, got {since!r}"
            )
        if not isinstance(policy, StreamPolicy):
            raise InvalidArgumentError("policy must be a StreamPolicy")
        check_store(store, key, what="stream")
        return FillStream(
            requester=self._r,
            account=self._account,
            mint=self._mint,
            user_agent=self._user_agent,
            since=since,
            gaps=gaps,
            queue_size=size,
            policy=policy,
            wallet_id=wallet_param(wallet_id),
            store=store,
            key=key or "",
            lease_ttl=lease_ttl,
        )
