"""Helpers of the ``polysim`` tests: a sandbox served from a thread, and the command as a process.

The sandbox runs on its own event loop in a background thread, so one sandbox
serves a whole test module while the tests (plain functions) start ``polysim``
subprocesses against it. Nothing here waits for a fixed time: every wait is
for an event (a line printed, a request seen), with a generous timeout that
only a broken test reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import queue
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from polysim_async import Client, Trade
from polysim_async.sandbox import FaultRule, Sandbox

T = TypeVar("T")

#: How long a wait may take before the test fails (never reached by a passing test).
PATIENCE = float(os.environ.get("POLYSIM_TEST_PATIENCE", "60"))
ROOT = Path(__file__).resolve().parents[2]
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences."""
    return _ANSI.sub("", text)


def screen(text: str) -> list[str]:
    """The lines a terminal shows for ``text``: CR returns to the line start, ESC[K erases to
    its end, LF starts a new line; other escape sequences change no character."""
    lines: list[str] = []
    line: list[str] = []
    col = 0
    for token in re.split(r"(\x1b\[[0-9;?]*[A-Za-z]|\r|\n)", text):
        if token == "\n":
            lines.append("".join(line))
            line, col = [], 0
        elif token == "\r":
            col = 0
        elif token == "\x1b[K":
            del line[col:]
        elif token.startswith("\x1b["):
            continue
        else:
            for ch in token:
                if col < len(line):
                    line[col] = ch
                else:
                    line.append(ch)
                col += 1
    if line:
        lines.append("".join(line))
    return lines


class ThreadSandbox:
    """A :class:`Sandbox` served by an event loop in a background thread."""

    def __init__(self, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        options.setdefault("rate_limits", False)
        self.sb: Sandbox = self.call(lambda: Sandbox(**options))
        self.call(self.sb.start)
        self.url = self.sb.url
        self.tenant_key = self.sb.tenant_key
        self.api_key = self.sb.api_key
        self.user_id = self.sb.user_id
        self.market_id = self.sb.market_id
        self._accounts = 0

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the sandbox's loop (awaiting it if it returns a coroutine)."""

        async def run() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(PATIENCE)

    def close(self) -> None:
        self.call(self.sb.aclose)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(PATIENCE)
        self._loop.close()

    # -- conveniences ---------------------------------------------------------------------
    def env(self, *, role: str = "partner") -> dict[str, str]:
        """The environment of a ``polysim`` process using this sandbox as ``role``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLYSIM_")}
        env.pop("NO_COLOR", None)
        # The commands use no deprecated name of the library (or of anything else).
        env["PYTHONWARNINGS"] = "error::DeprecationWarning"
        env["POLYSIM_BASE_URL"] = self.url
        env["POLYSIM_TENANT_KEY" if role == "partner" else "POLYSIM_API_KEY"] = (
            self.tenant_key if role == "partner" else self.api_key
        )
        return env

    def account(self, *, fills: int = 0, balance: str = "10000.00", **create: Any) -> str:
        """A new challenge account of a new trader, with ``fills`` generated fills; its id."""
        self._accounts += 1
        n = self._accounts

        async def create_account() -> str:
            async with Client(self.tenant_key, self.url) as client:
                user = await client.partner.users.register(f"ext-{n}", f"t{n}@example.com")
                account = await client.partner.accounts.create(
                    user_id=user.user_id,
                    external_id=f"acc-{n}",
                    stage="challenge",
                    starting_balance=balance,
                    **create,
                )
                return account.account_id

        account_id = asyncio.run(create_account())
        if fills:
            self.call(lambda: self.sb.generate_fills(fills, account_id=account_id))
        return account_id

    def trade(self, quantity: str = "10") -> dict[str, Any]:
        """A market BUY by the default trader (its API wallet); the order as the API answers."""
        placed: dict[str, Any] = self.call(
            lambda: self.sb.place_order(
                user_id=self.user_id,
                market_id=self.market_id,
                side="BUY",
                outcome="Yes",
                order_type="market",
                price="0.99",
                quantity=quantity,
            )
        )
        return placed

    def trades(self, account_id: str) -> list[Trade]:
        """Every fill of the account, newest first, read with the client."""

        async def read() -> list[Trade]:
            async with Client(self.tenant_key, self.url) as client:
                return [t async for t in client.partner.accounts.trades(account_id)]

        return asyncio.run(read())

    def probe(self, path: str) -> Probe:
        """Count the requests to ``path`` (a glob) from now on."""

        def install() -> FaultRule:
            self.sb.add_latency(path, 0.0, times=Probe.LARGE)
            rule: FaultRule = self.sb._core.faults.rules[-1]
            return rule

        return Probe(self.call(install))


class Probe:
    """How many requests reached a path: a zero-delay latency fault used as a counter."""

    LARGE = 1_000_000

    def __init__(self, rule: FaultRule) -> None:
        self._rule = rule

    @property
    def count(self) -> int:
        return self.LARGE - (self._rule.times or 0)

    def wait_for(self, count: int) -> None:
        wait_until(lambda: self.count >= count, f"{count} requests to {self._rule.path}")


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail after :data:`PATIENCE` seconds."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@dataclass
class Result:
    """A finished ``polysim`` process."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def one_error_line(self) -> str:
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert "Traceback" not in self.err
        return lines[0]


def command(*argv: str) -> list[str]:
    """The argv of a ``polysim`` process."""
    return [sys.executable, "-m", "polysim_async_cli", *argv]


def polysim(*argv: str, env: dict[str, str], stdin: str | None = None) -> Result:
    """Run ``polysim argv`` to the end."""
    done = subprocess.run(
        command(*argv),
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def polysim_here(*argv: str, env: dict[str, str], stdin: str | bytes | None = None) -> Result:
    """Run ``polysim argv`` in this process (for checks that need no process boundary:
    importing the client once keeps them fast). ``stdin`` as bytes is decoded as UTF-8,
    as a real stdin is."""
    import io
    from unittest import mock

    import polysim_async_cli

    out, err = io.StringIO(), io.StringIO()
    given = (
        io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
        if isinstance(stdin, bytes)
        else io.StringIO(stdin or "")
    )
    with (
        mock.patch.dict(os.environ, env, clear=True),
        mock.patch("sys.stdin", given),
    ):
        code = polysim_async_cli.main(list(argv), stdout=out, stderr=err)
    return Result(code, out.getvalue(), err.getvalue())


def polysim_all(runs: Sequence[tuple[Sequence[str], dict[str, str]]]) -> list[Result]:
    """Run several independent ``polysim`` processes at once (the machine has 2 cores)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda r: polysim(*r[0], env=r[1]), runs))


class Running:
    """A ``polysim`` process still running: its output read line by line as it comes."""

    def __init__(self, *argv: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            command(*argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_for_lines(self, count: int) -> list[str]:
        wait_until(lambda: len(self.out) >= count or self.process.poll() is not None, "output")
        assert len(self.out) >= count, (self.out, self.err, self.process.returncode)
        return self.out

    def interrupt(self, signum: int = signal.SIGINT) -> Result:
        """Send ``signum`` and wait for the process to end."""
        self.process.send_signal(signum)
        return self.finish()

    def finish(self) -> Result:
        code = self.process.wait(PATIENCE)
        for reader in self._readers:
            reader.join(PATIENCE)
        self._close()
        return Result(
            code, "".join(f"{x}\n" for x in self.out), "".join(f"{x}\n" for x in self.err)
        )

    def kill(self) -> None:
        """Make sure the process is gone and its pipes closed (in ``finally``)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(PATIENCE)
        for reader in self._readers:
            reader.join(PATIENCE)
        self._close()

    def _close(self) -> None:
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class Terminal:
    """A ``polysim`` process whose stdin, stdout and stderr are one pseudo-terminal."""

    def __init__(self, *argv: str, env: dict[str, str], term: str = "xterm") -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        env = {**env, "TERM": term}
        self.process = subprocess.Popen(
            command(*argv), env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True
        )
        os.close(slave)
        self._master = master
        self._chunks: queue.Queue[bytes] = queue.Queue()
        self.data = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # EIO: every writer closed the terminal
                chunk = b""
            self._chunks.put(chunk)
            if not chunk:
                return

    def _drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.data += self._chunks.get_nowait()

    @property
    def text(self) -> str:
        self._drain()
        return self.data.decode("utf-8", "replace")

    def wait_for(self, needle: str) -> None:
        try:
            wait_until(lambda: needle in self.text or self.process.poll() is not None, repr(needle))
        finally:
            assert needle in self.text, self.text

    def finish(self, signum: int | None = None) -> tuple[int, str]:
        if signum is not None:
            self.process.send_signal(signum)
        code = self.process.wait(PATIENCE)
        self._reader.join(PATIENCE)
        os.close(self._master)
        return code, self.text


def iter_subparsers(parser: Any) -> Iterator[Any]:
    """Every parser under ``parser`` (itself included), depth first."""
    import argparse

    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from iter_subparsers(child)


def wait_for_result(fn: Callable[[], T | None], what: str) -> T:
    """Poll ``fn`` until it returns something other than ``None``."""
    box: list[T] = []

    def ready() -> bool:
        value = fn()
        if value is not None:
            box.append(value)
        return bool(box)

    wait_until(ready, what)
    return box[0]
