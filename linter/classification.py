"""Project rule for ``sqlmesh lint``: the data classification of every column (``millpond.classification``)."""

from __future__ import annotations

from sqlmesh.core.linter.rule import Rule, RuleViolation
from sqlmesh.core.model import Model

from millpond.classification import HASHED, parse

# Layers that consumers may reach (silver feeds gold, gold is published): personal data only hashed.
MASKED_LAYERS = ("silver", "gold")


def layer(model: Model) -> str:
    """The schema of the model, which is its layer (bronze, silver, gold)."""
    return model.fully_qualified_table.db.lower()


class ClassifiedColumns(Rule):
    """Every column classification tag is known, and no silver or gold column holds personal data in clear."""

    def check_model(self, model: Model) -> list[RuleViolation] | None:
        violations = []
        for column, description in sorted((model.column_descriptions or {}).items()):
            try:
                classified = parse(description)
            except ValueError as exc:
                violations.append(self.violation(f"{model.name}.{column}: {exc}"))
                continue
            if classified.is_clear_pii and layer(model) in MASKED_LAYERS:
                violations.append(
                    self.violation(
                        f"{model.name}.{column} is classified [{classified.classification}]: personal data in clear"
                        f" stays in bronze; mask it in silver (@pii_hash, tagged [{HASHED}]) or drop it"
                    )
                )
        return violations or None
