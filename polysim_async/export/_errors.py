"""The errors an export raises besides those of the request path.

They sit in the library's tree (drawn in :mod:`polysim_async._errors`)::

    PolySimError
    ├── UsageError
    │   └── ExportDirectoryError             out_dir in use, other parameters, or tampered
    ├── ExportError                          accounts failed; the rest was exported
    └── ExportValueError  (also ValueError)  a fill's value cannot be written exactly
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._errors import PolySimError, UsageError

if TYPE_CHECKING:
    from ._progress import ExportSummary

__all__ = ["ExportDirectoryError", "ExportError", "ExportValueError"]


class ExportDirectoryError(UsageError):
    """``out_dir`` cannot be used: another export holds it, it was written with other
    parameters, or its files no longer match its manifest. Nothing was changed in it."""


class ExportValueError(PolySimError, ValueError):
    """A fill holds a value the export cannot write exactly; nothing is rounded.

    Raised for a money string that is not a decimal number, or (Parquet) one that
    does not fit ``decimal128(38, 18)``. It ends that account's export (reported
    through :class:`ExportError`); its fills already in parts stay there, and its
    position in the manifest stays before the fill.

    Attributes:
        account_id: the account whose feed holds the fill.
        trade_id: the fill.
        field: the wire name of the field (``"price"``, ``"realized_pnl"`` ...).
        value: the wire string.
    """

    def __init__(self, account_id: str, trade_id: int, field: str, value: str, reason: str) -> None:
        self.account_id = account_id
        self.trade_id = trade_id
        self.field = field
        self.value = value
        super().__init__(
            f"account {account_id!r}, trade {trade_id}: {field} {value!r} {reason}; "
            "nothing is rounded, so this account's export stopped before this fill"
        )


class ExportError(PolySimError):
    """Some accounts could not be exported; every other account was.

    The directory holds everything exported so far, and its manifest records where
    each failed account stopped: running the same export again resumes them.

    Attributes:
        failures: account id → the error that ended its export (after the request
            path's own retries). The first one is also ``__cause__``.
        summary: what this call did write (an :class:`ExportSummary`).
    """

    def __init__(self, failures: Mapping[str, PolySimError], summary: ExportSummary) -> None:
        self.failures = dict(failures)
        self.summary = summary
        shown = "; ".join(f"{k}: {e}" for k, e in list(self.failures.items())[:3])
        more = len(self.failures) - 3
        super().__init__(
            f"{len(self.failures)} of {summary.accounts} account(s) failed: {shown}"
            + (f"; and {more} more" if more > 0 else "")
            + f". {summary.fills} fill(s) were written; run the export again to resume"
        )
