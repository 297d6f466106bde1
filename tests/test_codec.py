"""The shared encoder and cached decoders; msgspec errors become DecodeError."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

import polysim_async as ps
from polysim_async._codec import decode, decoder, encode, encode_rules
from polysim_async.models import CreateAccountRequest, PartnerUser, Rules, Stage


def test_decimals_are_encoded_as_exact_strings() -> None:
    assert encode({"amount": Decimal("10000.00"), "tiny": Decimal("0.1")}) == (
        b'{"amount":"10000.00","tiny":"0.1"}'
    )


def test_request_structs_omit_unset_fields() -> None:
    body = CreateAccountRequest(
        user_id=1, external_id="x", stage=Stage.DEMO, starting_balance=Decimal("5.50")
    )
    assert msgspec.json.decode(encode(body)) == {
        "user_id": 1,
        "external_id": "x",
        "stage": "demo",
        "starting_balance": "5.50",
    }


def test_rules_travel_as_exact_json_numbers() -> None:
    raw = encode_rules(Rules(profit_target_pct=Decimal("20"), max_drawdown_pct=Decimal("7.10")))
    assert raw is not None
    assert bytes(raw) == b'{"profit_target_pct":20,"max_drawdown_pct":7.10}'
    assert encode_rules(None) is None


def test_decoders_are_built_once_per_type() -> None:
    assert decoder(PartnerUser) is decoder(PartnerUser)


def test_decode_typed() -> None:
    user = decode(PartnerUser, b'{"user_id": 1, "external_id": "e", "email": "a@b.c"}')
    assert user == PartnerUser(user_id=1, external_id="e", email="a@b.c")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"user_id": "one", "external_id": "e", "email": "a@b.c"}', "did not match"),
        (b'{"external_id": "e", "email": "a@b.c"}', "did not match"),
        (b"<html>oops</html>", "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_bad_bodies_raise_decode_error(body: bytes, match: str) -> None:
    with pytest.raises(ps.DecodeError, match=match) as info:
        decode(PartnerUser, body, status=201, request_id="rid-7")
    err = info.value
    assert not isinstance(err, msgspec.MsgspecError)
    assert isinstance(err.__cause__, msgspec.MsgspecError)
    assert (err.status, err.request_id, err.body) == (201, "rid-7", body)
