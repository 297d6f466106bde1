"""``polysim monitor ID...``: judge accounts live against their challenge rules.

A thin layer over ``client.partner.accounts.monitor``: one line (or JSON object)
per event, the routine ``"sample"`` events only with ``--samples``; a status line
on a terminal (start-up progress, then the counts); ``--state FILE`` resumes from
and keeps a checkpoint (saved after each decision, at most once a second
otherwise, and on every exit, Ctrl-C included). Ends by itself when every
account is decided: exit 3 if one breached, else 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from polysim_async_cli import EXIT_CHECK_FAILED, EXIT_USAGE, CommandError

from .._fleet import MonitorEvent, MonitorState
from .._monitor import FleetMonitor
from ._inputs import account_ids
from ._main import Context
from ._output import Feed

__all__ = ["monitor"]

_DECISIONS = ("breach", "passed", "closed")


def _load(path: Path) -> MonitorState | None:
    """The checkpoint in ``path``, or ``None`` when it does not exist yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CommandError(f"polysim monitor: --state {path}: {exc.strerror}", EXIT_USAGE) from exc
    try:
        return msgspec.json.decode(data, type=MonitorState)
    except msgspec.DecodeError as exc:
        raise CommandError(
            f"polysim monitor: --state {path} is not a monitor checkpoint: {exc}", EXIT_USAGE
        ) from exc


def _save(path: Path, state: MonitorState) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(msgspec.json.encode(state))
    os.replace(tmp, path)  # atomic: a crash never leaves half a file


def _status(monitor: FleetMonitor) -> str:
    s = monitor.stats
    if not s.ready:
        return f"monitor · starting {s.started}/{s.accounts} accounts"
    return (
        f"monitor · {s.accounts} accounts · {s.samples} samples · {s.fills} fills · "
        f"{s.breaches} breached · {s.passed} passed · {s.closed} closed"
    )


async def monitor(ctx: Context) -> int:
    """``polysim monitor ID... [--close-on-breach] [--state FILE] [--samples]``."""
    args = ctx.args
    ids = account_ids(ctx)
    if not ids:
        return ctx.code
    path = Path(args.state) if args.state is not None else None
    saved = _load(path) if path is not None else None
    feed = Feed(ctx.out, str)
    async with ctx.client("partner") as client:
        fleet = client.partner.accounts.monitor(
            ids, close_on_breach=args.close_on_breach, state=saved, shard=args.shard
        )
        clock = client.clock
        saved_at = clock.now()
        try:
            async with fleet:
                ctx.out.status.update(_status(fleet), force=True)
                event: MonitorEvent
                async for event in fleet:
                    if event.kind == "breach":
                        ctx.record(EXIT_CHECK_FAILED)
                    ctx.out.status.set(_status(fleet))
                    if event.kind != "sample" or args.samples:
                        feed.write(event)
                    else:
                        ctx.out.status.update(_status(fleet))
                    due = clock.now() - saved_at >= 1.0 or event.kind in _DECISIONS
                    if path is not None and due:
                        _save(path, fleet.state)
                        saved_at = clock.now()
        finally:
            feed.close()
            if path is not None:
                _save(path, fleet.state)
    return ctx.code
