"""Errors with context; the CLI turns them into one clear line and a non-zero exit."""

from __future__ import annotations


class MillpondError(Exception):
    """Base error: ``stage`` names where it happened, ``hint`` says what to do."""

    def __init__(self, message: str, *, stage: str = "millpond", hint: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.hint = hint

    def __str__(self) -> str:
        text = f"[{self.stage}] {self.args[0]}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ServiceError(MillpondError):
    """A local service could not be started, reached or stopped."""


class StageFailed(MillpondError):
    """A pipeline stage ran but its result must not be published."""


class PipelineBusy(MillpondError):
    """Another Millpond process holds the data dir's pipeline lock."""
