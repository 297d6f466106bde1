"""The wire enums print their value on every Python (3.10 and 3.11+ differ for ``(str, Enum)``)."""

from __future__ import annotations

import enum

import pytest

from polysim_async import models
from polysim_async.models.common import WireEnum


def _wire_enums() -> list[type[WireEnum]]:
    found = {
        obj
        for module in (models.common, models.markets, models.orders, models.wallets)
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, enum.Enum) and obj is not WireEnum
    }
    return sorted(found, key=lambda cls: cls.__name__)


def test_every_string_enum_of_the_models_is_a_wire_enum() -> None:
    enums = _wire_enums()
    assert len(enums) >= 8
    assert all(issubclass(cls, WireEnum) for cls in enums)


@pytest.mark.parametrize("cls", _wire_enums(), ids=lambda cls: cls.__name__)
def test_str_and_format_give_the_wire_value(cls: type[WireEnum]) -> None:
    for member in cls:
        assert str(member) == member.value
        assert f"{member}" == member.value
        assert f"{member:>12}" == f"{member.value:>12}"
        assert format(member) == member.value
        assert member == member.value  # still a str
        assert repr(member).startswith(f"<{cls.__name__}.")
