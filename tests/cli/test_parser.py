"""The parser: plain help for every command, one-line usage errors, a start without the client."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import polysim_async_cli as cli

from ._support import iter_subparsers

PARSERS = list(iter_subparsers(cli.build_parser()))


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.prog)
def test_help_is_plain_text_with_every_option_explained(
    parser: object, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = parser.prog.split()[1:]  # type: ignore[attr-defined]
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args([*argv, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for markup in ("``", ":class:", ":mod:", ":func:", "**", ".. "):
        assert markup not in text
    for action in parser._actions:  # type: ignore[attr-defined]
        assert action.help, (parser.prog, action.dest)  # type: ignore[attr-defined]
    if not parser._subparsers:  # type: ignore[attr-defined]  # a command: its exit codes
        assert "exit codes:" in text and "130" in text


def test_every_api_command_says_where_its_key_comes_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv, variable in [
        (["accounts", "get"], "POLYSIM_TENANT_KEY"),
        (["trades", "export"], "POLYSIM_TENANT_KEY"),
        (["evaluate"], "POLYSIM_TENANT_KEY"),
        (["executions", "tail"], "POLYSIM_API_KEY"),
        (["equity"], "POLYSIM_API_KEY"),
    ]:
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args([*argv, "--help"])
        assert variable in capsys.readouterr().out


def test_main_answers_help_and_version_with_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert "usage: polysim" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    version = capsys.readouterr().out.strip()
    assert version == f"polysim-async {__import__('polysim_async').__version__}"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["demo", "--days", "0"], "polysim demo: error: argument --days: must be from 1 to 60"),
        (["demo", "--days", "61"], "--days: must be from 1 to 60"),
        (["demo", "--days", "x"], "--days: must be a whole number"),
        (["demo", "--against", "ftp://x"], "--against: must be an http(s) URL"),
        (["sandbox", "--port", "70000"], "polysim sandbox: error: argument --port"),
        (["nope"], "polysim: error: argument COMMAND: invalid choice"),
        ([], "polysim: error: the following arguments are required: COMMAND"),
        (["accounts"], "polysim accounts: error: the following arguments are required: ACTION"),
        (["trades", "export", "a"], "the following arguments are required: --out"),
        (["trades", "export", "a", "--out", "d", "--shard", "2/2"], "--shard: must be I/N"),
        (["watch", "a", "--shard", "x"], "--shard: must be I/N with 0 <= I < N"),
        (["watch", "a", "--interval", "0"], "--interval: must be above 0"),
        (["equity", "--days", "91"], "--days: must be from 1 to 90"),
        (["equity", "--wallet", "main"], "--wallet: must be all, api or a wallet id"),
        (
            ["evaluate", "a", "--now", "2026-06-01"],
            "--now: must be an ISO-8601 time with an offset",
        ),
        (["evaluate", "a", "--rules", "{}", "--rules-file", "f"], "not allowed with argument"),
        (["accounts", "get", "a", "--json", "--jsonl"], "not allowed with argument"),
        (["trades", "list", "a", "--limit", "0"], "--limit: must be 1 or more, got 0"),
        (
            ["trades", "list", "a", "--bogus"],
            "polysim trades list: error: unrecognized arguments: --bogus",
        ),
        (
            ["accounts", "update", "a", "--rules", "{}", "--nope", "1"],
            "polysim accounts update: error: unrecognized arguments: --nope 1",
        ),
        (["trades", "export", "a", "--out", "d", "--part-size", "0"], "--part-size: must be 1"),
        (["trades", "export", "a", "--out", "d", "--json", "--jsonl"], "not allowed with"),
        (["trades", "list", "a", "--side", "hold"], "--side: invalid choice"),
        (["accounts", "create", "--user", "1"], "the following arguments are required"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], needle: str) -> None:
    code, out, err = _run(*argv)
    assert code == cli.EXIT_USAGE and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert lines[0].endswith("--help)")


def test_help_and_usage_errors_do_not_import_the_client() -> None:
    # The 300 ms start-up budget (measured in benchmarks/cli_startup.py) rests on this.
    script = (
        "import io, sys, polysim_async_cli as cli\n"
        "for argv in (['--help'], ['accounts', 'get', '--help'], ['--version'], ['nope']):\n"
        "    cli.main(argv, stdout=io.StringIO(), stderr=io.StringIO())\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('polysim_async', 'aiohttp')))\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "['polysim_async_cli']", done.stdout + done.stderr


def test_the_console_script_and_python_dash_m() -> None:
    script = shutil.which("polysim", path=str(Path(sys.executable).parent))
    assert script is not None, "the polysim console script is installed with the package"
    for argv in ([script, "--version"], [sys.executable, "-m", "polysim_async", "--version"]):
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 0 and done.stdout.startswith("polysim-async "), done.stderr


def test_usage_errors_of_a_command_name_it() -> None:
    # Found while running (not by the parser): the message still names the command.
    code, out, err = _run(
        "accounts",
        "create",
        "--user",
        "1",
        "--external-id",
        "z",
        "--stage",
        "demo",
        "--balance",
        "1",
        "--rules",
        '{"day_time_zone": "Europe/Pargue"}',
    )
    assert code == cli.EXIT_USAGE and out == ""
    assert err.startswith("polysim accounts create: --rules: day_time_zone 'Europe/Pargue'"), err


_CTRL_C_WHILE_IMPORTING = """
import importlib.abc, os, signal, sys

class CtrlC(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "polysim_async.cli._main":  # the command's code, before its signal handlers
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
import polysim_async_cli
sys.exit(polysim_async_cli.main(["trades", "list", "abc"]))
"""


def test_ctrl_c_while_the_command_is_imported_is_130_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CTRL_C_WHILE_IMPORTING],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr, done.stdout) == (130, "polysim: interrupted\n", "")
