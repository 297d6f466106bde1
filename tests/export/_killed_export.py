"""An export run in a child process that SIGKILLs itself at a chosen moment.

    python _killed_export.py URL KEY OUT_DIR IDS_JSON MOMENT

MOMENT picks where the process dies, counted within this run, with no timing
involved (the test tells each moment from the leftovers it finds):

* ``page:N``       in the progress callback of the N-th page (rows buffered, maybe a
                   part being written);
* ``half-part:N``  while the N-th part is half written under its temporary name;
* ``full-part:N``  the N-th part complete under its temporary name, not renamed;
* ``renamed:N``    the N-th part renamed to its final name, not yet in the manifest;
* ``manifest:N``   the N-th manifest save written to ``_manifest.json.tmp``, not renamed;
* ``none``         run to the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from polysim_async import Client
from polysim_async.export import _files


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(moment: str) -> None:
    kind, _, number = moment.partition(":")
    count = {"n": 0}

    def hit() -> bool:
        count["n"] += 1
        return count["n"] == int(number)

    fsync_file = _files.fsync_file

    def fsync_then_maybe_die(path: Path) -> None:
        if path.name.startswith(".part-") and kind in ("half-part", "full-part") and hit():
            if kind == "half-part":
                size = path.stat().st_size
                with open(path, "r+b") as f:
                    f.truncate(size // 2)
            fsync_file(path)
            die()
        fsync_file(path)

    replace = os.replace

    def replace_then_maybe_die(src: str | Path, dst: str | Path) -> None:
        src, dst = Path(src), Path(dst)
        if kind == "manifest" and src.name == "_manifest.json.tmp" and hit():
            die()
        replace(src, dst)
        if kind == "renamed" and dst.name.startswith("part-") and hit():
            die()

    _files.fsync_file = fsync_then_maybe_die
    _files.os.replace = replace_then_maybe_die


async def main(url: str, key: str, out_dir: str, ids: list[str], moment: str) -> None:
    arm(moment)
    kind, _, number = moment.partition(":")

    def progress(event: object) -> None:
        if kind == "page" and getattr(event, "requests", 0) == int(number):
            die()

    async with Client(key, url, rate_limit=None) as client:
        await client.partner.accounts.export(
            ids, out_dir, page_size=20, part_rows=60, concurrency=2, progress=progress
        )


if __name__ == "__main__":
    url, key, out_dir, ids_json, moment = sys.argv[1:6]
    asyncio.run(main(url, key, out_dir, json.loads(ids_json), moment))
