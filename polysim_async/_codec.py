"""Prebuilt msgspec encoder and decoders; the one place msgspec errors are translated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from ._errors import DecodeError

__all__ = ["decode", "decoder", "encode", "encode_rules"]

T = TypeVar("T")


def _enc_hook(value: Any) -> Any:
    # Read-only mappings (``Rules``) travel as JSON objects.
    if isinstance(value, Mapping):
        return dict(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_encoder = msgspec.json.Encoder(decimal_format="string", enc_hook=_enc_hook)
# Rule percentages travel as JSON numbers, as in the partner quickstart seed.
_number_encoder = msgspec.json.Encoder(decimal_format="number", enc_hook=_enc_hook)


def encode(value: Any) -> bytes:
    """Encode a Struct (or plain JSON value) to compact JSON bytes; decimals become strings."""
    return _encoder.encode(value)


def encode_rules(rules: Mapping[str, Any] | None) -> msgspec.Raw | None:
    """Pre-encode a rules object with its decimals as JSON numbers (exact, not floats)."""
    return None if rules is None else msgspec.Raw(_number_encoder.encode(rules))


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decoder(tp: type[T]) -> msgspec.json.Decoder[T]:
    """Return the cached typed decoder for ``tp`` (built once per type)."""
    dec = _decoders.get(tp)
    if dec is None:
        dec = _decoders[tp] = msgspec.json.Decoder(tp)
    return dec


def decode(tp: type[T], data: bytes, *, status: int = 200, request_id: str | None = None) -> T:
    """Decode response bytes straight into ``tp``.

    Raises:
        DecodeError: the bytes are not JSON or do not match the schema.
    """
    try:
        return decoder(tp).decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(
            f"response did not match {getattr(tp, '__name__', tp)}: {exc}",
            status=status,
            request_id=request_id,
            body=data,
        ) from exc
    except msgspec.DecodeError as exc:
        raise DecodeError(
            f"response is not valid JSON: {exc}", status=status, request_id=request_id, body=data
        ) from exc
    except RecursionError:
        # msgspec gives up on JSON nested about a thousand levels deep; the
        # RecursionError is not chained, its traceback is a thousand frames long.
        raise DecodeError(
            "response is nested too deeply to decode",
            status=status,
            request_id=request_id,
            body=data,
        ) from None
