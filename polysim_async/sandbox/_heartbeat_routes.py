"""The dead-man's switch, ``POST /v1/heartbeats`` and its root alias ``POST /heartbeats``
(API.md O8, the heartbeats page).

Body ``{"interval_ms": 1000..60000, "client_label": "<= 64 chars" (default "")}``;
the answer is ``{"ok": true, "expires_at_ms": ...}`` on the sandbox's clock
(epoch milliseconds). Any key may beat (no ``trade`` permission needed). A body
the schema refuses gets ``422`` with FastAPI's ``{"detail": [...]}`` envelope, as
documented ("Pydantic validation envelope"), read the way Pydantic's lax mode
reads it: an integral number or a string of digits is an integer, extra keys are
ignored. Registrations and their lapses live in :mod:`._heartbeats` and
:meth:`._exchange.Exchange.catch_up`: a lapse cancels every pending order of
the account (every wallet, API.md O8), on the simulated clock (tests advance it) and, with a flowing
clock, as real time passes (the sandbox's timed-event loop).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ._errors import detail_response
from ._fields import HEARTBEAT
from ._heartbeats import MAX_INTERVAL_MS, MIN_INTERVAL_MS
from ._json import decode_body, json_response
from ._trader_routes import caller

__all__ = ["routes"]

routes = web.RouteTableDef()
LABEL_MAX = 64
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


def _error(kind: str, loc: list[Any], msg: str, given: Any, **ctx: Any) -> dict[str, Any]:
    item = {"type": kind, "loc": loc, "msg": msg, "input": given}
    if ctx:
        item["ctx"] = ctx
    return item


def _interval(data: dict[str, Any]) -> tuple[int | None, dict[str, Any] | None]:
    loc: list[Any] = ["body", "interval_ms"]
    if "interval_ms" not in data:
        return None, _error("missing", loc, "Field required", data)
    value = data["interval_ms"]
    number: int | None = None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None, _error("int_type", loc, "Input should be a valid integer", value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            return None, _error(
                "int_from_float",
                loc,
                "Input should be a valid integer, got a number with a fractional part",
                value,
            )
        number = int(value)
    else:
        text = value.strip()
        if _INTEGER.fullmatch(text) is None:
            return None, _error(
                "int_parsing",
                loc,
                "Input should be a valid integer, unable to parse string as an integer",
                value,
            )
        number = int(text)
    if number < MIN_INTERVAL_MS:
        return None, _error(
            "greater_than_equal",
            loc,
            f"Input should be greater than or equal to {MIN_INTERVAL_MS}",
            value,
            ge=MIN_INTERVAL_MS,
        )
    if number > MAX_INTERVAL_MS:
        return None, _error(
            "less_than_equal",
            loc,
            f"Input should be less than or equal to {MAX_INTERVAL_MS}",
            value,
            le=MAX_INTERVAL_MS,
        )
    return number, None


def _label(data: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    loc: list[Any] = ["body", "client_label"]
    value = data.get("client_label", "")
    if not isinstance(value, str):
        return None, _error("string_type", loc, "Input should be a valid string", value)
    if len(value) > LABEL_MAX:
        return None, _error(
            "string_too_long",
            loc,
            f"String should have at most {LABEL_MAX} characters",
            value,
            max_length=LABEL_MAX,
        )
    return value, None


def parse(raw: bytes) -> tuple[int, str] | list[dict[str, Any]]:
    """The body's ``(interval_ms, client_label)``, or the validation errors."""
    if not raw.strip():
        return [_error("missing", ["body"], "Field required", None)]
    try:
        data = decode_body(raw)
    except ValueError as exc:
        return [_error("json_invalid", ["body", 0], "JSON decode error", {}, error=str(exc))]
    if not isinstance(data, dict):
        return [
            _error(
                "model_attributes_type",
                ["body"],
                "Input should be a valid dictionary or object to extract fields from",
                data,
            )
        ]
    interval, bad_interval = _interval(data)
    label, bad_label = _label(data)
    errors = [e for e in (bad_interval, bad_label) if e is not None]
    if errors:
        return errors
    assert interval is not None and label is not None
    return interval, label


async def _beat(request: web.Request) -> web.Response:
    core, _, user = caller(request)
    parsed = parse(await request.read())
    if isinstance(parsed, list):
        return detail_response(parsed)
    interval, label = parsed
    reg = core.exchange.heartbeats.beat(user.user_id, label, interval, core.clock.now_us())
    core.wake.set()  # the next lapse may now come sooner than the event loop's wait
    return json_response(HEARTBEAT.make(ok=True, expires_at_ms=reg.expires_us // 1000))


@routes.post("/v1/heartbeats")
async def heartbeat(request: web.Request) -> web.Response:
    """Register or refresh the dead-man's switch."""
    return await _beat(request)


@routes.post("/heartbeats")
async def heartbeat_root(request: web.Request) -> web.Response:
    """The Polymarket-shape root alias of ``POST /v1/heartbeats``."""
    return await _beat(request)
