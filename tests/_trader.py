"""Payloads of the trader endpoints added for bots (from the trader docs) and request helpers."""

from __future__ import annotations

from typing import Any

from ._helpers import Routes, calls

CID = "0x" + "1a" * 32
CID2 = "0x" + "2b" * 32
YES = "71321234567890123456789012345678901234567890"
NO = "71321234567890123456789012345678901234567891"

MARKET: dict[str, Any] = {
    "condition_id": CID,
    "slug": "will-bitcoin-reach-100k-by-2026",
    "question": "Will Bitcoin reach $100K by end of 2026?",
    "outcomes": ["Yes", "No"],
    "active": True,
    "closed": False,
    "is_hot": True,
    "category": "crypto",
    "clob_token_ids": [YES, NO],
    "volume_24h": "125000.50",
    "volume_total": "8420115.75",
    "last_price": "0.65",
    "live_price": {
        "buy": "0.65",
        "sell": "0.35",
        "volume": "8420115.75",
        "outcomes": [
            {"label": "Yes", "price": "0.65", "token_id": YES},
            {"label": "No", "price": "0.35", "token_id": NO},
        ],
        "updated_at": "2026-02-06T12:00:45Z",
    },
    "some_future_field": {"ignored": True},
}

BOOK: dict[str, Any] = {
    "token_id": YES,
    "market": CID,
    "asset_id": YES,
    "hash": "0x9f4c",
    "bids": [
        {"price": "0.62", "size": "3000.0"},
        {"price": "0.63", "size": "1200.0"},
        {"price": "0.64", "size": "500.0"},
    ],
    "asks": [
        {"price": "0.68", "size": "2500.0"},
        {"price": "0.67", "size": "800.0"},
        {"price": "0.66", "size": "400.0"},
    ],
    "min_order_size": "5",
    "tick_size": "0.01",
    "neg_risk": False,
    "last_trade_price": "0.65",
    "mid": "0.65",
    "spread": "0.02",
    "timestamp": "1778995283697",
}

WALLET: dict[str, Any] = {
    "id": 7,
    "kind": "SANDBOX",
    "label": "experiments",
    "balance": "10000.00",
    "baseline": "10000.00",
    "status": "ACTIVE",
    "generation": 1,
    "parent_wallet_id": None,
    "competition_id": None,
    "created_at": "2026-02-06T12:00:00+00:00",
    "archived_at": None,
    "is_legacy": False,
}

TIERS: list[dict[str, Any]] = [
    {
        "tier": "free",
        "requests_per_second": 2,
        "requests_per_minute": 120,
        "max_ws_connections": 1,
        "max_batch_size": 1,
    },
    {
        "tier": "pro",
        "requests_per_second": 10,
        "requests_per_minute": 600,
        "max_ws_connections": 3,
        "max_batch_size": 5,
    },
    {
        "tier": "pro_plus",
        "requests_per_second": 30,
        "requests_per_minute": 1800,
        "max_ws_connections": 10,
        "max_batch_size": 10,
    },
    {
        "tier": "enterprise",
        "requests_per_second": 100,
        "requests_per_minute": 6000,
        "max_ws_connections": 50,
        "max_batch_size": 25,
    },
]

ME: dict[str, Any] = {
    "user_id": 1234,
    "balance": "9745.20",
    "currency": "USD",
    "key_count": 2,
    "tier": "pro",
    "permissions": ["read", "trade"],
    "auth_user_id": None,
    "email": "bot@example.com",
}


def sent(mock: Routes, path: str, method: str | None = None) -> list[dict[str, Any]]:
    """The kwargs of every recorded request to ``path`` (any query string)."""
    return [kw for _, u, kw in calls(mock, method) if u.split("?")[0].endswith(path)]


def params(mock: Routes, path: str) -> list[dict[str, str]]:
    """The query of every recorded request to ``path``, in order."""
    return [dict(kw.get("params") or {}) for kw in sent(mock, path)]
