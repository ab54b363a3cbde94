"""Project rules for ``sqlmesh lint`` (SQLMesh loads every Rule subclass in ``linter/*.py``)."""

from __future__ import annotations

from sqlmesh.core.linter.rule import Rule, RuleViolation
from sqlmesh.core.model import Model


class NoMissingOwner(Rule):
    """Every model has an owner, the team paged when it fails (``model_defaults.owner`` gives one)."""

    def check_model(self, model: Model) -> RuleViolation | None:
        return None if model.owner else self.violation()
