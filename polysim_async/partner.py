"""The partner API (``/v1/partner/*``, tenant key): ``client.partner.users`` and ``.accounts``."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Mapping
from decimal import Decimal
from os import PathLike
from typing import Any

import msgspec

from ._checkpoints import CheckpointStore
from ._codec import encode_rules
from ._compat import deprecated_positional
from ._config import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ProcessException
from ._errors import InvalidArgumentError
from ._fanout import DEFAULT_FAN_OUT_CONCURRENCY, OnError, fan_out
from ._fleet import MonitorState
from ._leases import DEFAULT_LEASE_TTL
from ._monitor import (
    DEFAULT_CHECKPOINT_INTERVAL,
    DEFAULT_MONITOR_CONCURRENCY,
    FleetMonitor,
    client_rate,
)
from ._pagination import flatten, walk_cursor, walk_cursor_prefetch
from ._requester import Requester
from ._shard import Shard, check_shard, select_shard
from ._validation import (
    account_id_list,
    check_enum,
    check_int,
    check_mapping,
    check_str,
    check_url,
    page_limit,
    path_id,
    to_money,
)
from ._watch import DEFAULT_WATCH_CONCURRENCY, DEFAULT_WATCH_INTERVAL, TradeWatch
from .export import DEFAULT_PART_ROWS, ExportFormat, ExportSummary, ProgressCallback
from .export._run import run_export
from .models.common import Side, Stage
from .models.partner import (
    AccountState,
    CreateAccountRequest,
    LoginLink,
    LoginLinkRequest,
    PartnerAccount,
    PartnerUser,
    RegisterUserRequest,
    Rules,
    Trade,
    TradePage,
    UpdateAccountRequest,
)
from .models.streams import AccountTrade, Watermark
from .rules import RuleSet

__all__ = ["PartnerAPI", "PartnerAccounts", "PartnerUsers"]

#: The documented rule keys: exact, non-negative percentages (API.md P4).
_TYPED_RULES = ("profit_target_pct", "max_drawdown_pct")


def _rules(value: RuleSet | Rules | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Check a rules object for sending; any JSON object, the documented keys typed."""
    if value is None:
        return None
    if isinstance(value, RuleSet):
        value = value.to_wire()
    rules = check_mapping("rules", value)
    assert rules is not None
    for key in _TYPED_RULES:
        if rules.get(key) is None:
            continue
        amount = to_money(f"rules.{key}", rules[key], positive=False)
        if amount < 0:  # zero is a valid rule (e.g. no drawdown allowed)
            raise InvalidArgumentError(f"rules.{key} must not be negative, got {rules[key]!r}")
        rules[key] = amount
    return rules


def _page_data(page: TradePage) -> list[Trade]:
    return page.data


def _page_cursor(page: TradePage) -> str | None:
    return page.next_cursor


class PartnerUsers:
    """Traders of the tenant: register, get, send a login link."""

    def __init__(self, requester: Requester) -> None:
        self._r = requester

    @deprecated_positional(3, "metadata")
    async def register(
        self, external_id: str, email: str, *, metadata: Mapping[str, Any] | None = None
    ) -> PartnerUser:
        """Register a trader, or resolve the one already mapped to ``external_id``.

        Idempotent on ``external_id``, so it is retried on transport errors.

        Returns:
            The trader; ``created`` is ``True`` on first registration (201) and
            ``False`` on a replay (200).

        Raises:
            InvalidArgumentError: ``external_id`` not 1-255 chars, ``email`` not
                3-320 chars with an ``@``, or ``metadata`` not a string-keyed mapping.
            APIStatusError: as mapped from the server's answer.
        """
        check_str("external_id", external_id, max_len=255)
        check_str("email", email, min_len=3, max_len=320)
        if "@" not in email:
            raise InvalidArgumentError(f"email must contain '@', got {email!r}")
        body = RegisterUserRequest(
            external_id=external_id, email=email, metadata=check_mapping("metadata", metadata)
        )
        response = await self._r.send("POST", "/v1/partner/users", json=body, idempotent=True)
        user = self._r.decode(PartnerUser, response)
        if response.status == 201 and not user.created:
            # A 201 means created, whatever the body says (or leaves out).
            user = msgspec.structs.replace(user, created=True)
            if response.request_id is not None:
                user.__dict__["request_id"] = response.request_id
        return user

    async def get(self, user_id: int) -> PartnerUser:
        """Return the trader ``user_id`` of this tenant.

        Raises:
            NotFoundError: unknown, or mapped to another tenant.
        """
        uid = check_int("user_id", user_id, low=1)
        return await self._r.request(PartnerUser, "GET", f"/v1/partner/users/{uid}")

    @deprecated_positional(2, "redirect_url")
    async def send_login_link(self, user_id: int, *, redirect_url: str | None = None) -> LoginLink:
        """Email the trader a one-time sign-in link (the link is never returned).

        Not idempotent (every call sends another email), so it is repeated only
        when the request provably never left, or after a 429.

        Returns:
            The 202 acknowledgement.
        """
        uid = check_int("user_id", user_id, low=1)
        body = LoginLinkRequest(
            redirect_url=None if redirect_url is None else check_url("redirect_url", redirect_url)
        )
        response = await self._r.send("POST", f"/v1/partner/users/{uid}/login-link", json=body)
        if not response.content.strip():
            return LoginLink()
        return self._r.decode(LoginLink, response)


class PartnerAccounts:
    """Tenant-governed accounts: create, read, update, page fills, close, reset."""

    def __init__(self, requester: Requester) -> None:
        self._r = requester

    async def create(
        self,
        *,
        user_id: int,
        external_id: str,
        stage: Stage | str,
        starting_balance: Decimal | int | str,
        metadata: Mapping[str, Any] | None = None,
        rules: RuleSet | Rules | Mapping[str, Any] | None = None,
    ) -> PartnerAccount:
        """Create an account funded to ``starting_balance``.

        Whether the server deduplicates on the account ``external_id`` is not
        documented, so a create is not repeated once it may have reached the server.

        Args:
            rules: any JSON object (a :class:`Rules`, or a mapping), or a
                :class:`RuleSet` (sent as ``to_wire()``); it is stored and echoed
                back whole. ``profit_target_pct`` and ``max_drawdown_pct``, when
                given, must be exact non-negative numbers (Decimal, int or decimal
                string; floats are refused). Every number goes out as a JSON number.

        Raises:
            InvalidArgumentError: bad ``stage``, a non-positive, float or
                non-decimal ``starting_balance``, ``rules`` or ``metadata`` not a
                JSON object, a bad documented rule value.
        """
        body = CreateAccountRequest(
            user_id=check_int("user_id", user_id, low=1),
            external_id=check_str("external_id", external_id, max_len=255),
            stage=check_enum("stage", stage, Stage),
            starting_balance=to_money("starting_balance", starting_balance),
            metadata=check_mapping("metadata", metadata),
            rules=encode_rules(_rules(rules)),
        )
        return await self._r.request(PartnerAccount, "POST", "/v1/partner/accounts", json=body)

    async def get(self, account_id: str) -> AccountState:
        """Return the live account-state envelope (balance, equity, open positions).

        Raises:
            NotFoundError: unknown, or another tenant's account.
        """
        aid = path_id("account_id", account_id)
        return await self._r.request(AccountState, "GET", f"/v1/partner/accounts/{aid}")

    async def update(
        self,
        account_id: str,
        *,
        stage: Stage | str | None = None,
        metadata: Mapping[str, Any] | None = None,
        rules: RuleSet | Rules | Mapping[str, Any] | None = None,
    ) -> AccountState:
        """Change the given fields of an account; the others stay as they are.

        ``rules`` replaces the stored rules object whole (a :class:`RuleSet` is
        sent as ``to_wire()``, its numbers as JSON numbers).

        Returns:
            The account-state envelope after the change.

        Raises:
            InvalidArgumentError: no field given, or a field is invalid.
        """
        aid = path_id("account_id", account_id)
        if stage is None and metadata is None and rules is None:
            raise InvalidArgumentError("update needs at least one of stage, metadata, rules")
        body = UpdateAccountRequest(
            stage=None if stage is None else check_enum("stage", stage, Stage),
            metadata=check_mapping("metadata", metadata),
            rules=encode_rules(_rules(rules)),
        )
        return await self._r.request(
            AccountState, "PATCH", f"/v1/partner/accounts/{aid}", json=body, idempotent=True
        )

    def trade_pages(
        self,
        account_id: str,
        *,
        side: Side | str | None = None,
        market_id: str | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        prefetch: bool = True,
    ) -> AsyncGenerator[TradePage, None]:
        """Iterate over the account's fill feed page by page, newest first.

        Pass a saved ``next_cursor`` as ``cursor`` (with the same filters) to
        resume. With ``prefetch`` (the default) the next page is requested while
        you work through the current one, at most one page ahead; stopping early
        then costs one unused request, so pass ``prefetch=False`` for short
        incremental syncs.

        Cleanup: reaching the last page (or an error) stops the prefetch at once.
        ``async for`` never closes the iterator it leaves early: after a ``break``,
        or if the consumer is cancelled inside its loop body, the prefetch keeps
        running until the iterator is closed or garbage-collected. When you may
        stop early or be cancelled, wrap it for deterministic cleanup::

            async with contextlib.aclosing(accounts.trade_pages(account_id)) as pages:
                async for page in pages:
                    ...

        Args:
            page_size: 1 to 500; ``None`` asks for the largest page (500).

        Raises:
            InvalidArgumentError: bad filters or ``page_size`` outside 1..500,
                raised by this call before anything is sent.
            PaginationError: the server repeated a cursor (raised while iterating).
        """
        return self._walk(
            account_id,
            side=side,
            market_id=market_id,
            page_size=page_size,
            cursor=cursor,
            prefetch=prefetch,
        )

    def _walk(
        self,
        account_id: str,
        *,
        side: Side | str | None = None,
        market_id: str | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        prefetch: bool = False,
        first_page_size: int | None = None,
    ) -> AsyncGenerator[TradePage, None]:
        """The one walk of a trade feed (every caller: pages, items, fan-out, watch).

        ``first_page_size`` asks for a smaller first page (the watch's routine probe).
        """
        aid = path_id("account_id", account_id)
        limit = page_limit(page_size, MAX_PAGE_SIZE)
        first = limit if first_page_size is None else page_limit(first_page_size, MAX_PAGE_SIZE)
        params: dict[str, str] = {"limit": limit}
        if side is not None:
            params["side"] = check_enum("side", side, Side).value
        if market_id is not None:
            params["market_id"] = check_str("market_id", market_id, max_len=256)
        if cursor is not None:
            check_str("cursor", cursor, max_len=4096)
        path = f"/v1/partner/accounts/{aid}/trades"

        async def fetch(cur: str | None) -> TradePage:
            if cur is not None:
                query = {**params, "cursor": cur}
            else:
                query = params if first == limit else {**params, "limit": first}
            return await self._r.request(TradePage, "GET", path, params=query)

        walker = walk_cursor_prefetch if prefetch else walk_cursor
        return walker(fetch, _page_cursor, cursor)

    def trades(
        self,
        account_id: str,
        *,
        side: Side | str | None = None,
        market_id: str | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        prefetch: bool = True,
    ) -> AsyncGenerator[Trade, None]:
        """Iterate over every fill of the account, newest first, across pages.

        Same arguments, errors and cleanup as :meth:`trade_pages`: wrap it in
        ``contextlib.aclosing`` when you may stop early or be cancelled::

            async with contextlib.aclosing(accounts.trades(account_id)) as trades:
                async for trade in trades:
                    ...
        """
        pages = self.trade_pages(
            account_id,
            side=side,
            market_id=market_id,
            page_size=page_size,
            cursor=cursor,
            prefetch=prefetch,
        )
        return flatten(pages, _page_data)

    def trades_many(
        self,
        account_ids: Iterable[str],
        *,
        concurrency: int = DEFAULT_FAN_OUT_CONCURRENCY,
        side: Side | str | None = None,
        market_id: str | None = None,
        page_size: int | None = None,
        cursors: Mapping[str, str | None] | None = None,
        on_error: OnError = "raise",
        shard: Shard | None = None,
    ) -> AsyncGenerator[AccountTrade, None]:
        """Pull the fills of many accounts at once, as :class:`AccountTrade` items.

        ``concurrency`` accounts are walked at a time, each newest first; items of
        different accounts interleave. Every request goes through the client's
        shared rate limiter, so the budget is kept busy but never exceeded. An
        :class:`AccountTrade` unpacks as ``(account_id, trade)``, so
        ``async for account_id, trade in trades_many(ids)`` works.

        Args:
            account_ids: distinct account ids.
            concurrency: accounts in progress at once.
            side, market_id, page_size: as for :meth:`trade_pages`, for every account.
            cursors: account id → cursor to resume from (e.g. ``FanOutError.resume_cursors``).
            on_error: ``"raise"``: the first account that fails (after the usual
                retries) cancels the rest and raises. ``"continue"``: every other
                account is pulled to the end first, then the failures are raised.
            shard: ``(i, n)``: pull only the accounts of shard ``i`` of ``n``
                (a stable hash of the id, the same in every process), so ``n``
                workers given the same ids split them without overlap. Cursors of
                other shards' accounts are ignored.

        Returns:
            An async iterator of :class:`AccountTrade`.

        Raises:
            InvalidArgumentError: a bad or duplicate id or option, a bad cursor, or
                a ``cursors`` key not in ``account_ids``, raised by this call
                before anything is sent.
            FanOutError: accounts failed; ``failures`` maps each to its error,
                ``resume_cursors`` says where to resume every account that did not
                finish and ``completed`` names those that did (raised while iterating).

        Cleanup: finishing the iteration (or its FanOutError) cancels and awaits
        every worker at once. ``async for`` never closes the iterator it leaves
        early: after a ``break``, or if the consumer is cancelled inside its loop
        body, the workers keep pulling until the iterator is closed or
        garbage-collected. When you may stop early or be cancelled, wrap it::

            async with contextlib.aclosing(accounts.trades_many(ids)) as items:
                async for account_id, trade in items:
                    ...

        Leaving the ``async with`` (normally, by ``break``, an error or
        cancellation) cancels and awaits every worker; nothing is left running.
        """
        ids = account_id_list(account_ids)
        if cursors is not None and not isinstance(cursors, Mapping):
            raise InvalidArgumentError(f"cursors must be a mapping, got {cursors!r}")
        starts = dict(cursors or {})
        unknown = set(starts) - set(ids)
        if unknown:
            shown = sorted(map(repr, unknown))[:3]
            raise InvalidArgumentError(f"cursors has ids not in account_ids: {', '.join(shown)}")
        for aid, cur in starts.items():
            if cur is not None:
                # The check trade_pages makes, done for every account before anything starts.
                check_str(f"cursors[{aid!r}]", cur, max_len=4096)
        if shard is not None:
            ids = select_shard(ids, check_shard(shard))

        def walk(aid: str) -> AsyncGenerator[TradePage, None]:
            # The workers already overlap requests: no prefetch.
            return self._walk(
                aid, side=side, market_id=market_id, page_size=page_size, cursor=starts.get(aid)
            )

        if ids:
            walk(ids[0])  # validates the filters now; a walk sends nothing until iterated
        return fan_out(
            ids,
            walk,
            items=_page_data,
            pair=AccountTrade,
            checkpoint=_page_cursor,
            start=starts.get,
            concurrency=concurrency,
            on_error=on_error,
        )

    def watch_trades(
        self,
        account_ids: Iterable[str],
        *,
        interval: float = DEFAULT_WATCH_INTERVAL,
        since: Mapping[str, Watermark] | None = None,
        concurrency: int = DEFAULT_WATCH_CONCURRENCY,
        page_size: int | None = None,
        queue_size: int = 1000,
        process_exception: ProcessException | None = None,
        shard: Shard | None = None,
        store: CheckpointStore | None = None,
        key: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
    ) -> TradeWatch:
        """Watch many accounts for new fills; each fill is yielded exactly once, as it appears.

        ``async with client.partner.accounts.watch_trades(ids) as watch: async for t in watch:``
        yields :class:`AccountTrade` items (``account_id``, ``trade``; they unpack
        as a pair). Each account's feed is polled newest first and read down to
        the newest fill already seen; the fills found are yielded oldest first.
        Polls are spread over the client's shared rate budget, one page per turn
        in due-time order, so a busy account cannot starve the rest, and a 429
        only delays the account it hit.

        Fills are yielded oldest first, so a walk holds an account's new fills
        in memory until it reaches the watermark. To import a long history,
        page it with :meth:`trades` or :meth:`trades_many` and start the watch
        from its newest fill (``Watermark.of(trade)``).

        Args:
            account_ids: distinct account ids (thousands are fine).
            interval: seconds between polls of one account (longer when the
                rate budget cannot serve every account that often).
            since: saved :attr:`TradeWatch.watermarks`: account id → the newest
                fill already handled (``Watermark.beginning()`` for "every fill
                is new"). An account not in it starts at its newest fill when
                first polled.
            concurrency: requests in flight at once.
            page_size: fills per page when catching up on a backlog (1..500;
                ``None``: 500); a routine poll asks for about twice the fills the
                account had last time.
            queue_size: fills buffered for a slow consumer before polling pauses.
            process_exception: decides what a failed poll does: ``None`` delays
                that account (with backoff) and polls it again, an exception
                ends the watch with it. The default waits out exactly what
                ``is_transient`` names (transport errors, 408/425/429/5xx).
            shard: ``(i, n)``: this watcher's share of the accounts (a stable hash
                of the id). Without a store it watches only that share; with one
                it prefers that share and stands by for the others (below).
            store: a :class:`CheckpointStore` shared by the watchers (SQLite for
                one machine, Redis for many). Each account is then polled by the
                one watcher holding its lease, and its watermark is saved there
                (under ``<key>:account:<id>``) as fills are acknowledged: a fill
                is acknowledged when you ask for the next one, or leave the
                ``async with`` normally. A watcher that takes an account over
                (its holder died: after ``lease_ttl``) starts after the last
                acknowledged fill, so every fill is acknowledged exactly once
                across the watchers; the fill a dead watcher had in hand, not
                acknowledged, is handed over again. With ``shard``, a watcher
                takes another shard's accounts only while that shard has no live
                watcher, and hands them back when it has again. ``since`` then
                only says where accounts with nothing saved start.
            key: the watch's name in ``store`` (required with it); watchers
                sharing accounts use the same key.
            lease_ttl: seconds an account's lease lasts (at least 1); renewed
                every third of it while the watch runs, released when it ends.

        Returns:
            The watch: an async iterator and async context manager with
            ``watermarks`` (what to save), ``owned`` and ``stats``. Iterate it
            only inside ``async with``.

        Raises:
            InvalidArgumentError: a bad or duplicate id or option (at once).
            While iterating: ClientClosedError outside ``async with``; the error
            that ended the watch (AuthenticationError, PermissionDeniedError,
            NotFoundError, ValidationError for a refusal, DecodeError for an
            unreadable page, PaginationError when the server repeats a cursor).

        Cancellation: leaving the ``async with`` or cancelling the consumer
        cancels and awaits every polling task.
        """
        walk_limit = page_limit(page_size, MAX_PAGE_SIZE)  # validated now

        def walk(account_id: str, first_page_size: int) -> AsyncGenerator[TradePage, None]:
            return self._walk(
                account_id, page_size=int(walk_limit), first_page_size=first_page_size
            )

        return TradeWatch(
            self._r.clock,
            walk,
            account_ids,
            interval=interval,
            since=since,
            concurrency=concurrency,
            page_size=int(walk_limit),
            queue_size=queue_size,
            process_exception=process_exception,
            shard=shard,
            store=store,
            key=key,
            lease_ttl=lease_ttl,
        )

    def monitor(
        self,
        account_ids: Iterable[str],
        *,
        rules: RuleSet | None = None,
        close_on_breach: bool = False,
        state: MonitorState | None = None,
        shard: tuple[int, int] | None = None,
        store: CheckpointStore | None = None,
        name: str = "monitor",
        budget: float | None = None,
        staleness: float | None = None,
        fill_interval: float | None = None,
        min_interval: float = 1.0,
        concurrency: int = DEFAULT_MONITOR_CONCURRENCY,
        queue_size: int = 1000,
        checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        process_exception: ProcessException | None = None,
    ) -> FleetMonitor:
        """Judge many accounts live against their challenge rules, inside the rate budget.

        ``async with client.partner.accounts.monitor(ids) as monitor: async for event
        in monitor:`` yields :class:`MonitorEvent` s (``account_id``, ``kind``, the
        ``verdict`` after it): ``"sample"`` for each account state read, ``"fill"``
        for each new fill, ``"warning"`` when a limit becomes at least
        ``warn_at_pct`` used, ``"breach"`` and ``"passed"`` when an account is
        decided, ``"closed"`` when it is closed, ``"error"`` when one account cannot
        be judged (the others still are), ``"restarted"`` when a decided account was
        reset. Each account is judged by an
        :class:`Evaluator` from its stored ``rules`` (``RuleSet.from_wire``) unless
        ``rules`` is given, from its starting balance, and from when it opened:
        ``metadata["opened_at"]`` (ISO 8601; its fills since then are read first)
        or else the monitor's first read of it, on the server's clock.

        Samples (``accounts.get``) go where the risk is: an account whose headroom
        to a limit is small for how fast its equity moves is read more often than
        a quiet one, none goes longer than ``staleness`` without a read, and each
        is read once right after its day boundary (its daily-loss reference). The
        trade feed of every account is polled every ``fill_interval``. Every
        request goes through the client's shared rate limiter; README, "Watching
        the fleet", has the details.

        Args:
            account_ids: distinct account ids (thousands are fine).
            rules: judge every account by this rule set instead of its stored rules.
            close_on_breach: close a breached account at once (draining 409
                ``ORDERS_NOT_CANCELLED``) and yield ``"closed"``.
            state: a saved :attr:`FleetMonitor.state`: accounts in it continue with
                their high-water marks, day references, trading days and fill
                watermarks (``rules`` and changed stored rules apply; a decided
                account is read once more in case it was reset); the others start
                afresh.
            shard: ``(i, n)``: watch only the accounts worker ``i`` of ``n`` owns
                (a stable hash of the id); run ``n`` workers with the same ``n``.
            store: a :class:`CheckpointStore` holding this shard's checkpoint under
                ``name`` (``"<name>:shard-<i>-of-<n>"`` with a shard): loaded when the
                monitor starts, saved every ``checkpoint_interval`` seconds and when
                it ends, written under a lease on that key, so a second worker on
                the same shard waits as a standby until the first one leaves or
                its lease runs out (``lease_ttl``). Not with ``state``.
            name: the store key of this fleet's checkpoint.
            budget: requests per second the monitor spends, samples and trade-feed
                polls together. Default: 80% of the client's per-second budget (40/s
                on the partner's 50/s), divided by ``n`` with a shard. Above the
                client's rate limit: refused.
            staleness: the longest an account may go without a sample, in seconds.
                Default: twice the time one read of every account takes at the
                sample rate, at least 60 s.
            fill_interval: seconds between two polls of one account's trade feed.
                Default: the feed gets 20% of the budget (at least 5 s).
            min_interval: the shortest time between two reads of one account.
            concurrency: account reads in flight at once.
            queue_size: inputs (samples, fills) waiting for the consumer before
                the monitor's requests pause.
            checkpoint_interval, lease_ttl: with a ``store`` (seconds).
            process_exception: decides what a failed read, poll or close does:
                ``None`` tries again later (with backoff), an exception ends the
                monitor with it. The default tries again after what
                ``is_transient`` names; a close still finding open orders
                (``OrdersNotCancelledError``) is always tried again.

        Returns:
            The monitor: an async iterator and async context manager with
            ``state`` (what to save), ``stats`` (start-up progress: ``started`` of
            ``accounts``, ``ready``) and the budget it settled on (``budget``,
            ``staleness``, ``fill_interval``). Iterate it only inside ``async with``.

        Raises:
            InvalidArgumentError: a bad or duplicate id or option, ``state`` with
                ``store``, or a budget that cannot read every account within
                ``staleness`` (the message says what would) — at once.
            While iterating: ClientClosedError outside ``async with``; the error
            that ended the monitor (AuthenticationError, PermissionDeniedError,
            DecodeError, LeaseLostError when another worker took the shard over,
            a network error when no read ever succeeded for 60 s). An unknown
            account, stored rules that are not a rule set or another permanent
            4xx on one account is an ``"error"`` event instead.

        Cancellation: leaving the ``async with`` or cancelling the consumer cancels
        and awaits every task; with a ``store`` the last checkpoint is saved and
        the lease given up.
        """

        def walk(account_id: str, first_page_size: int) -> AsyncGenerator[TradePage, None]:
            return self._walk(account_id, first_page_size=first_page_size)

        return FleetMonitor(
            self._r.clock,
            get=self.get,
            close=self.close,
            walk=walk,
            account_ids=account_ids,
            client_rate=client_rate(getattr(self._r.limiter, "limit", None)),
            rules=rules,
            close_on_breach=close_on_breach,
            state=state,
            shard=shard,
            store=store,
            name=name,
            budget=budget,
            staleness=staleness,
            fill_interval=fill_interval,
            min_interval=min_interval,
            concurrency=concurrency,
            queue_size=queue_size,
            checkpoint_interval=checkpoint_interval,
            lease_ttl=lease_ttl,
            process_exception=process_exception,
        )

    async def close(self, account_id: str) -> AccountState:
        """Close (archive) the account and freeze its wallet. Idempotent.

        Open orders are cancelled first; while the server answers 409
        ORDERS_NOT_CANCELLED the close is repeated to drain them.

        Raises:
            OrdersNotCancelledError: orders remained after the drain budget.
        """
        aid = path_id("account_id", account_id)
        return await self._r.request(
            AccountState, "POST", f"/v1/partner/accounts/{aid}/close", idempotent=True, drain=True
        )

    async def reset(self, account_id: str) -> AccountState:
        """Restart the account at its starting balance (same ids, history kept).

        A completed reset resets again, so a reset is repeated only on the 409
        drain, a 429, or a failure before the request left.

        Raises:
            OrdersNotCancelledError: orders remained after the drain budget.
        """
        aid = path_id("account_id", account_id)
        return await self._r.request(
            AccountState, "POST", f"/v1/partner/accounts/{aid}/reset", idempotent=False, drain=True
        )

    async def export(
        self,
        account_ids: Iterable[str],
        out_dir: str | PathLike[str],
        *,
        format: ExportFormat = "parquet",
        side: Side | str | None = None,
        market_id: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        part_rows: int = DEFAULT_PART_ROWS,
        concurrency: int = DEFAULT_FAN_OUT_CONCURRENCY,
        on_error: OnError = "continue",
        progress: ProgressCallback | None = None,
        shard: Shard | None = None,
        store: CheckpointStore | None = None,
        key: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
    ) -> ExportSummary:
        """Write every fill of the accounts into ``out_dir``: resumable, then incremental.

        ``out_dir`` receives part files (``part-00000001.parquet`` ..., each at
        most ``part_rows`` fills, readable together with
        ``pyarrow.dataset.dataset(out_dir, format="parquet")``) and one
        ``_manifest.json`` recording each account's position. Run the same call
        again after a crash (``kill -9`` included) and it continues where it
        stopped; run it later and it adds only the fills that are new since
        (down to each account's watermark, fills sharing its timestamp included).
        Every fill ends up exactly once. Schema, layout and guarantees: README,
        "Exporting fills".

        Args:
            account_ids: distinct account ids. Accounts of earlier calls that are
                not named are left as they are.
            out_dir: the directory (created if missing). It must always be used
                with the same ``format``, ``side`` and ``market_id``.
            format: ``"parquet"`` (needs ``pip install "polysim-async[parquet]"``),
                ``"csv"`` or ``"ndjson"``.
            side, market_id: export only these fills (as for :meth:`trade_pages`).
            page_size: fills per request (1..500).
            part_rows: most fills in one part (at least ``page_size``); about
                200 bytes each stay in memory until their part is written.
            concurrency: accounts fetched at once, on the client's shared rate budget.
            on_error: ``"continue"``: an account that fails (after the usual
                retries) is reported at the end, the others are exported.
                ``"raise"``: the first failure stops the export (what was fetched
                is still written).
            progress: called with an :class:`ExportProgress` after every page and
                part; an exception it raises stops the export.
            shard: ``(i, n)``: export only the accounts of shard ``i`` of ``n`` (a
                stable hash of the id): ``n`` workers given the same ids and each
                its own ``out_dir`` split the fleet without overlap.
            store: a :class:`CheckpointStore` to keep the manifest in (under
                ``key``) instead of ``out_dir/_manifest.json``, under a lease on
                ``key`` renewed while the export runs, every write fenced by it:
                two workers never run one export at once, and a run that lost its
                lease stops (``LeaseLostError``) without overwriting its
                successor's manifest. The part files stay in ``out_dir``: a run on
                another machine needs the same directory (shared storage).
            key: the export's name in ``store`` (required with it).
            lease_ttl: seconds the lease lasts (at least 1); renewed every third of it.

        Returns:
            An :class:`ExportSummary` of what this call wrote.

        Raises:
            InvalidArgumentError: a bad argument, before anything is touched.
            MissingDependencyError: Parquet without pyarrow installed.
            ExportDirectoryError: ``out_dir`` (or, with a store, ``key``) is in use
                by another export, holds one with other parameters, or lost a part
                file it lists.
            StoreUnavailableError: the store could not be reached.
            LeaseLostError: the lease was lost meanwhile (taken over after this
                process could not renew it); what was recorded stays valid.
            ExportError: accounts failed; ``failures`` names them, ``summary`` says
                what was written. Running again resumes them.
            OSError: writing to ``out_dir`` failed.

        Cancellation: stops fetching at once. A part being written is finished and
        recorded first, so nothing writes to ``out_dir`` after this returns;
        fills fetched but not yet in a part are fetched again by the next run.
        """
        return await run_export(
            self,
            self._r,
            account_ids,
            out_dir,
            format=format,
            side=side,
            market_id=market_id,
            page_size=page_size,
            part_rows=part_rows,
            concurrency=concurrency,
            on_error=on_error,
            progress=progress,
            shard=shard,
            checkpoints=store,
            key=key,
            lease_ttl=lease_ttl,
        )


class PartnerAPI:
    """``client.partner``: the nine partner endpoints."""

    def __init__(self, requester: Requester) -> None:
        self.users = PartnerUsers(requester)
        self.accounts = PartnerAccounts(requester)
