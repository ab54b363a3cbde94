"""Errors raised by the Superset integration."""

from __future__ import annotations

from millpond.errors import MillpondError


class SupersetError(MillpondError):
    """A Superset step failed; the message names the step and carries the log tail.

    A :class:`MillpondError`, so ``millpond serve`` reports it as one line and exits 1.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, stage="serve", hint=hint)
