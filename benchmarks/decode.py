"""Decode: fills/s turning one 500-fill page (bytes) into typed fills.

Variants, all decoding the same bytes:

* ``polysim-async``: the library's cached ``TradePage`` decoder (money kept as the
  exact wire strings, ``filled_at`` a tz-aware datetime, ``side`` an enum).
* ``json.loads``: to dicts, no types (baseline).
* ``pydantic v2``: ``model_validate_json`` into models of the same field types.
* ``msgspec plain strings``: every field a str/int, no datetime or enum: the
  floor for any typed decoding.
* for the record: msgspec with eager ``Decimal`` money, regex-validated money
  strings, fixed-point integers (via ``dec_hook``), pydantic with ``Decimal``
  money, and polysim-async plus reading ``price``/``quantity`` as Decimal on every
  fill (the lazy strings' deferred cost).
"""

from __future__ import annotations

import enum
import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from polysim_async import TradePage
from polysim_async._codec import decode as library_decode

from ._common import Row, best_of, make_page, rate

__all__ = ["run"]

NAME = "decode"


class _Side(str, enum.Enum):
    BUY = "BUY"
    SELL = "SELL"


def _trade_fields(money: Any, side: Any, when: Any) -> list[Any]:
    """The P6 trade row's fields; the variants differ only in these three types."""
    return [
        ("trade_id", int),
        ("order_id", int),
        ("market_id", str),
        ("side", side),
        ("outcome", str),
        ("price", money),
        ("quantity", money),
        ("notional", money),
        ("fee", money),
        ("filled_at", when),
        ("client_order_id", str | None, None),
        ("realized_pnl", money | None, None),
    ]


def _msgspec_page(name: str, money: Any, side: Any = _Side, when: Any = datetime) -> Any:
    trade = msgspec.defstruct(f"{name}Trade", _trade_fields(money, side, when))
    return msgspec.defstruct(
        f"{name}Page", [("data", list[trade]), ("next_cursor", str | None, None)]
    )


_Num = Annotated[str, msgspec.Meta(pattern=r"^-?\d+(\.\d+)?$")]


class Fixed4(int):
    """A decimal string decoded to an int of 1e-4 units (``"0.4100"`` → 4100)."""


def _fixed_hook(tp: type, obj: Any) -> Any:
    if tp is Fixed4 and isinstance(obj, str):
        neg = obj.startswith("-")
        whole, _, frac = obj.lstrip("-").partition(".")
        if len(frac) > 4 or not (whole + frac).isdigit():
            raise ValueError(f"not a 4-dp decimal: {obj!r}")
        value = int(whole + frac.ljust(4, "0"))
        return Fixed4(-value if neg else value)
    raise NotImplementedError(tp)


#: The floor: the same fields as plain strings, no typed conversion at all.
PlainPage = _msgspec_page("Plain", str, side=str, when=str)
DecimalPage = _msgspec_page("Decimal", Decimal)
RegexPage = _msgspec_page("Regex", _Num)
FixedPage = _msgspec_page("Fixed", Fixed4)


def _pydantic_models() -> tuple[Any, Any]:
    import pydantic

    def page(name: str, money: Any) -> Any:
        fields = {
            field[0]: (field[1], field[2] if len(field) == 3 else ...)
            for field in _trade_fields(money, Literal["BUY", "SELL"], datetime)
        }
        trade = pydantic.create_model(f"Pyd{name}Trade", **fields)
        return pydantic.create_model(
            f"Pyd{name}Page", data=(list[trade], ...), next_cursor=(str | None, None)
        )

    return page("", str), page("Dec", Decimal)


def run(*, quick: bool = False, fills: int = 500) -> list[Row]:
    """Run the decode benchmark; ``quick`` uses few rounds (smoke/CI)."""
    body = make_page(fills)
    plain = msgspec.json.Decoder(PlainPage)
    eager = msgspec.json.Decoder(DecimalPage)
    regex = msgspec.json.Decoder(RegexPage)
    fixed = msgspec.json.Decoder(FixedPage, dec_hook=_fixed_hook)

    def ours() -> Any:
        return library_decode(TradePage, body)

    def ours_read_decimals() -> Any:
        page = library_decode(TradePage, body)
        for t in page.data:
            t.price  # noqa: B018 - the access is the point
            t.quantity  # noqa: B018
        return page

    funcs: dict[str, Any] = {
        "polysim-async": ours,
        "json.loads (dicts)": lambda: json.loads(body),
        "msgspec plain strings (floor)": lambda: plain.decode(body),
        "msgspec eager Decimal": lambda: eager.decode(body),
        "msgspec regex-validated strings": lambda: regex.decode(body),
        "msgspec fixed-point ints (dec_hook)": lambda: fixed.decode(body),
        "polysim-async + read price,quantity": ours_read_decimals,
    }
    try:
        pyd_page, pyd_dec_page = _pydantic_models()
    except ImportError:
        pyd_page = pyd_dec_page = None
    if pyd_page is not None:
        funcs["pydantic v2 (same types)"] = lambda: pyd_page.model_validate_json(body)
        funcs["pydantic v2 (Decimal money)"] = lambda: pyd_dec_page.model_validate_json(body)

    # Sanity: every variant decodes all fills, and ours is exact.
    assert len(ours().data) == fills
    assert str(ours().data[0].price) == json.loads(body)["data"][0]["price"]

    best = best_of(funcs, rounds=2 if quick else 15, min_time=0.01 if quick else 0.1)
    base = best["polysim-async"]
    rows = []
    for name, secs in best.items():
        if name == "polysim-async":
            ratio = "1.00x (reference)"
        else:
            ratio = (
                f"ours {secs / base:.2f}x faster" if secs >= base else f"{base / secs:.2f}x ours"
            )
        rows.append(Row(NAME, name, rate(fills, secs) + " fills", ratio, extra={"seconds": secs}))

    vs_json = best["json.loads (dicts)"] / base
    floor = base / best["msgspec plain strings (floor)"]
    rows.append(
        Row(NAME, "target: vs json.loads", f"{vs_json:.2f}x", target=">= 3x", met=vs_json >= 3)
    )
    if pyd_page is not None:
        vs_pyd = best["pydantic v2 (same types)"] / base
        rows.append(
            Row(NAME, "target: vs pydantic v2", f"{vs_pyd:.2f}x", target=">= 5x", met=vs_pyd >= 5)
        )
    else:
        rows.append(Row(NAME, "target: vs pydantic v2", "n/a", note="pydantic not installed"))
    rows.append(
        Row(
            NAME,
            "target: time vs plain-string floor",
            f"{floor:.2f}x",
            target="<= 1.5x",
            met=floor <= 1.5,
        )
    )
    return rows
