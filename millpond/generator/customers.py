"""Who can place an order: the customers' creation times, compact, without their documents."""

from __future__ import annotations

import random
from array import array
from bisect import bisect_right
from datetime import datetime


def customer_id(number: int) -> str:
    return f"cus_{number:06d}"


def id_number(doc_id: str) -> int:
    """``cus_000042`` -> 42 (also for products and orders)."""
    return int(doc_id.rsplit("_", 1)[1])


class CustomerIndex:
    """Customer numbers sorted by creation time (16 bytes each), so a pick is a bisection, not a scan."""

    def __init__(self) -> None:
        self._created = array("d")  # POSIX seconds, ascending
        self._numbers = array("q")
        self._pending: list[tuple[float, int]] = []

    def add(self, number: int, created: datetime) -> None:
        """Queue a customer; ``freeze`` makes the queued ones pickable."""
        self._pending.append((created.timestamp(), number))

    def freeze(self) -> None:
        merged = sorted([*zip(self._created, self._numbers, strict=True), *self._pending])
        self._created = array("d", (c for c, _ in merged))
        self._numbers = array("q", (n for _, n in merged))
        self._pending = []

    def __len__(self) -> int:
        return len(self._numbers)

    def existing_at(self, rng: random.Random, moment: datetime) -> str:
        """A random customer created at or before ``moment`` (any customer when there is none)."""
        eligible = bisect_right(self._created, moment.timestamp()) or len(self._numbers)
        return customer_id(self._numbers[rng.randrange(eligible)])

    def any(self, rng: random.Random) -> str:
        return customer_id(self._numbers[rng.randrange(len(self._numbers))])

    def sample(self, rng: random.Random, k: int) -> list[str]:
        return [customer_id(self._numbers[i]) for i in rng.sample(range(len(self._numbers)), k)]
