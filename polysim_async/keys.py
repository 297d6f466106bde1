"""Trader key services (``/v1/keys/*``, personal key): ``client.keys``."""

from __future__ import annotations

import msgspec

from ._errors import DecodeError
from ._requester import Requester
from .models.orders import WsToken

__all__ = ["KeysAPI"]


class _WsTokenWire(msgspec.Struct, kw_only=True, frozen=True):
    # The SDK looks for the token under these names, in this order (API.md §4.2).
    token: str | None = None
    ws_token: str | None = None
    access_token: str | None = None
    jwt: str | None = None
    expires_in: int = 60


class KeysAPI:
    """``client.keys``: WebSocket tokens for the trader key's owner."""

    def __init__(self, requester: Requester) -> None:
        self._r = requester

    async def ws_token(self) -> WsToken:
        """Mint a short-lived token for the WebSocket feeds (``POST /v1/keys/ws-token``).

        The token is valid for ``expires_in`` seconds (60 by default) and may be
        reused for several connects inside that window. Minting has no side
        effect, so it is retried like a read (429, 5xx, transport errors).

        Returns:
            The token and its lifetime in seconds.

        Raises:
            AuthenticationError: the key is missing, unknown or revoked (401).
            PermissionDeniedError: the key may not open WebSockets (403).
            RateLimitError: still rate limited after the retries.
            DecodeError: the answer carried no token.
            TransportError: no answer after the retries.

        Cancellation propagates unchanged.
        """
        response = await self._r.send("POST", "/v1/keys/ws-token", json={}, idempotent=True)
        error: DecodeError
        try:
            wire = self._r.decode(_WsTokenWire, response)
        except DecodeError as exc:
            # Without the body (it may hold a token) or a chain to the decoder's error.
            error = DecodeError(exc.message, status=exc.status, request_id=exc.request_id)
        else:
            token = wire.token or wire.ws_token or wire.access_token or wire.jwt
            if token:
                return WsToken(token=token, expires_in=wire.expires_in)
            error = DecodeError(
                "the ws-token answer carried no token",
                status=response.status,
                request_id=response.request_id,
            )
        raise error
