"""Config objects validate on construction; key and base URL resolve in the documented order."""

from __future__ import annotations

import dataclasses
import math

import pytest

import polysim_async as ps
from polysim_async._config import mask_key, resolve_api_key, resolve_base_url

from ._helpers import SECRET


class TestTimeout:
    def test_defaults_and_immutability(self) -> None:
        t = ps.Timeout()
        assert (t.connect, t.read, t.total) == (5.0, 30.0, 30.0)
        assert t == ps.DEFAULT_TIMEOUT
        with pytest.raises(dataclasses.FrozenInstanceError):
            t.total = 1.0  # type: ignore[misc]

    def test_none_disables_a_timeout(self) -> None:
        assert ps.Timeout(connect=None, read=None, total=None).total is None

    @pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, True, "5"])
    @pytest.mark.parametrize("name", ["connect", "read", "total"])
    def test_bad_values_are_refused(self, name: str, bad: object) -> None:
        with pytest.raises(ps.InvalidArgumentError, match=name) as info:
            ps.Timeout(**{name: bad})  # type: ignore[arg-type]
        assert isinstance(info.value, ValueError)


class TestRateLimit:
    def test_defaults_are_the_partner_budget(self) -> None:
        assert ps.RateLimit(per_second=50, per_minute=3000) == ps.DEFAULT_RATE_LIMIT

    def test_a_window_can_be_unlimited(self) -> None:
        assert ps.RateLimit(per_second=None, per_minute=10).per_second is None

    @pytest.mark.parametrize("bad", [0, -5, 1.5, True, "50"])
    def test_bad_values_are_refused(self, bad: object) -> None:
        with pytest.raises(ps.InvalidArgumentError, match="per_second"):
            ps.RateLimit(per_second=bad)  # type: ignore[arg-type]
        with pytest.raises(ps.InvalidArgumentError, match="per_minute"):
            ps.RateLimit(per_minute=bad)  # type: ignore[arg-type]


class TestRetryPolicy:
    def test_defaults_are_the_named_constants(self) -> None:
        p = ps.RetryPolicy()
        assert p.max_retries == ps.DEFAULT_MAX_RETRIES == 3
        assert p.max_retry_after == ps.DEFAULT_MAX_RETRY_AFTER == 60.0
        assert p.drain_retries == ps.DEFAULT_DRAIN_RETRIES

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_retries": -1},
            {"max_retries": True},
            {"max_retries": 1.0},
            {"drain_retries": -1},
            {"max_retry_after": 0},
            {"backoff_base": -0.1},
            {"backoff_max": math.inf},
            {"drain_wait": None},
        ],
    )
    def test_bad_values_are_refused(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ps.InvalidArgumentError):
            ps.RetryPolicy(**kwargs)  # type: ignore[arg-type]

    def test_zero_retries_is_allowed(self) -> None:
        assert ps.RetryPolicy(max_retries=0, drain_retries=0).max_retries == 0


class TestResolveApiKey:
    def test_argument_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("POLYSIM_TENANT_KEY", "tenant-env-key")
        monkeypatch.setenv("POLYSIM_API_KEY", "api-env-key")
        assert resolve_api_key("arg-key-123") == "arg-key-123"

    def test_tenant_env_before_api_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("POLYSIM_TENANT_KEY", "tenant-env-key")
        monkeypatch.setenv("POLYSIM_API_KEY", "api-env-key")
        assert resolve_api_key(None) == "tenant-env-key"

    def test_api_env_last(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("POLYSIM_API_KEY", "api-env-key")
        assert resolve_api_key(None) == "api-env-key"

    def test_nothing_anywhere(self) -> None:
        assert resolve_api_key(None) is None

    def test_surrounding_whitespace_is_trimmed(self) -> None:
        assert resolve_api_key("  key-123  ") == "key-123"

    @pytest.mark.parametrize("bad", ["   ", b"bytes-key", 12345])
    def test_blank_or_non_string_keys_are_refused(self, bad: object) -> None:
        with pytest.raises(ps.InvalidArgumentError):
            resolve_api_key(bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [SECRET + "\r\nX-Evil: 1", SECRET + "\x00", "sk live key"])
    def test_keys_that_cannot_be_a_header_value_are_refused_without_echoing_them(
        self, bad: str
    ) -> None:
        # Otherwise aiohttp raises a bare ValueError on the first request.
        with pytest.raises(ps.InvalidArgumentError) as info:
            resolve_api_key(bad)
        assert SECRET not in str(info.value)
        assert "live" not in str(info.value)


class TestResolveBaseUrl:
    def test_default_is_production(self) -> None:
        assert resolve_base_url(None, allow_insecure=False) == "https://api.polysimulator.com"
        assert ps.DEFAULT_BASE_URL == "https://api.polysimulator.com"

    def test_argument_then_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("POLYSIM_BASE_URL", "https://staging.example.com/")
        assert resolve_base_url(None, allow_insecure=False) == "https://staging.example.com"
        assert resolve_base_url("https://arg.example.com", allow_insecure=False) == (
            "https://arg.example.com"
        )

    def test_trailing_slash_is_dropped_and_a_path_prefix_kept(self) -> None:
        assert resolve_base_url("https://h.example/api/", allow_insecure=False) == (
            "https://h.example/api"
        )

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://localhost:1234",
            "http://[::1]:9000",
        ],
    )
    def test_plain_http_is_allowed_to_loopback(self, url: str) -> None:
        assert resolve_base_url(url, allow_insecure=False) == url

    @pytest.mark.parametrize(
        "url", ["http://api.polysimulator.com", "http://10.0.0.1", "http://127.0.0.1.evil.example"]
    )
    def test_plain_http_elsewhere_is_refused(self, url: str) -> None:
        with pytest.raises(ps.InvalidArgumentError, match="allow_insecure"):
            resolve_base_url(url, allow_insecure=False)
        assert resolve_base_url(url, allow_insecure=True) == url

    @pytest.mark.parametrize(
        "url", ["ftp://h.example", "api.polysimulator.com", "https://", "https://h.example/?a=1"]
    )
    def test_malformed_urls_are_refused(self, url: str) -> None:
        with pytest.raises(ps.InvalidArgumentError):
            resolve_base_url(url, allow_insecure=True)

    @pytest.mark.parametrize(
        "url",
        [
            "http://gw:SECRETPW@127.0.0.1:9",
            "https://SECRETPW@h.example/api",
            "https://u:SECRETPW@h.example/v1",
            "ftp://u:SECRETPW@h.example",
        ],
    )
    def test_credentials_in_the_url_are_refused_without_echoing_them(self, url: str) -> None:
        # Otherwise the password is quoted in every ConnectError and in repr(client).
        with pytest.raises(ps.InvalidArgumentError, match="credentials") as info:
            resolve_base_url(url, allow_insecure=True)
        assert "SECRETPW" not in str(info.value)


def test_mask_key_reveals_at_most_four_characters() -> None:
    masked = mask_key(SECRET)
    assert SECRET not in masked
    assert SECRET[4:8] not in masked
    assert mask_key("short") == "…"
    assert mask_key(None) == "None"


@pytest.mark.parametrize("attempt", [0, 5, 1_025, 100_000])
def test_backoff_never_overflows_and_stays_within_its_cap(attempt: int) -> None:
    # A close retried through a 409 drain for hours reaches thousands of attempts:
    # 2.0**1025 alone overflows a float.
    import random

    from polysim_async._config import backoff

    wait = backoff(1.0, 60.0, attempt, random.Random(attempt))
    assert 0 < wait <= 60.0
    if attempt >= 6:
        assert wait >= 30.0  # half the cap at least, once the cap is reached
