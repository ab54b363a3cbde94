"""Fault injection for the crash-recovery tests: ``MILLPOND_CRASH_AFTER=<point>`` kills the process.

The process exits with 137 (as after SIGKILL) without cleanup, at a named point between two
steps of a stage, so a test can prove that re-running the stage loses and duplicates nothing.
Unset in production; the points are listed in docs/configuration.md.
"""

from __future__ import annotations

import os

from millpond import logs

log = logs.get(__name__)


def crash_point(name: str) -> None:
    """Exit at once with 137 when ``MILLPOND_CRASH_AFTER`` names this point."""
    if os.environ.get("MILLPOND_CRASH_AFTER") == name:
        log.warning("injected_crash", after=name)
        os._exit(137)
