"""``polysim demo`` and ``polysim sandbox``, and the error handling every command shares.

``main`` runs in a worker thread (it owns its event loop) while a sandbox the
test controls serves on the test's loop; subprocesses only where the process
boundary is the point (``python -m``, a closed pipe).
"""

from __future__ import annotations

import asyncio
import functools
import io
import re
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import polysim_async as ps
import polysim_async_cli as cli
from polysim_async.cli import _local
from polysim_async.cli._output import Output
from polysim_async.sandbox import Sandbox

ENV = ("POLYSIM_BASE_URL", "POLYSIM_TENANT_KEY", "POLYSIM_API_KEY")


def run(*argv: str) -> tuple[int, str, str]:
    """Run ``polysim argv`` in this thread; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


async def run_async(*argv: str) -> tuple[int, str, str]:
    """Run ``polysim argv`` in a worker thread while this loop keeps serving."""
    return await asyncio.to_thread(run, *argv)


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


class TTY(io.StringIO):
    """A stdin that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


# -- polysim demo --------------------------------------------------------------------------
def test_demo_runs_the_whole_lifecycle_on_an_in_process_sandbox() -> None:
    code, out, err = run("demo", "--days", "2", "--seed", "3")
    assert code == 0 and err == ""
    for step in range(1, 9):
        assert f"{step}. " in out
    assert "outbox: to trader@example.com" in out
    assert "created=True" in out
    assert "48 hourly equity points" in out
    assert re.search(r"\d+ fills in 1 page:", out)  # "1 page", not "1 pages"
    # Step 7 is the rules engine's verdict (static 10% maximum loss: a 9,000.00 floor).
    verdict = re.search(r"loss floor=9000.00.*-> (PASSED|FAILED|IN_PROGRESS)$", out, re.M)
    assert verdict is not None, out
    ending = "reset: status=active" if verdict[1] == "FAILED" else "closed: status=closed"
    assert ending in out


def test_money_is_printed_exactly_as_the_api_sent_it() -> None:
    _, out, _ = run("demo", "--days", "5", "--seed", "1")
    assert "$" not in out.replace("$10,000", "")  # no "$-20.62": money is the wire string
    assert "starting_balance=10000.00" in out
    state = re.search(r"balance=(\S+) equity=(\S+) unrealized_pnl=(\S+)", out)
    assert state is not None
    for value in state.groups():
        assert re.fullmatch(r"-?\d+\.\d\d", value), value  # 2 dp strings, as P5 sends them


@pytest.mark.parametrize("seed", [1, 2, 3, 7])
def test_the_simulated_trader_stays_within_its_means(seed: int) -> None:
    # Issue 9, defect 4: these seeds ran out of cash (400 INSUFFICIENT_BALANCE escaped
    # as a traceback) from 11, 30, 20 and 60 days. The longest run covers every
    # shorter one: the trader's choices do not depend on the day count.
    code, out, err = run("demo", "--days", str(cli.MAX_DAYS), "--seed", str(seed))
    assert (code, err) == (0, ""), err
    assert f"orders over {cli.MAX_DAYS} simulated days" in out


async def test_the_demo_ignores_a_configured_server(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 9, defect 5: with these set, the demo used to register a user (and send an
    # email) on that server. It must stay in process.
    async with Sandbox(seed=5, rate_limits=False) as elsewhere:
        monkeypatch.setenv("POLYSIM_BASE_URL", elsewhere.url)
        monkeypatch.setenv("POLYSIM_TENANT_KEY", elsewhere.tenant_key)
        monkeypatch.setenv("POLYSIM_API_KEY", elsewhere.api_key)
        code, out, _ = await run_async("demo", "--days", "1")
        assert code == 0
        assert out.startswith("polysim demo on an in-process sandbox")
        assert elsewhere.url not in out
        assert elsewhere.outbox() == []  # no login-link email went out there
        listing = elsewhere._core.state.tenants[elsewhere.tenant_id].users_by_ext
        assert listing == {}


async def test_against_a_server_needs_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    async with Sandbox(seed=6, rate_limits=False) as target:
        monkeypatch.setenv("POLYSIM_TENANT_KEY", target.tenant_key)
        # No terminal and no --yes: refused before anything is sent.
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        code, out, err = await run_async("demo", "--against", target.url)
        assert code == cli.EXIT_USAGE and out == ""
        assert "will write to" in err and "--yes" in err.splitlines()[-1]
        # A terminal, and the answer is no: nothing is created, exit 130.
        monkeypatch.setattr(sys, "stdin", TTY("n\n"))
        code, out, err = await run_async("demo", "--against", target.url)
        assert code == cli.EXIT_INTERRUPTED and "aborted" in err
        assert target.outbox() == []
        # The answer is yes: it runs there.
        monkeypatch.setattr(sys, "stdin", TTY("y\n"))
        code, out, err = await run_async("demo", "--against", target.url)
        assert code == 0, err
        assert out.startswith(f"polysim demo against {target.url}")
        assert len(target.outbox()) == 1


async def test_against_with_yes_runs_without_asking() -> None:
    async with Sandbox(seed=8, rate_limits=False) as target:
        code, out, err = await run_async(
            "demo", "--against", target.url, "--api-key", target.tenant_key, "--yes"
        )
        assert code == 0, err
        assert "202 accepted" in out and "current equity only" in out
        assert "closed: status=closed" in out
        assert "will write to" in err and "--api-key" in err
        assert target.tenant_key not in out + err  # the key is never printed


async def test_against_without_a_key_is_a_usage_error() -> None:
    code, out, err = await run_async("demo", "--against", "https://api.example.invalid")
    assert code == cli.EXIT_USAGE and out == ""
    assert "POLYSIM_TENANT_KEY" in one_error_line(err)


async def test_a_refused_key_is_one_line_and_exit_4() -> None:
    async with Sandbox(seed=9, rate_limits=False) as target:
        code, _, err = await run_async(
            "demo", "--against", target.url, "--api-key", "pt_wrong", "--yes"
        )
    assert code == cli.EXIT_AUTH
    line = err.splitlines()[-1]
    assert "AuthenticationError" in line and "Traceback" not in err


async def test_an_unreachable_server_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_local, "Client", functools.partial(ps.Client, max_retries=0))  # no backoff
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = await run_async(
        "demo", "--against", f"http://127.0.0.1:{port}", "--api-key", "pt_x", "--yes"
    )
    assert code == cli.EXIT_API_ERROR
    assert "ConnectError" in err.splitlines()[-1] and "Traceback" not in err


def test_an_unexpected_exception_is_one_line_or_a_traceback_with_debug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(_local, "_lifecycle", boom)
    code, _, err = run("demo")
    assert code == cli.EXIT_API_ERROR
    line = one_error_line(err)
    assert "unexpected error: KeyError" in line and "--debug" in line
    code, _, err = run("--debug", "demo")
    assert code == cli.EXIT_API_ERROR and "Traceback (most recent call last)" in err


def test_ctrl_c_is_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_local, "_lifecycle", interrupted)
    code, _, err = run("demo")
    assert code == cli.EXIT_INTERRUPTED and one_error_line(err) == "polysim demo: interrupted"


def test_a_closed_pipe_is_not_an_error() -> None:
    import subprocess

    # `polysim demo | head -1`: the reader goes away after one line.
    proc = subprocess.Popen(
        [sys.executable, "-m", "polysim_async", "demo", "--days", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait() == 0, err
    assert first.startswith(b"polysim demo on an in-process sandbox")
    assert err == b""


# -- polysim sandbox -----------------------------------------------------------------------
@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_port_in_use_is_one_line_and_exit_1(busy_port: int) -> None:
    code, out, err = run("sandbox", "--port", str(busy_port))
    assert code == cli.EXIT_API_ERROR and out == ""
    line = one_error_line(err)
    assert line.startswith(f"polysim sandbox: cannot listen on 127.0.0.1:{busy_port}")


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("", "http://127.0.0.1:8000"),
        ("::", "http://[::1]:8000"),
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("::1", "http://[::1]:8000"),
        ("localhost", "http://localhost:8000"),
        ("192.168.1.5", "http://192.168.1.5:8000"),
    ],
)
def test_the_printed_url_is_one_the_client_accepts(host: str, url: str) -> None:
    # Issue 9, defect 6: --host 0.0.0.0 printed http://0.0.0.0:PORT, which the client refuses.
    assert _local.connect_url(host, 8000) == url
    if not host.startswith("192"):
        ps.Client("k", url)  # accepted: loopback over plain http


async def _served_lines(*argv: str, out: io.StringIO | None = None) -> tuple[list[str], str]:
    out, err = out or io.StringIO(), io.StringIO()
    args = cli.build_parser().parse_args(["sandbox", "--port", "0", *argv])
    task = asyncio.create_task(_local._serve(args, Output(out, err)))
    for _ in range(400):
        if "control API" in err.getvalue():
            break
        await asyncio.sleep(0.005)
    lines = out.getvalue().splitlines()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return lines, err.getvalue()


def _apply(lines: list[str], env: dict[str, str]) -> None:
    """Apply ``export``/``unset`` lines as a shell would."""
    for line in lines:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = value
        elif line.startswith("unset "):
            env.pop(line.removeprefix("unset "), None)


async def test_sandbox_prints_one_block_per_role_that_works_even_pasted_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 9, defect 7: both keys exported made Client() pick the tenant key, and every
    # trader call failed with 401 INVALID_KEY.
    lines, err = await _served_lines("--seed", "4")
    assert "/_sandbox/" in err and "listening on http://127.0.0.1:" in err
    split = next(i for i, line in enumerate(lines) if "trader" in line)
    partner_block, trader_block = lines[:split], lines[split:]
    assert any(line.startswith("export POLYSIM_TENANT_KEY=pt_sandbox_") for line in partner_block)
    assert "unset POLYSIM_TENANT_KEY" in trader_block
    async with Sandbox(seed=4, rate_limits=False) as sb:  # the same seed: the same keys
        cases = [(partner_block, "partner"), (trader_block, "trader"), (lines, "trader")]
        for block, role in cases:
            env: dict[str, str] = {}
            _apply(block, env)
            for name in ENV:
                monkeypatch.delenv(name, raising=False)
            for name, value in env.items():
                monkeypatch.setenv(name, value.replace(env["POLYSIM_BASE_URL"], sb.url))
            async with ps.Client() as client:
                if role == "trader":
                    assert (await client.account.balance()).currency == "USD"
                else:
                    user = await client.partner.users.register("x", "x@example.com")
                    assert user.user_id


async def test_sandbox_serves_until_cancelled() -> None:
    lines, _ = await _served_lines()
    assert lines[1].startswith("export POLYSIM_BASE_URL=http://127.0.0.1:")


async def test_sandbox_serves_on_with_its_stdout_closed() -> None:
    class Gone(io.StringIO):  # `polysim sandbox | head -1`, or `>&-`
        def write(self, text: str) -> int:
            raise BrokenPipeError

    _, err = await _served_lines(out=Gone())  # still serving when cancelled: no OutputClosed
    assert "control API" in err
