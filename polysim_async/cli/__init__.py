"""The ``polysim`` command's implementation: one module per command group.

The parser, the exit codes and the entry point live in the top-level module
``polysim_async_cli`` (so ``polysim --help`` answers without importing the
client); :func:`main` is re-exported here. Modules:

* ``_main``: running a parsed command (client, event loop, signals, exit codes).
* ``_output``: tables, JSON, JSON lines, the progress line, colour rules.
* ``_inputs``: account lists (``--accounts-file``, ``--shard``), JSON options, rules.
* ``_partner``: ``traders ...`` and ``accounts ...``.
* ``_trades``: ``trades list``, ``trades export``, ``watch``.
* ``_evaluate``: ``evaluate``.
* ``_trader``: ``executions tail``, ``equity`` (``_plot``: its chart).
* ``_local``: ``demo`` and ``sandbox``.
"""

from polysim_async_cli import build_parser, main

__all__ = ["build_parser", "main"]
