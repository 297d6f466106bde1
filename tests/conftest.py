"""Shared test fixtures. Every test talks only to loopback; none sleeps for real."""

from __future__ import annotations

from . import _aioresponses_compat

_aioresponses_compat.install()
