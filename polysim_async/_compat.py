"""Old call forms kept for one release, each with a ``DeprecationWarning``."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

__all__ = ["deprecated_positional"]

P = ParamSpec("P")
R = TypeVar("R")


def deprecated_positional(count: int, *names: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Accept ``names`` positionally after the first ``count`` arguments, with a warning.

    The decorated function declares them keyword-only; this keeps older
    positional calls working for one release.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            extra = args[count:]
            if extra:
                if len(extra) > len(names):
                    raise TypeError(f"{fn.__qualname__}() got too many positional arguments")
                given = names[: len(extra)]
                warnings.warn(
                    f"passing {', '.join(given)} to {fn.__qualname__}() positionally is "
                    "deprecated; pass it by keyword",
                    DeprecationWarning,
                    stacklevel=2,
                )
                for name, value in zip(given, extra, strict=True):
                    if name in kwargs:
                        raise TypeError(f"{fn.__qualname__}() got multiple values for {name!r}")
                    kwargs[name] = value
            return fn(*args[:count], **kwargs)

        return wrapper

    return decorate
