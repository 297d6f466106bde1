"""The contract checker: an answer against a documented field list and the client's model.

The field lists live in the test modules, transcribed from API.md, the seeds and
the docs pages on their own (not copied from the sandbox's ``_fields.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from polysim_async._codec import decode


@dataclass(frozen=True)
class Doc:
    """The documented fields of one answer (or of each item of an array answer)."""

    fields: frozenset[str]
    optional: frozenset[str] = frozenset()
    model: Any = None  # the client's model for one object (None: the client has none)
    nested: dict[str, Doc] = field(default_factory=dict)
    #: Fields holding an object of objects (``{token_id: {...}}``): each value is checked.
    values: dict[str, Doc] = field(default_factory=dict)


def doc(
    names: str,
    *,
    optional: str = "",
    model: Any = None,
    values: dict[str, Doc] | None = None,
    **nested: Doc,
) -> Doc:
    return Doc(frozenset(names.split()), frozenset(optional.split()), model, nested, values or {})


def _model_fields(model: Any) -> set[str]:
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)
    names = {f.encode_name for f in info.fields}
    if info.tag_field is not None:
        names.add(info.tag_field)
    return names


def check(d: Doc, body: Any, path: str = "$") -> None:
    """Assert ``body`` (one object) has exactly the documented fields, recursively."""
    assert isinstance(body, dict), f"{path}: expected an object, got {body!r}"
    keys = set(body)
    missing, extra = d.fields - keys, keys - d.fields - d.optional
    assert not missing and not extra, f"{path}: missing {sorted(missing)}, extra {sorted(extra)}"
    for name, inner in d.nested.items():
        value = body.get(name)
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if item is not None:
                check(inner, item, f"{path}.{name}[{i}]")
    for name, inner in d.values.items():
        value = body.get(name)
        assert value is None or isinstance(value, dict), f"{path}.{name}: not an object"
        for key, item in (value or {}).items():
            check(inner, item, f"{path}.{name}[{key!r}]")
    if d.model is not None:
        forgotten = (d.fields | d.optional) - _model_fields(d.model)
        assert not forgotten, f"the client's {d.model.__name__} lacks {sorted(forgotten)}"
        decode(d.model, msgspec.json.encode(body))


def check_answer(docs: dict[str, Doc], name: str, body: Any, *, nonempty: bool = True) -> None:
    """Check an answer against ``docs[name]``: an object, or an array whose every item is."""
    items = body if isinstance(body, list) else [body]
    if nonempty:
        assert items, f"{name}: nothing to check"
    for item in items:
        check(docs[name], item)
