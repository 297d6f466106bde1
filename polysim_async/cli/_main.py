"""Running a parsed ``polysim`` command: its client, its event loop, signals, exit codes.

:func:`run` is called by :func:`polysim_async_cli.main` once the arguments name
a command. It imports the command's module, builds the command's
:class:`Context` and maps every outcome to one exit code and at most one line
on stderr per failure (a traceback only with ``--debug``).

Ctrl-C and SIGTERM cancel the running command at its next ``await``, so its
``finally`` blocks run (a checkpoint is saved, a progress line is cleared, the
export finishes the part it is writing); the command then exits 130 with a
one-line resume hint where resuming makes sense. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import shlex
import signal
import threading
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, Literal, TextIO, TypeVar

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
    PaginationError,
    PermissionDeniedError,
    PolySimError,
    UsageError,
    is_trader_key,
)
from ..export import ExportError
from ._output import Output

__all__ = ["Context", "Interrupted", "Role", "exit_code", "run"]

T = TypeVar("T")
R = TypeVar("R")
Role = Literal["partner", "trader"]

#: The variable each role's key is read from when ``--api-key`` is not given.
KEY_VARIABLES: dict[Role, str] = {"partner": "POLYSIM_TENANT_KEY", "trader": "POLYSIM_API_KEY"}
_KEY_NAMES: dict[Role, str] = {"partner": "a tenant key", "trader": "a trader key (ps_live_...)"}


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


_GRAVITY = (EXIT_AUTH, EXIT_API_ERROR, EXIT_USAGE, EXIT_CHECK_FAILED, EXIT_OK)


class Context:
    """What a command gets: its arguments, its output, its client, and a place for failures.

    Attributes:
        args: the parsed arguments.
        out: stdout/stderr and the data format.
        name: the command as typed (``"accounts get"``), for messages.
        resume_hint: said after "interrupted" (set it when resuming makes sense).
        code: the exit code so far: failures reported with :meth:`fail` raise it.
    """

    def __init__(self, args: argparse.Namespace, argv: Sequence[str], out: Output) -> None:
        self.args = args
        self.argv = list(argv)
        self.out = out
        self.name = " ".join(filter(None, [args.command, getattr(args, "action", None)]))
        self.resume_hint: str | None = None
        self.code = EXIT_OK
        self._role: Role | None = None
        self._key = ""

    @property
    def command_line(self) -> str:
        """The command as typed, ready to paste again (``polysim ...``)."""
        return shlex.join(["polysim", *self.argv])

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
        self._role, self._key = role, key
        return Client(
            key,
            self.args.base_url,
            max_retries=self.args.retries,
            allow_insecure=self.args.allow_insecure,
            **options,
        )

    def describe(self, exc: BaseException) -> str:
        """One line for a failure, with a hint when the key is of the other kind."""
        text = f"{type(exc).__name__}: {exc}" if isinstance(exc, PolySimError) else str(exc)
        if isinstance(exc, AuthenticationError) and self._role is not None:
            trader_key = is_trader_key(self._key)
            if self._role == "partner" and trader_key:
                text += " (this is a trader's ps_live_ key; partner commands need the tenant key)"
            elif self._role == "trader" and not trader_key:
                text += " (trader commands need a trader's ps_live_ key, e.g. in POLYSIM_API_KEY)"
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
        out.message(_one_line(str(exc)))
        return exc.code
    except (Interrupted, KeyboardInterrupt):
        hint = f"; {ctx.resume_hint}" if ctx.resume_hint else ""
        out.message(f"polysim {ctx.name}: interrupted{hint}")
        return EXIT_INTERRUPTED
    except PolySimError as exc:
        if debug:
            traceback.print_exc(file=out.stderr)
        out.message(f"polysim {ctx.name}: {ctx.describe(exc)}")
        return exit_code(exc)
    except OSError as exc:  # a file the command was told to read or write
        if debug:
            traceback.print_exc(file=out.stderr)
        where = f": {exc.filename}" if exc.filename else ""
        out.message(_one_line(f"polysim {ctx.name}: {exc.strerror or exc}{where}"))
        return EXIT_USAGE
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
