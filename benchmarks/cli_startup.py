"""``polysim`` start-up: ``--help``, a subcommand's ``--help``, ``--version`` and a usage error
(target: each under 300 ms), against ``python -c pass`` and ``python -c "import polysim_async"``.

Each variant is a fresh process, as a user starts it (the installed ``polysim`` console
script when there is one). Variants are interleaved round by round; each keeps its median
wall time. The ratio is to the bare interpreter's start-up measured in the same run.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ._common import Row

__all__ = ["run"]

NAME = "polysim start-up"
TARGET_MS = 300.0


def _polysim() -> list[str]:
    script = shutil.which("polysim", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "polysim_async_cli"]


def run(*, quick: bool = False) -> list[Row]:
    """Median wall time of each start-up variant, as a ratio to ``python -c pass``."""
    polysim = _polysim()
    variants: dict[str, list[str]] = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "python -c 'import polysim_async'": [sys.executable, "-c", "import polysim_async"],
        "polysim --help": [*polysim, "--help"],
        "polysim trades export --help": [*polysim, "trades", "export", "--help"],
        "polysim --version": [*polysim, "--version"],
        "polysim (usage error)": [*polysim, "accounts", "get", "--limit"],
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for argv in variants.values():  # warm the file cache
        subprocess.run(argv, capture_output=True, check=False)
    for _ in range(5 if quick else 30):
        for name, argv in variants.items():
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=False)
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(values) for name, values in times.items()}
    base = med["python -c pass (baseline)"]
    rows = []
    for name, seconds in med.items():
        command = name.startswith("polysim")
        rows.append(
            Row(
                NAME,
                name,
                f"{seconds * 1e3:.0f} ms",
                ratio=f"{seconds / base:.1f}x",
                target=f"< {TARGET_MS:.0f} ms" if command else "",
                met=seconds * 1e3 < TARGET_MS if command else None,
                note="median wall time of a fresh process",
            )
        )
    return rows
