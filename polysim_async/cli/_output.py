"""Where a command writes: data on stdout (table, JSON, JSON lines), messages on stderr.

* The format: ``--table``, ``--json`` (one document) or ``--jsonl`` (one object
  per line); by default a table when stdout is a terminal (even a dumb one), else JSON.
* Money is printed exactly as the API sent it: decimals keep every digit and
  trailing zero, never a float.
* Progress (:class:`StatusLine`) is drawn on stderr only when stderr is a
  terminal that understands cursor control (not ``TERM=dumb``), redrawn in place,
  and always leaves the terminal clean: the cursor shown and no partial line.
* Colour only on a terminal, never with ``NO_COLOR`` set (https://no-color.org).
* A closed stdout (``polysim ... | head``, or none at all: ``>&-``) is not an
  error: the first line that cannot be written raises :class:`OutputClosed`,
  which stops the command (exit code so far, 0 when all went well; no message).

No progress library: a status line is a few escape codes, and both candidates
(tqdm, rich) cost about 90 ms of import and count their own unit for the ETA,
not the rate budget the export reports (see the README's dependency table).
"""

from __future__ import annotations

import enum
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple, TextIO

import msgspec

__all__ = [
    "Column",
    "Feed",
    "Format",
    "Output",
    "OutputClosed",
    "Painted",
    "StatusLine",
    "cell",
    "color_allowed",
    "is_terminal",
]

Format = Literal["table", "json", "jsonl"]
#: A table column: its header and how to get its cell from a row.
Column = tuple[str, Callable[[Any], object]]

_HIDE_CURSOR = "\x1b[?25l"
_SHOW_CURSOR = "\x1b[?25h"
_CLEAR_LINE = "\r\x1b[K"
_BOLD, _RESET = "\x1b[1m", "\x1b[0m"
_COLORS = {"green": "\x1b[32m", "red": "\x1b[31m", "yellow": "\x1b[33m"}
_encoder = msgspec.json.Encoder()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that understands cursor control (not ``TERM=dumb``)."""
    return _isatty(stream) and os.environ.get("TERM", "") != "dumb"


def color_allowed(stream: TextIO) -> bool:
    """Colour on ``stream``: only a terminal, and never with ``NO_COLOR`` set to anything."""
    return is_terminal(stream) and not os.environ.get("NO_COLOR")


def cell(value: object) -> str:
    """A value as a table cell: decimals as sent (every digit), ``-`` for nothing."""
    if value is None:
        return "-"
    if isinstance(value, Painted):
        return value.text
    if isinstance(value, Decimal):
        return format(value, "f")  # "10000.00" stays "10000.00"; never "1E+4"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, msgspec.Raw):  # a JSON value kept exactly as the server sent it
        return bytes(value).decode()
    if isinstance(value, Mapping):
        return _encoder.encode(dict(value)).decode()
    if isinstance(value, (list, tuple, msgspec.Struct)):
        return _encoder.encode(value).decode()
    return str(value)


class Painted(NamedTuple):
    """A table cell shown in ``color`` (green, red or yellow) where colour is allowed."""

    text: str
    color: str


class StatusLine:
    """One line of progress on stderr, redrawn in place; silent when stderr is not a terminal.

    Redraws are throttled to ``interval`` seconds (the first and a forced one are
    drawn at once). The line is cut to the terminal's width so it never wraps.
    :meth:`close` clears it and shows the cursor again; call it in ``finally``.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        enabled: bool,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self.enabled = enabled
        self._interval = interval
        self._clock = clock
        self._text = ""
        self._shown = False
        self._drawn_at: float | None = None

    def update(self, text: str, *, force: bool = False) -> None:
        """Show ``text`` (at most every ``interval`` seconds unless ``force``)."""
        self._text = text
        if not self.enabled:
            return
        now = self._clock()
        if not force and self._drawn_at is not None and now - self._drawn_at < self._interval:
            return
        self._drawn_at = now
        self._draw()

    def set(self, text: str) -> None:
        """Change the text without drawing it; the next redraw (around a line of data) shows it."""
        self._text = text

    def _draw(self) -> None:
        try:
            columns = os.get_terminal_size(self._stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
        if columns <= 0 or "COLUMNS" in os.environ:  # no size known, or the user's choice
            columns = shutil.get_terminal_size((80, 24)).columns
        width = max(20, columns - 1)
        prefix = "" if self._shown else _HIDE_CURSOR
        self._shown = True
        self._write(f"{prefix}{_CLEAR_LINE}{self._text[:width]}")

    def suspend(self) -> None:
        """Clear the line (before other output goes to the same terminal)."""
        if self.enabled and self._shown:
            self._write(_CLEAR_LINE)

    def resume(self) -> None:
        """Draw the last text again after :meth:`suspend`."""
        if self.enabled and self._shown:
            self._draw()

    def close(self) -> None:
        """Clear the line and show the cursor; idempotent."""
        if self.enabled and self._shown:
            self._write(_CLEAR_LINE + _SHOW_CURSOR)
        self._shown = False
        self.enabled = False

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # a terminal that went away: stop drawing
            self.enabled = False


class OutputClosed(Exception):
    """Stdout is closed (its reader went away, or there is none): the command must stop.

    Raised by :meth:`Output.line` instead of dropping the line, so a stream
    (``executions tail``, ``watch``) or a long listing stops at once and
    acknowledges nothing it could not write. :func:`polysim_async.cli._main.run`
    ends the command quietly with the exit code so far.
    """


class Output:
    """The stdout and stderr of one command run, and the data format it asked for."""

    def __init__(
        self,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        *,
        format: Format | None = None,
    ) -> None:
        self._stdout = stdout
        self._stderr = stderr
        #: stdout cannot take data any more (a broken pipe, or no stdout at all).
        self.closed = self.stdout is None
        self.format: Format = format or ("table" if _isatty(self.stdout) else "json")
        self.status = StatusLine(self.stderr, enabled=is_terminal(self.stderr))

    @property
    def stdout(self) -> TextIO:
        # sys.stdout is None when the process was started without one (``>&-``).
        return self._stdout or sys.stdout

    @property
    def stderr(self) -> TextIO:
        return self._stderr or sys.stderr

    # -- plain lines ---------------------------------------------------------------------
    def line(self, text: str = "") -> None:
        """Write one line of data to stdout and flush it (clearing the status line around it).

        Returns only once the line reached stdout (the pipe or file), so a
        caller may then acknowledge what the line reports.

        Raises:
            OutputClosed: stdout is closed (a broken pipe, or none at all); the
                line was not written, and no later line will be.
        """
        if self.closed:
            raise OutputClosed
        stream = self.stdout
        self.status.suspend()
        try:
            stream.write(text + "\n")
            stream.flush()
        except BrokenPipeError:
            self.closed = True
            if stream is sys.stdout:
                _point_at_devnull(stream)
            raise OutputClosed from None
        finally:
            self.status.resume()

    def message(self, text: str) -> None:
        """Write one line to stderr (clearing the status line around it); lost if it is closed."""
        self.status.suspend()
        stream = self.stderr
        try:
            stream.write(text + "\n")
            stream.flush()
        except (AttributeError, OSError, ValueError):  # no stderr (2>&-), or its reader went away
            pass
        self.status.resume()

    # -- data ----------------------------------------------------------------------------
    def json(self, value: object) -> None:
        """Write ``value`` as one indented JSON document (decimals as exact strings)."""
        self.line(msgspec.json.format(_encoder.encode(value), indent=2).decode())

    def jsonl(self, value: object) -> None:
        """Write ``value`` as one JSON line."""
        self.line(_encoder.encode(value).decode())

    def table(self, columns: Sequence[Column], rows: Iterable[Any]) -> None:
        """Write ``rows`` as an aligned table with a header; numbers right-aligned.

        A cell may be :class:`Painted`: coloured when stdout may be, aligned by its text.
        """
        headers = [name for name, _ in columns]
        values = [[get(row) for _, get in columns] for row in rows]
        if not values:
            return
        cells = [[cell(v) for v in r] for r in values]
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        numeric = [
            all(_is_number(r[i]) or r[i] == "-" for r in cells) and any(r[i] != "-" for r in cells)
            for i in range(len(headers))
        ]
        colour = color_allowed(self.stdout)

        def render(texts: Sequence[str], raw: Sequence[object]) -> str:
            out = []
            for text, value, width, number in zip(texts, raw, widths, numeric, strict=True):
                padded = text.rjust(width) if number else text.ljust(width)
                if colour and isinstance(value, Painted):
                    padded = padded.replace(text, f"{_COLORS[value.color]}{text}{_RESET}", 1)
                out.append(padded)
            return "  ".join(out).rstrip()

        head = render(headers, headers)
        self.line(f"{_BOLD}{head}{_RESET}" if colour else head)
        for texts, raw in zip(cells, values, strict=True):
            self.line(render(texts, raw))

    def fields(self, value: msgspec.Struct | Mapping[str, Any]) -> None:
        """Write one object as ``name  value`` lines."""
        items = (
            value.items()
            if isinstance(value, Mapping)
            else ((f, getattr(value, f)) for f in value.__struct_fields__)
        )
        pairs = [(_wire_name(value, name), cell(v)) for name, v in items]
        width = max((len(name) for name, _ in pairs), default=0)
        for name, text in pairs:
            self.line(f"{name.ljust(width)}  {text}")

    def records(
        self, items: Sequence[Any], columns: Sequence[Column], *, one: bool = False
    ) -> None:
        """Write ``items`` in the chosen format.

        Args:
            items: Structs or mappings.
            columns: the table's columns.
            one: ``items`` holds exactly one object that ``--json`` prints as
                an object, not as a one-element array.
        """
        if self.format == "json":
            self.json(items[0] if one else list(items))
        elif self.format == "jsonl":
            for item in items:
                self.jsonl(item)
        elif one:
            self.fields(items[0])
        else:
            self.table(columns, items)


class Feed:
    """Items of an endless stream (watch, tail), written as they come.

    ``table``: one readable line per item (``line``). ``jsonl``: one object per
    line (``data`` gives the object to encode; default the item itself).
    ``json``: one array, an item per line (``[{...}``, ``,{...}``, ``]``), closed
    by :meth:`close` (call it in ``finally``: the document is complete even
    after Ctrl-C).
    """

    def __init__(
        self, out: Output, line: Callable[[Any], str], data: Callable[[Any], object] = lambda x: x
    ) -> None:
        """Raises :class:`OutputClosed` at once when stdout is already closed (nothing to feed)."""
        if out.closed:
            raise OutputClosed
        self._out = out
        self._line = line
        self._data = data
        self._opened = False
        self.count = 0

    def write(self, item: Any) -> None:
        """Write one item (its line flushed when this returns).

        Raises:
            OutputClosed: stdout is closed; the item was not written.
        """
        self.count += 1
        fmt = self._out.format
        if fmt == "table":
            self._out.line(self._line(item))
        elif fmt == "jsonl":
            self._out.jsonl(self._data(item))
        else:
            text = _encoder.encode(self._data(item)).decode()
            self._out.line(("," if self._opened else "[") + text)
            self._opened = True

    def close(self) -> None:
        """End the JSON array (``[]`` when nothing came); nothing when stdout is closed."""
        if self._out.format == "json" and not self._out.closed:
            self._out.line("]" if self._opened else "[]")
            self._opened = False


def _point_at_devnull(stream: TextIO) -> None:
    """Keep the interpreter's own flush at exit from failing on a closed pipe."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a real file
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _wire_name(value: object, field: str) -> str:
    if isinstance(value, msgspec.Struct):
        info = msgspec.structs.fields(value)
        for f in info:
            if f.name == field:
                return f.encode_name
    return field


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return not text.isalpha()
