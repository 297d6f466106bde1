"""Running a parsed ``polysim`` command: its client, its event loop, signals, exit codes.

:func:`run` is called by :func:`polysim_async_cli.main` once the arguments name
a command. It imports the command's module, builds the command's
:class:`Context` and maps every outcome to one exit code and at most one line
on stderr per failure (a traceback only with ``--debug``).

Ctrl-C and SIGTERM cancel the running command at its next ``await``, so its
``finally`` blocks run (a checkpoint is saved, a progress line is cleared, the
export finishes the part it is writing); the command then exits 130 with a
one-line resume hint where resuming makes sense. A second Ctrl-C stops at once.

A closed stdout (its reader went away: ``| head``; or none: ``>&-``) stops the
command at the first line it cannot write (:class:`~._output.OutputClosed`),
quietly, with the exit code so far (0 when nothing failed), like a command
killed by SIGPIPE but without the 141. A file the command cannot write (a full
disk, ``ulimit -f``) is exit 1, naming the file, with the resume hint.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import importlib
import inspect
import os
import shlex
import signal
import threading
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, Literal, TextIO, TypeVar

import aiohttp

from polysim_async_cli import (
    EXIT_API_ERROR,
    EXIT_AUTH,
    EXIT_CHECK_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
)

from .._client import Client
from .._errors import (
    AuthenticationError,
    ConnectError,
    FanOutError,
    InvalidArgumentError,
    PaginationError,
    PermissionDeniedError,
    PolySimError,
    UsageError,
)
from ..export import ExportError
from ._output import Output, OutputClosed

__all__ = [
    "SECRET_OPTIONS",
    "Context",
    "Interrupted",
    "Role",
    "ServerClock",
    "exit_code",
    "masked_argv",
    "run",
]

T = TypeVar("T")
R = TypeVar("R")
Role = Literal["partner", "trader"]

#: The variable each role's key is read from when ``--api-key`` is not given.
KEY_VARIABLES: dict[Role, str] = {"partner": "POLYSIM_TENANT_KEY", "trader": "POLYSIM_API_KEY"}
_KEY_NAMES: dict[Role, str] = {"partner": "a tenant key", "trader": "a trader key (ps_live_...)"}


class ServerClock:
    """The server's time, read from the ``Date`` header of its answers.

    Pass :meth:`trace_config` to the client (``ctx.client(role,
    trace_configs=[clock.trace_config()])``); :meth:`now` is then the newest
    ``Date`` seen (one-second resolution), else this machine's clock. Against
    ``polysim sandbox`` that is the simulated clock.
    """

    def __init__(self) -> None:
        self.seen: datetime | None = None

    def trace_config(self) -> aiohttp.TraceConfig:
        """An aiohttp trace config that records the ``Date`` of every answer."""

        async def on_end(_session: object, _ctx: object, params: Any) -> None:
            self.observe(params.response.headers.get("Date"))

        config = aiohttp.TraceConfig()
        config.on_request_end.append(on_end)
        return config

    def observe(self, header: str | None) -> None:
        """Record one ``Date`` header value (an unreadable one is ignored)."""
        if not header:
            return
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return
        if when.tzinfo is None:
            return
        if self.seen is None or when > self.seen:
            self.seen = when

    def now(self) -> datetime:
        """The newest server time seen, else this machine's clock."""
        return self.seen or datetime.now(timezone.utc)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped the command."""


def exit_code(exc: BaseException) -> int:
    """The exit code of a failure: 4 authentication, 2 usage, else 1."""
    if isinstance(exc, (ExportError, FanOutError)):
        codes = [exit_code(e) for e in exc.failures.values()]
        return EXIT_AUTH if EXIT_AUTH in codes else EXIT_API_ERROR
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return EXIT_AUTH
    if isinstance(exc, UsageError) and not isinstance(exc, PaginationError):
        return EXIT_USAGE
    return EXIT_API_ERROR


def _one_line(text: str) -> str:
    return " ".join(text.split())


#: Options whose value is a secret: never echoed (resume hints show ``***``).
SECRET_OPTIONS = frozenset({"--api-key"})
_MASK = "***"


def masked_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with the value of every :data:`SECRET_OPTIONS` option replaced by ``***``.

    Both spellings are masked: ``--api-key KEY`` and ``--api-key=KEY``, and
    the abbreviations argparse accepts (``--api-k KEY``). Nothing after
    ``--`` is an option.
    """
    masked: list[str] = []
    hide_next = False
    options_end = False
    for arg in argv:
        if hide_next:
            masked.append(_MASK)
            hide_next = False
            continue
        if arg == "--":
            options_end = True
        name, eq, _value = arg.partition("=")
        secret = len(name) >= 4 and any(s.startswith(name) for s in SECRET_OPTIONS)
        if secret and not options_end:
            if eq:
                masked.append(f"{name}={_MASK}")
            else:
                masked.append(arg)
                hide_next = True
            continue
        masked.append(arg)
    return masked


_GRAVITY = (EXIT_AUTH, EXIT_API_ERROR, EXIT_USAGE, EXIT_CHECK_FAILED, EXIT_OK)


class Context:
    """What a command gets: its arguments, its output, its client, and a place for failures.

    Attributes:
        args: the parsed arguments.
        out: stdout/stderr and the data format.
        name: the command as typed (``"accounts get"``), for messages.
        resume_hint: said after "interrupted" or a failed write (set it when
            resuming makes sense).
        writing: the file or directory the command writes, named when a write
            fails without saying which file.
        code: the exit code so far: failures reported with :meth:`fail` raise it.
    """

    def __init__(self, args: argparse.Namespace, argv: Sequence[str], out: Output) -> None:
        self.args = args
        self.argv = list(argv)
        self.out = out
        self.name = " ".join(filter(None, [args.command, getattr(args, "action", None)]))
        self.resume_hint: str | None = None
        self.writing: str | None = None
        self.code = EXIT_OK

    @property
    def command_line(self) -> str:
        """The command as typed, ready to paste again (``polysim ...``), secrets masked.

        The value of ``--api-key`` reads ``'***'`` (see :func:`masked_argv`):
        a hint lands in logs and terminals' scrollback, a key must not.
        """
        return shlex.join(["polysim", *masked_argv(self.argv)])

    def client(self, role: Role, **options: Any) -> Client:
        """A client with ``role``'s key: ``--api-key``, else the role's variable.

        Raises:
            CommandError: no key (exit 2), naming the variable to set.
        """
        variable = KEY_VARIABLES[role]
        key = self.args.api_key or os.environ.get(variable)
        if not key:
            raise CommandError(
                f"polysim {self.name}: needs {_KEY_NAMES[role]}: pass --api-key or set {variable}",
                EXIT_USAGE,
            )
        try:
            return Client(
                key,
                self.args.base_url,
                max_retries=self.args.retries,
                allow_insecure=self.args.allow_insecure,
                **options,
            )
        except InvalidArgumentError as exc:  # the client's words are for Python callers
            text = str(exc).replace("pass allow_insecure=True", "pass --allow-insecure")
            raise CommandError(f"polysim {self.name}: {text}", EXIT_USAGE) from None

    def describe(self, exc: BaseException) -> str:
        """One line for a failure (the client's own hint says when a key is of the other kind)."""
        text = f"{type(exc).__name__}: {exc}" if isinstance(exc, PolySimError) else str(exc)
        return _one_line(text)

    def fail(self, subject: str, exc: PolySimError) -> None:
        """Report the failure of one item (an account) and go on; :attr:`code` records it."""
        if getattr(self.args, "debug", False):
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=self.out.stderr)
        self.out.message(f"polysim {self.name}: {subject}: {self.describe(exc)}")
        self.record(exit_code(exc))

    def record(self, code: int) -> None:
        """Let ``code`` decide the exit code unless a graver one already does.

        Gravest first: authentication (4), API or network (1), usage (2), a
        failed check (3): a check that could not see every account is not a verdict.
        """
        if _GRAVITY.index(code) < _GRAVITY.index(self.code):
            self.code = code

    async def each(
        self,
        items: Sequence[T],
        work: Callable[[T], Awaitable[R]],
        *,
        concurrency: int = 8,
        progress: str | None = None,
    ) -> list[tuple[T, R | PolySimError]]:
        """Run ``work`` on every item, ``concurrency`` at a time, keeping the input order.

        A failed item gives its error in place of a result; a refused key or an
        unreachable server is raised at once (every other item would fail the same way).
        With ``progress`` (a noun: ``"accounts"``), a status line counts them.
        """
        gate = asyncio.Semaphore(concurrency)
        done = 0
        aborted = False

        async def one(item: T) -> R | PolySimError:
            nonlocal done, aborted
            async with gate:
                if aborted:  # the run is over: start nothing more
                    raise asyncio.CancelledError
                try:
                    return await work(item)
                except (AuthenticationError, PermissionDeniedError, ConnectError):
                    aborted = True
                    raise
                except PolySimError as exc:
                    return exc
                finally:
                    done += 1
                    if progress:
                        self.out.status.update(f"{done}/{len(items)} {progress}")

        results = await _gather(one(item) for item in items)
        return list(zip(items, results, strict=True))

    def run(self, coro: Coroutine[Any, Any, int]) -> int:
        """Run the command's coroutine; Ctrl-C and SIGTERM cancel it (see the module docstring).

        Raises:
            Interrupted: a signal stopped it.
        """
        return asyncio.run(self._guarded(coro))

    async def _guarded(self, coro: Coroutine[Any, Any, int]) -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        stopped: list[int] = []

        def stop(signum: int) -> None:
            stopped.append(signum)
            task.cancel()
            # A second Ctrl-C gets Python's default handler: it stops at once.
            loop.remove_signal_handler(signum)

        signals: list[int] = []
        if threading.current_thread() is threading.main_thread():
            for each in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(each, stop, each)
                except (NotImplementedError, RuntimeError):  # Windows: KeyboardInterrupt instead
                    continue
                signals.append(each)
        try:
            return await coro
        except asyncio.CancelledError:
            if stopped:
                raise Interrupted from None
            raise
        finally:
            self.out.status.close()
            for signum in signals:
                loop.remove_signal_handler(signum)


async def _gather(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """``asyncio.gather`` that cancels and awaits the rest when one raises."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def run(
    args: argparse.Namespace,
    argv: Sequence[str],
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the parsed command ``args`` and return its exit code; never raises.

    ``args.handler`` names ``"module:function"`` in this package: an ``async``
    function ``(Context) -> int`` run on a fresh event loop, or a plain one that
    runs its own coroutines with :meth:`Context.run`.
    """
    out = Output(stdout, stderr, format=getattr(args, "format", None))
    ctx = Context(args, argv, out)
    debug = getattr(args, "debug", False)
    try:
        module, _, function = args.handler.partition(":")
        handler = getattr(importlib.import_module(f"{__package__}.{module}"), function)
        if inspect.iscoroutinefunction(handler):
            return ctx.run(handler(ctx))
        code: int = handler(ctx)
        return code
    except CommandError as exc:
        text = _one_line(str(exc))
        # Every message names the command: "polysim accounts create: --rules: ...".
        out.message(text if text.startswith("polysim") else f"polysim {ctx.name}: {text}")
        return exc.code
    except OutputClosed:  # the reader went away: stop quietly (see the module docstring)
        return ctx.code
    except (Interrupted, KeyboardInterrupt):
        hint = f"; {ctx.resume_hint}" if ctx.resume_hint else ""
        out.message(f"polysim {ctx.name}: interrupted{hint}")
        return EXIT_INTERRUPTED
    except PolySimError as exc:
        if debug:
            traceback.print_exc(file=out.stderr)
        out.message(f"polysim {ctx.name}: {ctx.describe(exc)}")
        return exit_code(exc)
    except OSError as exc:  # writing failed (inputs that cannot be read are usage errors)
        if debug:
            traceback.print_exc(file=out.stderr)
        path = exc.filename or ctx.writing
        where = f" {path}" if path else ""
        hint = f"; {ctx.resume_hint}" if ctx.resume_hint else ""
        out.message(
            _one_line(f"polysim {ctx.name}: cannot write{where}: {exc.strerror or exc}{hint}")
        )
        return EXIT_API_ERROR
    except Exception as exc:
        if debug:
            traceback.print_exc(file=out.stderr)
        hint = "" if debug else " (run with --debug for the traceback)"
        out.message(
            _one_line(f"polysim {ctx.name}: unexpected error: {type(exc).__name__}: {exc}") + hint
        )
        return EXIT_API_ERROR
    finally:
        out.status.close()
