"""Fault injection for the crash-recovery tests: ``MILLPOND_CRASH_AFTER=<point>`` kills the process.

The process exits with 137 (as after SIGKILL) without cleanup, at a named point between two
steps of a stage, so a test can prove that re-running the stage loses and duplicates nothing.
The CLI arms it from ``Settings.crash_after``; unset in production. The points are listed in
docs/configuration.md.
"""

from __future__ import annotations

import os

from millpond import logs

log = logs.get(__name__)
_armed: str | None = None


def arm(point: str | None) -> None:
    """Make :func:`crash_point` exit at ``point`` (None disarms)."""
    global _armed  # noqa: PLW0603 - process-wide, like the logging configuration
    _armed = point


def crash_point(name: str) -> None:
    """Exit at once with 137 when the armed point is this one."""
    if _armed == name:
        log.warning("fault.injected_crash", after=name)
        os._exit(137)
