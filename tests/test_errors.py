"""The exception tree and from_response() on every documented error envelope (API.md §5)."""

from __future__ import annotations

import email.utils
import json
from typing import Any

import pytest
from multidict import CIMultiDict

import polysim_async as ps
from polysim_async._errors import from_response, parse_retry_after


def respond(
    status: int, body: Any = b"", headers: dict[str, str] | None = None, reason: str | None = None
) -> ps.APIStatusError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return from_response(status, CIMultiDict(headers or {}), raw, reason=reason)


class TestTree:
    @pytest.mark.parametrize(
        ("cls", "bases"),
        [
            (ps.InvalidArgumentError, (ps.UsageError, ValueError)),
            (ps.ClientClosedError, (ps.UsageError, RuntimeError)),
            (ps.PaginationError, (ps.UsageError, RuntimeError)),
            (ps.ConnectError, (ps.TransportError,)),
            (ps.NetworkError, (ps.TransportError,)),
            (ps.ConnectTimeoutError, (ps.PolySimTimeoutError, ps.TransportError, TimeoutError)),
            (ps.ReadTimeoutError, (ps.PolySimTimeoutError, TimeoutError)),
            (ps.DeadlineExceededError, (ps.PolySimTimeoutError, TimeoutError)),
            (ps.DecodeError, (ps.PolySimError, ValueError)),
            (ps.EdgeBlockedError, (ps.PermissionDeniedError, ps.APIStatusError)),
            (ps.OrdersNotCancelledError, (ps.ConflictError, ps.APIStatusError)),
            (ps.VenueUnavailableError, (ps.ServerError, ps.APIStatusError)),
        ],
    )
    def test_bases(self, cls: type[Exception], bases: tuple[type[Exception], ...]) -> None:
        assert issubclass(cls, ps.PolySimError)
        for base in bases:
            assert issubclass(cls, base), base

    def test_connect_failures_say_the_request_was_not_sent(self) -> None:
        assert ps.ConnectError("x").request_sent is False
        assert ps.ConnectTimeoutError("x").request_sent is False
        assert ps.NetworkError("x").request_sent is True
        assert ps.ReadTimeoutError("x").request_sent is True


class TestStatusClasses:
    @pytest.mark.parametrize(
        ("status", "cls"),
        [
            (400, ps.ValidationError),
            (422, ps.ValidationError),
            (401, ps.AuthenticationError),
            (403, ps.PermissionDeniedError),
            (404, ps.NotFoundError),
            (409, ps.ConflictError),
            (429, ps.RateLimitError),
            (500, ps.ServerError),
            (502, ps.ServerError),
            (503, ps.ServerError),
            (504, ps.ServerError),
            (599, ps.ServerError),
        ],
    )
    def test_status_picks_the_class(self, status: int, cls: type[ps.APIStatusError]) -> None:
        err = respond(status, {"error": "SOME_CODE", "message": "m"})
        assert type(err) is cls
        assert err.status == status

    @pytest.mark.parametrize("status", [402, 405, 418, 425])
    def test_statuses_without_a_class_use_the_base(self, status: int) -> None:
        assert type(respond(status)) is ps.APIStatusError

    def test_orders_not_cancelled(self) -> None:
        err = respond(409, {"error": "ORDERS_NOT_CANCELLED", "message": "3 orders remain"})
        assert type(err) is ps.OrdersNotCancelledError
        assert err.code == "ORDERS_NOT_CANCELLED"

    def test_orders_not_cancelled_from_the_header_alone(self) -> None:
        err = respond(
            409, {"error": "Some orders remain"}, {"X-Polysim-Code": "ORDERS_NOT_CANCELLED"}
        )
        assert type(err) is ps.OrdersNotCancelledError

    def test_other_409s_stay_plain_conflicts(self) -> None:
        assert type(respond(409, {"error": "DUPLICATE_CLIENT_ORDER_ID"})) is ps.ConflictError


class TestEnvelopes:
    def test_partner_two_field(self) -> None:
        err = respond(
            429,
            {"error": "RATE_LIMIT_EXCEEDED", "message": "Rate limit exceeded. Retry after 1s."},
            {"Retry-After": "1", "X-Request-Id": "req-1"},
        )
        assert isinstance(err, ps.RateLimitError)
        assert err.code == "RATE_LIMIT_EXCEEDED"
        assert err.message == "Rate limit exceeded. Retry after 1s."
        assert err.request_id == "req-1"
        assert err.retry_after == 1.0
        assert str(err) == (
            "429 RATE_LIMIT_EXCEEDED: Rate limit exceeded. Retry after 1s. (request_id=req-1)"
        )

    def test_pm_single_field_sentence_with_header_code(self) -> None:
        err = respond(
            403,
            {"error": "Your key lacks the trade permission."},
            {"X-Polysim-Code": " INSUFFICIENT_PERMISSION "},
        )
        assert isinstance(err, ps.PermissionDeniedError)
        assert err.code == "INSUFFICIENT_PERMISSION"
        assert err.message == "Your key lacks the trade permission."

    def test_pm_single_field_sentence_without_header(self) -> None:
        err = respond(404, {"error": "market not found"})
        assert isinstance(err, ps.NotFoundError)
        assert err.code is None
        assert err.message == "market not found"

    def test_verbose_envelope(self) -> None:
        err = respond(
            422,
            {
                "error": "VALIDATION_FAILED",
                "message": "limit must be <= 500",
                "details": {"field": "limit"},
                "request_id": "body-rid",
            },
            {"X-Polysim-Code": "VALIDATION_FAILED", "X-Request-Id": "hdr-rid"},
        )
        assert isinstance(err, ps.ValidationError)
        assert (err.code, err.message, err.request_id) == (
            "VALIDATION_FAILED",
            "limit must be <= 500",
            "hdr-rid",
        )

    def test_header_code_wins_over_body_code(self) -> None:
        err = respond(
            409,
            {"error": "TRADE_IN_PROGRESS", "message": "busy"},
            {"X-Polysim-Code": "LOCK_BUSY_RETRY"},
        )
        assert err.code == "LOCK_BUSY_RETRY"
        assert err.message == "busy"

    def test_blank_header_code_falls_back_to_the_body(self) -> None:
        assert respond(400, {"error": "STALE_QUOTE"}, {"X-Polysim-Code": "  "}).code == (
            "STALE_QUOTE"
        )

    def test_body_code_field_before_error(self) -> None:
        err = respond(400, {"code": "INVALID_QUANTITY", "error": "quantity must be > 0"})
        assert err.code == "INVALID_QUANTITY"
        assert err.message == "quantity must be > 0"

    def test_nested_error_object(self) -> None:
        err = respond(400, {"error": {"code": "PRICE_REQUIRED", "message": "price needed"}})
        assert (err.code, err.message) == ("PRICE_REQUIRED", "price needed")

    def test_fastapi_detail_list(self) -> None:
        detail = [{"loc": ["body", "ttl"], "msg": "too large", "type": "value_error"}]
        err = respond(422, {"detail": detail})
        assert isinstance(err, ps.ValidationError)
        assert err.code is None
        assert "too large" in err.message

    def test_fastapi_detail_string(self) -> None:
        assert respond(422, {"detail": "ttl out of range"}).message == "ttl out of range"

    def test_402_carve_out(self) -> None:
        err = respond(
            402,
            {
                "error": "UPGRADE_REQUIRED",
                "feature_key": "wallets.sandbox_baseline",
                "upgrade_url": "/pricing",
            },
            reason="Payment Required",
        )
        assert type(err) is ps.APIStatusError
        assert err.code == "UPGRADE_REQUIRED"
        assert err.message == "Payment Required"
        assert b"upgrade_url" in err.body

    def test_503_venue_unavailable_with_body_retry_after(self) -> None:
        err = respond(
            503, {"error": "VENUE_UNAVAILABLE", "message": "venue down", "retry_after": 60}
        )
        assert type(err) is ps.VenueUnavailableError
        assert err.retry_after == 60.0

    def test_retry_after_header_beats_the_body(self) -> None:
        err = respond(503, {"error": "VENUE_UNAVAILABLE", "retry_after": 60}, {"Retry-After": "7"})
        assert err.retry_after == 7.0

    def test_http_status_code(self) -> None:
        assert respond(400, {"error": "HTTP_400", "message": "bad"}).code == "HTTP_400"

    def test_edge_block_text(self) -> None:
        err = respond(403, b"error code: 1010", reason="Forbidden")
        assert type(err) is ps.EdgeBlockedError
        assert err.code == "EDGE_BLOCKED"
        assert "1010" in err.message

    def test_empty_body_uses_the_reason_phrase(self) -> None:
        err = respond(404, b"", {"X-Request-Id": "r-9"}, reason="Not Found")
        assert isinstance(err, ps.NotFoundError)
        assert (err.code, err.message, err.request_id) == (None, "Not Found", "r-9")

    def test_empty_body_without_a_reason(self) -> None:
        assert respond(504, b"").message == "Gateway Timeout"
        assert respond(599, b"").message == "HTTP 599"

    def test_html_body(self) -> None:
        html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
        err = respond(502, html, reason="Bad Gateway")
        assert type(err) is ps.ServerError
        assert (err.code, err.message) == (None, "Bad Gateway")
        assert err.body == html

    @pytest.mark.parametrize(
        "body", [b"[1, 2]", b'"just a string"', b"{not json", b"null", b'{"error": 5}']
    )
    def test_odd_bodies_never_break_parsing(self, body: bytes) -> None:
        err = respond(400, body, reason="Bad Request")
        assert isinstance(err, ps.ValidationError)
        assert err.message == "Bad Request"

    def test_a_retry_after_too_large_for_a_float_is_ignored(self) -> None:
        body = b'{"error":"RATE_LIMIT_EXCEEDED","message":"slow down","retry_after":' + b"9" * 400
        err = respond(429, body + b"}")
        assert type(err) is ps.RateLimitError
        assert (err.code, err.message, err.retry_after) == (
            "RATE_LIMIT_EXCEEDED",
            "slow down",
            None,
        )

    @pytest.mark.parametrize("number", [b"1e400", b"-1e400"])
    def test_an_out_of_range_float_keeps_code_and_message(self, number: bytes) -> None:
        err = respond(429, b'{"error":"X","message":"wait","retry_after":' + number + b"}")
        assert (err.code, err.message, err.retry_after) == ("X", "wait", None)

    @pytest.mark.parametrize("value", [float("nan"), -1, "5", True, [1]])
    def test_a_retry_after_that_is_not_seconds_is_ignored(self, value: Any) -> None:
        body = json.dumps({"error": "X", "retry_after": value}).encode()
        assert respond(429, body).retry_after is None

    def test_headers_stay_case_insensitive(self) -> None:
        err = respond(429, b"", {"Retry-After": "3", "X-Request-Id": "r"})
        assert err.headers["retry-after"] == "3"
        assert err.headers.get("x-request-id") == "r"

    def test_body_is_truncated(self) -> None:
        assert len(respond(500, b"x" * 10_000).body) == 2048

    def test_repr_names_the_fields(self) -> None:
        err = respond(404, {"error": "WALLET_NOT_FOUND", "message": "no"})
        assert repr(err) == (
            "NotFoundError(status=404, code='WALLET_NOT_FOUND', message='no', request_id=None)"
        )


class TestParseRetryAfter:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("5", 5.0),
            (" 2 ", 2.0),
            ("1.5", 1.5),
            ("0", 0.0),
            ("-3", 0.0),
            (None, None),
            ("", None),
            ("soon", None),
            ("nan", None),
            ("inf", None),
        ],
    )
    def test_seconds(self, value: str | None, expected: float | None) -> None:
        assert parse_retry_after(value) == expected

    def test_http_date(self) -> None:
        now = 1_800_000_000.0
        value = email.utils.formatdate(now + 30, usegmt=True)
        assert parse_retry_after(value, now=now) == 30.0

    def test_http_date_in_the_past_means_now(self) -> None:
        value = email.utils.formatdate(1_000_000_000, usegmt=True)
        assert parse_retry_after(value, now=1_800_000_000.0) == 0.0


def test_a_cdn_page_on_a_429_is_a_rate_limit_not_an_edge_block() -> None:
    from polysim_async._errors import from_response

    err = from_response(429, {"Retry-After": "2"}, b"error code: 1015")
    assert type(err).__name__ == "RateLimitError"
    assert err.retry_after == 2.0
    blocked = from_response(403, {}, b"error code: 1010")
    assert type(blocked).__name__ == "EdgeBlockedError"
