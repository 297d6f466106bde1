"""The output rules in process: formats, money cells, tables, feeds, the status line, exit codes."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

import polysim_async as ps
from polysim_async.cli._main import Context, exit_code
from polysim_async.cli._output import Feed, Output, OutputClosed, Painted, StatusLine, cell
from polysim_async.cli._trades import progress_text, summary_text
from polysim_async.export import ExportError, ExportProgress, ExportSummary
from polysim_async_cli import build_parser


class Terminal(io.StringIO):
    """A stream that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


def test_money_cells_keep_every_digit_as_sent() -> None:
    assert cell(Decimal("10000.00")) == "10000.00"
    assert cell(Decimal("-242.50000000000000000")) == "-242.50000000000000000"
    assert cell(Decimal("1E-7")) == "0.0000001"  # never scientific notation
    assert cell(None) == "-" and cell(True) == "true" and cell(ps.Side.BUY) == "BUY"
    assert cell(datetime(2026, 6, 1, tzinfo=timezone.utc)) == "2026-06-01T00:00:00+00:00"
    assert cell({"a": Decimal("1.50")}) == '{"a":"1.50"}'


def test_the_default_format_follows_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    assert Output(Terminal(), io.StringIO()).format == "table"
    assert Output(io.StringIO(), io.StringIO()).format == "json"
    assert Output(io.StringIO(), io.StringIO(), format="jsonl").format == "jsonl"
    monkeypatch.setenv("TERM", "dumb")  # no cursor control, still a terminal to read
    dumb = Output(Terminal(), Terminal())
    assert dumb.format == "table" and not dumb.status.enabled


def test_tables_align_numbers_right_and_colour_only_where_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("NO_COLOR", raising=False)
    rows = [("a", Decimal("5.50"), Painted("passed", "green")), ("bb", Decimal("10.25"), None)]
    columns = [("NAME", lambda r: r[0]), ("MONEY", lambda r: r[1]), ("STATUS", lambda r: r[2])]
    plain = io.StringIO()
    Output(plain, io.StringIO(), format="table").table(columns, rows)
    assert plain.getvalue().splitlines() == [
        "NAME  MONEY  STATUS",
        "a      5.50  passed",
        "bb    10.25  -",
    ]
    coloured = Terminal()
    Output(coloured, io.StringIO(), format="table").table(columns, rows)
    lines = coloured.getvalue().splitlines()
    assert lines[0] == "\x1b[1mNAME  MONEY  STATUS\x1b[0m"
    assert lines[1] == "a      5.50  \x1b[32mpassed\x1b[0m"
    monkeypatch.setenv("NO_COLOR", "1")
    quiet = Terminal()
    Output(quiet, io.StringIO(), format="table").table(columns, rows)
    assert "\x1b" not in quiet.getvalue()


def test_a_feed_as_json_is_one_document_even_when_cut_short() -> None:
    for items in ([], [{"a": 1}], [{"a": 1}, {"b": Decimal("2.50")}]):
        out = io.StringIO()
        feed = Feed(Output(out, io.StringIO(), format="json"), str)
        for item in items:
            feed.write(item)
        feed.close()
        assert json.loads(out.getvalue()) == json.loads(json.dumps(items, default=str))
        assert len(out.getvalue().splitlines()) == max(1, len(items) + 1)


def test_the_status_line_throttles_cuts_to_the_width_and_cleans_up() -> None:
    now = [0.0]
    stream = Terminal()
    status = StatusLine(stream, enabled=True, interval=0.1, clock=lambda: now[0])
    status.update("one")
    status.update("two")  # within the interval: not drawn
    now[0] = 0.2
    status.update("three" * 100)
    status.close()
    status.close()
    text = stream.getvalue()
    assert text.startswith("\x1b[?25l\r\x1b[Kone") and "two" not in text
    assert text.endswith("\r\x1b[K\x1b[?25h") and text.count("\x1b[?25h") == 1
    assert max(len(part) for part in text.split("\r\x1b[K")) < 200
    silent = io.StringIO()
    off = StatusLine(silent, enabled=False)
    off.update("x", force=True)
    off.close()
    assert silent.getvalue() == ""


def test_data_lines_clear_and_redraw_the_status_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    term = Terminal()
    out = Output(term, term, format="table")
    out.status.update("working")
    out.line("data")
    out.status.close()
    assert term.getvalue() == (
        "\x1b[?25l\r\x1b[Kworking" + "\r\x1b[K" + "data\n" + "\r\x1b[Kworking" + "\r\x1b[K\x1b[?25h"
    )


def test_a_closed_stdout_stops_the_writer_instead_of_dropping_lines() -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    err = io.StringIO()
    out = Output(Closed(), err, format="json")
    feed = Feed(out, str)
    with pytest.raises(OutputClosed):  # the caller learns the line was not written
        feed.write({"a": 1})
    assert out.closed and feed.count == 1
    with pytest.raises(OutputClosed):  # and every later one, never dropped silently
        out.jsonl({"a": 2})
    feed.close()  # in ``finally``: no "]" for a reader that is gone, and no error
    with pytest.raises(OutputClosed):  # a feed on a closed stdout does not start
        Feed(out, str)
    assert err.getvalue() == ""


def test_no_stdout_at_all_is_a_closed_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout", None)  # started with ``>&-``
    out = Output(None, io.StringIO())
    assert out.closed and out.format == "json"
    with pytest.raises(OutputClosed):
        out.line("x")
    monkeypatch.setattr("sys.stderr", None)  # and ``2>&-``: messages are lost, not an error
    Output(io.StringIO(), None).message("lost")


def _summary(**changes: object) -> ExportSummary:
    fields: dict[str, object] = dict(
        out_dir=Path("/x"),
        format="csv",
        accounts=3,
        completed=3,
        resumed=0,
        fills=1230,
        parts=("part-00000001.csv",),
        total_fills=5000,
        seconds=1.25,
    )
    fields.update(changes)
    return ExportSummary(**fields)  # type: ignore[arg-type]


def test_export_progress_and_summary_lines() -> None:
    progress = ExportProgress(
        accounts_total=10,
        accounts_done=3,
        accounts_failed=1,
        fills_fetched=12345,
        fills_written=10000,
        parts_written=1,
        requests=40,
        elapsed=10.0,
        fills_per_second=1234.5,
        eta=3725.0,
    )
    assert progress_text(progress) == (
        "[########............] 4/10 accounts (1 failed) · 12,345 fills · 1,234 fills/s"
        " · ETA 1:02:05"
    )
    early = ExportProgress(
        accounts_total=2,
        accounts_done=0,
        accounts_failed=0,
        fills_fetched=0,
        fills_written=0,
        parts_written=0,
        requests=0,
        elapsed=0.0,
        fills_per_second=None,
        eta=None,
    )
    assert progress_text(early).endswith("0 fills · - fills/s · ETA --:--")
    assert summary_text(_summary()) == (
        "exported 1,230 fills of 3/3 accounts to /x (1 new part, csv) in 1.2 s;"
        " the directory holds 5,000 fills"
    )
    failed = ps.ServerError("down", status=503, code="UNAVAILABLE")
    missing = ps.NotFoundError("no such account", status=404, code="ACCOUNT_NOT_FOUND")
    assert summary_text(_summary(completed=2, parts=()), {"a": failed}).endswith(
        "(0 new parts, csv) in 1.2 s; the directory holds 5,000 fills;"
        " 1 account(s) failed: run the same command again to resume them"
    )
    # A 404 cannot be resumed: the accounts are named instead.
    assert summary_text(_summary(completed=1, parts=()), {"a": missing, "b": failed}).endswith(
        "; 1 account(s) not found: a;"
        " 1 account(s) failed: run the same command again to resume them"
    )
    assert "resume" not in summary_text(_summary(completed=1, parts=()), {"a": missing})


def test_exit_codes_and_which_one_wins() -> None:
    auth = ps.AuthenticationError("refused", status=401, code="INVALID_KEY")
    missing = ps.NotFoundError("no such account", status=404, code="ACCOUNT_NOT_FOUND")
    assert exit_code(auth) == 4 and exit_code(missing) == 1
    assert exit_code(ps.InvalidArgumentError("x")) == 2
    assert exit_code(ps.MissingDependencyError("x")) == 2
    assert exit_code(ps.PaginationError("x")) == 1  # the server's fault, not the user's
    assert exit_code(ExportError({"a": missing}, _summary())) == 1
    assert exit_code(ExportError({"a": missing, "b": auth}, _summary())) == 4
    args = build_parser().parse_args(["evaluate", "x"])
    ctx = Context(args, ["evaluate", "x"], Output(io.StringIO(), io.StringIO()))
    ctx.record(3)
    assert ctx.code == 3
    ctx.record(1)  # an account that could not be read outranks a failed check
    assert ctx.code == 1
    ctx.record(3)
    assert ctx.code == 1
    ctx.record(4)
    assert ctx.code == 4
