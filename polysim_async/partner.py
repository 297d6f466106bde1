"""The partner API (``/v1/partner/*``, tenant key): ``client.partner.users`` and ``.accounts``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

import msgspec

from ._codec import decode, encode_rules
from ._config import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from ._errors import InvalidArgumentError
from ._pagination import walk_cursor
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
    return Rules(**{k: to_money(f"rules.{k}", v) for k, v in mapping.items() if v is not None})


async def _flatten(pages: AsyncIterator[TradePage]) -> AsyncIterator[Trade]:
    async for page in pages:
        for trade in page.data:
            yield trade


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
        user = decode(PartnerUser, response.content, status=response.status)
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
        return decode(LoginLink, response.content, status=response.status)


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
    ) -> AsyncIterator[TradePage]:
        """Iterate over the account's fill feed page by page, newest first.

        Pass a saved ``next_cursor`` as ``cursor`` (with the same filters) to
        resume. Nothing is held open between pages, so ``break`` is safe; use
        ``contextlib.aclosing`` for deterministic cleanup of the generator.

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

        return walk_cursor(fetch, lambda page: page.next_cursor, cursor)

    def trades(
        self,
        account_id: str,
        *,
        side: Side | str | None = None,
        market_id: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> AsyncIterator[Trade]:
        """Iterate over every fill of the account, newest first, across pages.

        Same arguments and errors as :meth:`trade_pages`.
        """
        pages = self.trade_pages(
            account_id, side=side, market_id=market_id, page_size=page_size, cursor=cursor
        )
        return _flatten(pages)

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


class PartnerAPI:
    """``client.partner``: the nine partner endpoints."""

    def __init__(self, requester: Requester) -> None:
        self.users = PartnerUsers(requester)
        self.accounts = PartnerAccounts(requester)
