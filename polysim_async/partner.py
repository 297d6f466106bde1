"""The partner API (``/v1/partner/*``, tenant key): ``client.partner.users`` and ``.accounts``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from decimal import Decimal
from os import PathLike
from typing import Any

import msgspec

from ._codec import decode, encode_rules
from ._config import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from ._errors import InvalidArgumentError
from ._fanout import DEFAULT_FAN_OUT_CONCURRENCY, OnError, fan_out
from ._pagination import flatten, walk_cursor, walk_cursor_prefetch
from ._requester import Requester
from ._validation import (
    check_enum,
    check_int,
    check_mapping,
    check_str,
    check_url,
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
from .models.streams import Watermark

__all__ = ["PartnerAPI", "PartnerAccounts", "PartnerUsers"]

_RULE_KEYS = frozenset(Rules.__struct_fields__)


def _rules(value: Rules | Mapping[str, Any] | None) -> Rules | None:
    if value is None or isinstance(value, Rules):
        return value
    mapping = check_mapping("rules", value) or {}
    unknown = set(mapping) - _RULE_KEYS
    if unknown:
        raise InvalidArgumentError(
            f"rules has unknown keys {sorted(unknown)}; known: {sorted(_RULE_KEYS)}"
        )
    values = {
        k: to_money(f"rules.{k}", v, positive=False) for k, v in mapping.items() if v is not None
    }
    for key, amount in values.items():
        if amount < 0:  # zero is a valid rule (e.g. no drawdown allowed)
            raise InvalidArgumentError(f"rules.{key} must not be negative, got {mapping[key]!r}")
    return Rules(**values)


def _page_data(page: TradePage) -> list[Trade]:
    return page.data


def _page_cursor(page: TradePage) -> str | None:
    return page.next_cursor


class PartnerUsers:
    """Traders of the tenant: register, get, send a login link."""

    def __init__(self, requester: Requester) -> None:
        self._r = requester

    async def register(
        self, external_id: str, email: str, metadata: Mapping[str, Any] | None = None
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
        user = decode(
            PartnerUser,
            response.content,
            status=response.status,
            request_id=response.request_id,
        )
        if response.status == 201 and not user.created:
            user = msgspec.structs.replace(user, created=True)
        return user

    async def get(self, user_id: int) -> PartnerUser:
        """Return the trader ``user_id`` of this tenant.

        Raises:
            NotFoundError: unknown, or mapped to another tenant.
        """
        uid = check_int("user_id", user_id, low=1)
        return await self._r.request(PartnerUser, "GET", f"/v1/partner/users/{uid}")

    async def send_login_link(self, user_id: int, redirect_url: str | None = None) -> LoginLink:
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
        return decode(
            LoginLink, response.content, status=response.status, request_id=response.request_id
        )


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
        rules: Rules | Mapping[str, Any] | None = None,
    ) -> PartnerAccount:
        """Create an account funded to ``starting_balance``.

        Whether the server deduplicates on the account ``external_id`` is not
        documented, so a create is not repeated once it may have reached the server.

        Raises:
            InvalidArgumentError: bad ``stage``, a non-positive, float or
                non-decimal ``starting_balance``, unknown ``rules`` keys.
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
        rules: Rules | Mapping[str, Any] | None = None,
    ) -> AccountState:
        """Change the given fields of an account; the others stay as they are.

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
        page_size: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        prefetch: bool = True,
    ) -> AsyncIterator[TradePage]:
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

        Raises:
            InvalidArgumentError: bad filters or ``page_size`` outside 1..500,
                raised by this call before anything is sent.
            PaginationError: the server repeated a cursor (raised while iterating).
        """
        aid = path_id("account_id", account_id)
        limit = check_int("page_size", page_size, low=1, high=MAX_PAGE_SIZE)
        params: dict[str, str] = {"limit": str(limit)}
        if side is not None:
            params["side"] = check_enum("side", side, Side).value
        if market_id is not None:
            params["market_id"] = check_str("market_id", market_id, max_len=256)
        if cursor is not None:
            check_str("cursor", cursor, max_len=4096)
        path = f"/v1/partner/accounts/{aid}/trades"

        async def fetch(cur: str | None) -> TradePage:
            query = params if cur is None else {**params, "cursor": cur}
            return await self._r.request(TradePage, "GET", path, params=query)

        walker = walk_cursor_prefetch if prefetch else walk_cursor
        return walker(fetch, _page_cursor, cursor)

    def trades(
        self,
        account_id: str,
        *,
        side: Side | str | None = None,
        market_id: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        prefetch: bool = True,
    ) -> AsyncIterator[Trade]:
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
        page_size: int = DEFAULT_PAGE_SIZE,
        cursors: Mapping[str, str | None] | None = None,
        on_error: OnError = "raise",
    ) -> AsyncIterator[tuple[str, Trade]]:
        """Pull the fills of many accounts at once, as ``(account_id, trade)`` pairs.

        ``concurrency`` accounts are walked at a time, each newest first; pairs of
        different accounts interleave. Every request goes through the client's
        shared rate limiter, so the budget is kept busy but never exceeded.

        Args:
            account_ids: distinct account ids.
            concurrency: accounts in progress at once.
            side, market_id, page_size: as for :meth:`trade_pages`, for every account.
            cursors: account id → cursor to resume from (e.g. ``FanOutError.resume_cursors``).
            on_error: ``"raise"``: the first account that fails (after the usual
                retries) cancels the rest and raises. ``"continue"``: every other
                account is pulled to the end first, then the failures are raised.

        Returns:
            An async iterator of ``(account_id, Trade)``.

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

            async with contextlib.aclosing(accounts.trades_many(ids)) as pairs:
                async for account_id, trade in pairs:
                    ...

        Leaving the ``async with`` (normally, by ``break``, an error or
        cancellation) cancels and awaits every worker; nothing is left running.
        """
        if isinstance(account_ids, (str, bytes)):
            raise InvalidArgumentError("account_ids must be an iterable of ids, not one string")
        ids = list(account_ids)
        for aid in ids:
            path_id("account_id", aid)
        if len(set(ids)) != len(ids):
            raise InvalidArgumentError("account_ids contains duplicates")
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

        def walk(aid: str) -> AsyncIterator[TradePage]:
            return self.trade_pages(
                aid,
                side=side,
                market_id=market_id,
                page_size=page_size,
                cursor=starts.get(aid),
                prefetch=False,  # the workers already overlap requests
            )

        if ids:
            walk(ids[0])  # validates the filters now; a walk sends nothing until iterated
        return fan_out(
            ids,
            walk,
            items=_page_data,
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
        page_size: int = MAX_PAGE_SIZE,
        queue_size: int = 1000,
    ) -> TradeWatch:
        """Watch many accounts for new fills; each fill is yielded exactly once, as it appears.

        ``async with client.partner.accounts.watch_trades(ids) as watch: async for t in watch:``
        yields :class:`AccountTrade` items. Each account's feed is polled newest
        first and read down to the newest fill already seen; the fills found are
        yielded oldest first. Polls are spread over the client's shared rate
        budget, one page per turn in due-time order, so a busy account cannot
        starve the rest, and a 429 only delays the account it hit.

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
            page_size: fills per page when catching up on a backlog (1..500);
                a routine poll asks for about twice the fills the account had last time.
            queue_size: fills buffered for a slow consumer before polling pauses.

        Returns:
            The watch: an async iterator and async context manager with
            ``watermarks`` (what to save) and ``stats``.

        Raises:
            InvalidArgumentError: a bad or duplicate id or option (at once).
            While iterating: AuthenticationError, PermissionDeniedError,
            NotFoundError or ValidationError for a permanent refusal, which ends
            the watch; transient failures (429, 5xx, network) are retried quietly.

        Cancellation: leaving the ``async with`` or cancelling the consumer
        cancels and awaits every polling task.
        """
        return TradeWatch(
            self._r,
            account_ids,
            interval=interval,
            since=since,
            concurrency=concurrency,
            page_size=page_size,
            queue_size=queue_size,
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

        Returns:
            An :class:`ExportSummary` of what this call wrote.

        Raises:
            InvalidArgumentError: a bad argument, before anything is touched.
            MissingDependencyError: Parquet without pyarrow installed.
            ExportDirectoryError: ``out_dir`` is in use by another export, holds one
                with other parameters, or lost a part file it lists.
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
        )


class PartnerAPI:
    """``client.partner``: the nine partner endpoints."""

    def __init__(self, requester: Requester) -> None:
        self.users = PartnerUsers(requester)
        self.accounts = PartnerAccounts(requester)
