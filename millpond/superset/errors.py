"""Errors raised by the Superset integration."""

from __future__ import annotations


class SupersetError(RuntimeError):
    """A Superset step failed; the message names the step and carries the log tail."""
