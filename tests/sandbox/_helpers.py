"""Helpers shared by the sandbox contract tests."""

from __future__ import annotations

from typing import Any

import aiohttp

from polysim_async.sandbox import Sandbox


class FakeTime:
    """A rate-limit time source for ``Sandbox(rate_clock=...)``: moves only when told."""

    def __init__(self, wall: float = 1_780_000_000.0) -> None:
        self._now = 1000.0
        self._wall0 = wall

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._wall0 + self._now - 1000.0

    def advance(self, seconds: float) -> None:
        self._now += seconds


class Api:
    """Tiny helper: request a path on the sandbox and return (status, headers, JSON)."""

    def __init__(self, sb: Sandbox, http: aiohttp.ClientSession) -> None:
        self.sb = sb
        self.http = http

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any, Any]:
        hdrs = dict(headers or {})
        if key is not None:
            hdrs["X-API-Key"] = key
        async with self.http.request(method, self.sb.url + path, headers=hdrs, **kwargs) as r:
            raw = await r.read()
            try:
                body = await r.json(content_type=None) if raw else None
            except ValueError:
                body = raw
            return r.status, r.headers, body

    async def partner(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        kwargs.setdefault("key", self.sb.tenant_key)
        return await self.call(method, "/v1/partner" + path, **kwargs)

    async def trader(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        kwargs.setdefault("key", self.sb.api_key)
        return await self.call(method, "/v1" + path, **kwargs)

    async def new_account(
        self, external_id: str = "acc-1", *, user: str = "trader-1", balance: str = "10000.00"
    ) -> tuple[int, str]:
        status, _, u = await self.partner(
            "POST", "/users", json={"external_id": user, "email": f"{user}@example.com"}
        )
        assert status in (200, 201), u
        status, _, a = await self.partner(
            "POST",
            "/accounts",
            json={
                "user_id": u["user_id"],
                "external_id": external_id,
                "stage": "challenge",
                "starting_balance": balance,
            },
        )
        assert status in (200, 201), a
        return u["user_id"], a["account_id"]


def assert_error(status: int, headers: Any, body: Any, want_status: int, code: str) -> None:
    """Check the documented error envelope."""
    assert status == want_status, (status, body)
    assert set(body) == {"error", "message"}, body
    assert body["error"] == code, body
    assert headers["X-Polysim-Code"] == code
    assert headers["X-Request-Id"]
    assert "Traceback" not in body["message"]
