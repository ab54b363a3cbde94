"""Data classification of columns, read from the model metadata.

A column's classification is a tag in square brackets at the start of its description, in the
model's ``column_descriptions`` (or an external model's column description)::

    email_hash = '[pii:hashed] Salted SHA-256 of the e-mail address, for joins without identity.'

A column without a tag is ``public`` (no personal data). The tags:

* ``pii:name``, ``pii:email``, ``pii:phone``, ``pii:address``: personal data in clear. Allowed
  only in the landed layer (bronze), which is restricted: no reader role can reach it.
* ``pii``: other personal data in clear (same rule).
* ``pii:hashed``: a salted hash of personal data (``macros/pii.py``); pseudonymous, joinable,
  never reversible without the secret salt. Allowed in silver and gold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PUBLIC = "public"
HASHED = "pii:hashed"
CLEAR_PII = ("pii", "pii:name", "pii:email", "pii:phone", "pii:address")
CLASSIFICATIONS = (PUBLIC, HASHED, *CLEAR_PII)

_TAG = re.compile(r"^\s*\[([a-z:_]+)\]\s*")


@dataclass(frozen=True)
class Classified:
    classification: str
    description: str

    @property
    def is_clear_pii(self) -> bool:
        return self.classification in CLEAR_PII


def parse(description: str | None) -> Classified:
    """The classification tag and the rest of a column description (``public`` when untagged).

    An unknown tag is a ValueError naming it, so a typo cannot pass for ``public``.
    """
    text = description or ""
    match = _TAG.match(text)
    if match is None:
        return Classified(PUBLIC, text.strip())
    tag = match.group(1)
    if tag not in CLASSIFICATIONS:
        raise ValueError(f"unknown classification [{tag}]; use one of {', '.join(CLASSIFICATIONS)}")
    return Classified(tag, text[match.end() :].strip())
