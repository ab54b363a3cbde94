import random
from datetime import UTC, datetime, timedelta

from millpond.generator.customers import CustomerIndex

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _index(n: int) -> CustomerIndex:
    index = CustomerIndex()
    for number in range(1, n + 1):
        index.add(number, T0 + timedelta(hours=(number * 7919) % n))  # creation times not in number order
    index.freeze()
    return index


def test_an_order_goes_only_to_a_customer_who_existed_at_its_time():
    index, rng = _index(100), random.Random(1)
    cutoff = T0 + timedelta(hours=9, minutes=30)
    existed = {f"cus_{n:06d}" for n in range(1, 101) if (n * 7919) % 100 <= 9}
    picks = {index.existing_at(rng, cutoff) for _ in range(500)}
    assert picks == existed


def test_before_the_first_customer_anyone_may_order():
    index, rng = _index(10), random.Random(2)
    assert len({index.existing_at(rng, T0 - timedelta(days=1)) for _ in range(300)}) == 10


def test_customers_added_later_join_on_freeze_and_picks_are_deterministic():
    index = _index(5)
    index.add(6, T0 - timedelta(days=1))
    assert len(index) == 5
    index.freeze()
    assert len(index) == 6
    assert index.existing_at(random.Random(3), T0 - timedelta(hours=1)) == "cus_000006"
    draws = [[index.any(random.Random(4)) for _ in range(3)], index.sample(random.Random(4), 3)]
    assert draws == [[index.any(random.Random(4)) for _ in range(3)], index.sample(random.Random(4), 3)]
