"""Optional dependencies: import them where a feature needs them, with a message naming the extra.

``import polysim_async`` imports none of pyarrow, redis, matplotlib or a
progress library; each feature that needs one calls :func:`require` inside the
function that uses it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ._errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, extra: str, *, feature: str) -> ModuleType:
    """Import and return ``module``, or explain which extra installs it.

    Args:
        module: the module to import (``"pyarrow.parquet"``).
        extra: the polysim-async extra that provides it (``"parquet"``).
        feature: what the user asked for, for the message (``"Parquet export"``).

    Raises:
        MissingDependencyError: the module is not installed (also an ``ImportError``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.partition(".")[0]
        raise MissingDependencyError(
            f'{feature} needs the optional dependency {top!r}: pip install "polysim-async[{extra}]"'
        ) from exc
