"""``polysim monitor ID...``: judge accounts live against their challenge rules.

A thin layer over ``client.partner.accounts.monitor``: one line (or JSON object)
per event, the routine ``"sample"`` events only with ``--samples``; a status line
on a terminal (start-up progress, then the counts); ``--state FILE`` resumes from
and keeps a checkpoint (saved after each decision, at most once a second
otherwise, and on every exit, Ctrl-C included). Ends by itself when every
account is decided: exit 3 if one breached, 1 if one could not be judged (an
``error`` line: unknown id, stored rules that are not a rule set), else 0. In
JSON each verdict is written as ``polysim evaluate`` writes one (``*_pct`` to 2
dp, durations in seconds).

A ``--state`` file records the ``--shard`` it was written for (a
``{"shard": [i, n], "monitor": {...}}`` wrapper; a plain checkpoint has none):
another shard's file is refused (exit 2), so two shards never overwrite one
file. Account ids must be UUIDs: another id is refused before anything is read
(exit 2, naming the ``--accounts-file`` line).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import msgspec

from polysim_async_cli import EXIT_API_ERROR, EXIT_CHECK_FAILED, EXIT_USAGE, CommandError

from .._fleet import MonitorEvent, MonitorState
from .._monitor import FleetMonitor
from ._evaluate import verdict_object
from ._inputs import _read, account_ids
from ._main import Context
from ._output import Feed

__all__ = ["monitor"]

_DECISIONS = ("breach", "passed", "closed", "error", "restarted")


class _StateFile(msgspec.Struct, kw_only=True):
    """What ``--state`` holds: the checkpoint and the shard it belongs to."""

    monitor: MonitorState
    shard: tuple[int, int] | None = None


def _check_ids(ctx: Context) -> None:
    """Refuse an id that is not a UUID, naming where it came from."""
    args = ctx.args
    found = [(f"argument {i}", text) for i, text in enumerate(args.account_ids, 1)]
    if args.accounts_file is not None:
        for n, line in enumerate(_read("--accounts-file", args.accounts_file).splitlines(), 1):
            text = line.split("#", 1)[0].strip()
            if text:
                found.append((f"--accounts-file {args.accounts_file} line {n}", text))
    for where, text in found:
        try:
            uuid.UUID(text)
        except ValueError:
            raise CommandError(
                f"polysim {ctx.name}: {where}: {text!r} is not an account id (a UUID)", EXIT_USAGE
            ) from None


def _shard_flag(shard: tuple[int, int] | None) -> str:
    return "no --shard" if shard is None else f"--shard {shard[0]}/{shard[1]}"


def _load(path: Path, shard: tuple[int, int] | None) -> MonitorState | None:
    """The checkpoint in ``path`` (written for ``shard``), or ``None`` when it does not
    exist yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CommandError(f"polysim monitor: --state {path}: {exc.strerror}", EXIT_USAGE) from exc
    try:
        legacy: MonitorState | None = None
        if "monitor" in msgspec.json.decode(data, type=dict[str, object]):
            saved = msgspec.json.decode(data, type=_StateFile)
        else:  # a plain checkpoint (no shard recorded): taken as it is
            legacy = msgspec.json.decode(data, type=MonitorState)
            saved = _StateFile(monitor=legacy, shard=shard)
    except msgspec.DecodeError as exc:
        raise CommandError(
            f"polysim monitor: --state {path} is not a monitor checkpoint: {exc}", EXIT_USAGE
        ) from exc
    if legacy is None and saved.shard != shard:
        raise CommandError(
            f"polysim monitor: --state {path} belongs to {_shard_flag(saved.shard)}, not"
            f" {_shard_flag(shard)}: give each shard its own state file",
            EXIT_USAGE,
        )
    return saved.monitor


def _save(path: Path, state: MonitorState, shard: tuple[int, int] | None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(msgspec.json.encode(_StateFile(monitor=state, shard=shard)))
    os.replace(tmp, path)  # atomic: a crash never leaves half a file


def _event_object(event: MonitorEvent) -> object:
    """``event`` as JSON-ready builtins; its verdict as ``polysim evaluate`` writes one
    (``*_pct`` to 2 dp, durations in seconds)."""
    data: dict[str, object] = msgspec.json.decode(msgspec.json.encode(event))
    if event.verdict is not None:
        data["verdict"] = verdict_object(event.verdict)
    return data


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
    _check_ids(ctx)
    shard = args.shard
    path = Path(args.state) if args.state is not None else None
    saved = _load(path, shard) if path is not None else None
    ids = account_ids(ctx)
    if not ids:
        return ctx.code
    ctx.resume_hint = (
        f"to resume, run the same command again: {ctx.command_line}"
        if path is not None
        else "without --state the high-water marks and day references are lost"
        " (run with --state FILE to resume next time)"
    )
    feed = Feed(ctx.out, str, _event_object)
    async with ctx.client("partner") as client:
        fleet = client.partner.accounts.monitor(
            ids, close_on_breach=args.close_on_breach, state=saved, shard=shard
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
                    elif event.kind == "error":
                        ctx.record(EXIT_API_ERROR)
                    ctx.out.status.set(_status(fleet))
                    if event.kind != "sample" or args.samples:
                        feed.write(event)
                    else:
                        ctx.out.status.update(_status(fleet))
                    due = clock.now() - saved_at >= 1.0 or event.kind in _DECISIONS
                    if path is not None and due:
                        _save(path, fleet.state, shard)
                        saved_at = clock.now()
        finally:
            feed.close()
            if path is not None:
                _save(path, fleet.state, shard)
    return ctx.code
