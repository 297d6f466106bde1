"""JSON in and out of the sandbox: one encoder, one guarded body decoder.

The sandbox encodes only plain JSON values (dicts, lists, strings, numbers,
booleans, ``None``): every money value is already a formatted string when it
gets here (see :mod:`._views`), so the wire shape never depends on how an
encoder renders a ``Decimal``. It shares no code with the client's codec.

Request bodies are decoded by :func:`decode_body`, which turns every way a body
can be unreadable - not UTF-8, not JSON, a number out of range, or nested deeper
than :data:`MAX_DEPTH` (the decoder would otherwise exhaust the stack) - into one
``ValueError`` with a message fit for a ``422``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

__all__ = ["MAX_DEPTH", "decode_body", "encode", "json_response"]

#: How deeply a request body may nest objects and arrays. Free-form fields
#: (``metadata``, ``rules``) are echoed back, so they must stay encodable.
MAX_DEPTH = 32

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def encode(value: Any) -> bytes:
    """Return ``value`` as compact JSON bytes."""
    return _encoder.encode(value)


def json_response(data: Any, status: int = 200) -> web.Response:
    """Return a JSON answer with ``data`` as its body."""
    return web.Response(status=status, body=_encoder.encode(data), content_type="application/json")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers more than ``limit`` levels deep (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def decode_body(raw: bytes) -> Any:
    """Decode a request body.

    Raises:
        ValueError: the body is not valid UTF-8 JSON, holds an out-of-range
            number, or nests more than :data:`MAX_DEPTH` levels.
    """
    try:
        data = _decoder.decode(raw)
    except RecursionError:
        raise ValueError(f"request body is nested more than {MAX_DEPTH} levels deep") from None
    except msgspec.DecodeError as exc:
        raise ValueError(f"request body is not valid JSON: {exc}") from None
    if _depth_exceeds(data, MAX_DEPTH):
        raise ValueError(f"request body is nested more than {MAX_DEPTH} levels deep")
    return data
