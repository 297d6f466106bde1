"""What an export reports: progress snapshots while it runs, a summary when it ends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ExportProgress", "ExportSummary", "estimate_eta"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportProgress:
    """A snapshot of a running export, handed to the ``progress`` callback.

    It comes after every page received, after every part written, and once at
    the end, so a caller can draw a progress bar (``accounts_done`` of
    ``accounts_total``, ``fills_fetched``, ``fills_per_second``, ``eta``) and, if
    it is interrupted, say how far it got.

    Attributes:
        accounts_total: accounts in this export call.
        accounts_done: accounts whose feed was read to its end (or down to their
            watermark); their last rows may still wait in the part being filled.
        accounts_failed: accounts whose export failed (see :class:`ExportError`).
        fills_fetched: fills received by this call (written or waiting for their part).
        fills_written: fills in parts this call has written and recorded.
        parts_written: parts this call has written and recorded.
        requests: feed pages fetched by this call.
        elapsed: seconds since the call started (the client's clock).
        fills_per_second: ``fills_fetched / elapsed`` (``None`` before time passed).
        eta: estimated seconds left, or ``None`` while no account has finished
            (see :func:`estimate_eta`).
    """

    accounts_total: int
    accounts_done: int
    accounts_failed: int
    fills_fetched: int
    fills_written: int
    parts_written: int
    requests: int
    elapsed: float
    fills_per_second: float | None
    eta: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportSummary:
    """What one export call did.

    Attributes:
        out_dir: the export directory.
        format: ``"parquet"``, ``"csv"`` or ``"ndjson"``.
        accounts: accounts in this call.
        completed: accounts whose feed this call read to its end (or watermark).
        resumed: accounts that continued a walk an earlier, interrupted call left.
        fills: fills this call wrote.
        parts: names of the part files this call wrote, in order.
        total_fills: fills in the whole directory (every account of its manifest).
        seconds: how long the call took (the client's clock).
    """

    out_dir: Path
    format: str
    accounts: int
    completed: int
    resumed: int
    fills: int
    parts: tuple[str, ...]
    total_fills: int
    seconds: float


def estimate_eta(
    *,
    accounts_total: int,
    accounts_done: int,
    pages_of_done: int,
    pages_of_open: int,
    budget: float | None,
    observed: float | None,
) -> float | None:
    """Seconds left, from the pages accounts needed so far and the request rate.

    The accounts still to read are assumed to need as many pages as the finished
    ones did on average (at least one each, minus what open ones already read);
    the requests left are then divided by the rate: the rate budget of the
    client (requests per second), or the observed request rate when lower.

    Args:
        accounts_total: accounts in the export.
        accounts_done: accounts finished (read to the end, or failed).
        pages_of_done: pages the finished accounts needed.
        pages_of_open: pages read so far of accounts not finished.
        budget: requests per second the rate limiter allows (``None``: no limit).
        observed: requests per second achieved so far (``None``: not known yet).

    Returns:
        Seconds, or ``None`` when nothing is known yet (no account finished, or no rate).
    """
    left = accounts_total - accounts_done
    if left <= 0:
        return 0.0
    if accounts_done == 0:
        return None
    rates = [r for r in (budget, observed) if r is not None and r > 0]
    if not rates:
        return None
    per_account = max(1.0, pages_of_done / accounts_done)
    requests = max(float(left), per_account * left - pages_of_open)
    return requests / min(rates)
