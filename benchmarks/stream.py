"""Stream: fills/s through ``client.executions.stream()`` from the sandbox, and delivery latency.

Needs the execution stream (``polysim_async/executions.py``) and the sandbox; until
both exist it reports that it did not run.
"""

from __future__ import annotations

from ._common import Row
from ._server import sandbox_available

__all__ = ["run"]

NAME = "stream"


def _stream_available() -> bool:
    try:
        import polysim_async.executions  # noqa: F401
    except ImportError:
        return False
    return True


def run(*, quick: bool = False) -> list[Row]:
    """Measure the execution stream, or say why it cannot run yet."""
    missing = []
    if not _stream_available():
        missing.append("client.executions.stream() (polysim_async/executions.py)")
    if not sandbox_available():
        missing.append("polysim_async.sandbox.Sandbox")
    if missing:
        return [Row(NAME, "did not run", "-", note="not available yet: " + ", ".join(missing))]
    raise NotImplementedError("stream benchmark not written yet")
