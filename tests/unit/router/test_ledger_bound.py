"""The router's delivery ledger is bounded per group and still refuses every redelivery a crash
can cause."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from services.core.config.settings import Settings
from services.router.ledger import DeliveryLedger, NewestIds


def test_memory_is_bounded_per_group_and_the_oldest_ids_are_forgotten_first() -> None:
    ledger = DeliveryLedger(max_per_group=1000)
    for i in range(5000):
        assert ledger.first_time("grp-a", f"r{i}")
    for i in range(10):
        assert ledger.first_time("grp-b", f"r{i}")
    assert ledger.size() == 1000 + 10
    # The newest 1000 of grp-a are still refused; older ones would be delivered again.
    assert not any(ledger.first_time("grp-a", f"r{i}") for i in range(4000, 5000))
    assert ledger.first_time("grp-a", "r3999")
    # Groups do not evict each other.
    assert not ledger.first_time("grp-b", "r0")


def test_a_crashed_batch_redelivered_after_the_bound_filled_is_refused_whole() -> None:
    batch = 2000
    ledger = DeliveryLedger(max_per_group=4 * batch)
    for i in range(50_000):
        ledger.first_time("grp-a", f"r{i}")
    # The uncommitted batch (the last one read) comes round again after the restart.
    assert [rid for i in range(50_000 - batch, 50_000)
            if ledger.first_time("grp-a", rid := f"r{i}")] == []


def test_forget_lets_a_retry_through_and_keeps_the_bound_exact() -> None:
    ledger = DeliveryLedger(max_per_group=3)
    for rid in ("a", "b", "c"):
        ledger.first_time("g", rid)
    ledger.forget("g", "c")  # the send of c failed
    ledger.forget("g", "a")  # an older one (not the last) also works
    ledger.forget("g", "zz")  # unknown: no effect
    assert ledger.size() == 1
    assert ledger.first_time("g", "c")
    assert ledger.first_time("g", "a")
    assert ledger.first_time("g", "d")  # evicts b, the oldest remembered
    assert ledger.size() == 3
    assert ledger.first_time("g", "b")
    assert not ledger.first_time("g", "d")


def test_seeding_keeps_the_newest_and_ignores_repeats() -> None:
    ledger = DeliveryLedger(max_per_group=3)
    ledger.seed("g", ["a", "b", "b", "c", "d"])
    assert ledger.size() == 3
    assert ledger.first_time("g", "a")
    assert not ledger.first_time("g", "d")
    ledger.seed("g", {"x"})  # the hot-spot runner seeds with a set
    assert not ledger.first_time("g", "x")


def test_newest_ids_keeps_the_newest_of_interleaved_partitions_in_time_order() -> None:
    # Three partitions read one after the other, as a scan may: a plain "last n read" would
    # keep only partition 2 and lose the newest ids of 0 and 1.
    parts = {p: [(1000 * i + p, f"p{p}-{i}") for i in range(100)] for p in range(3)}
    newest = NewestIds(30)
    for p in (0, 1, 2):
        for ts, rid in parts[p]:
            newest.add(ts, rid)
    want = [rid for _, rid in sorted(x for p in parts.values() for x in p)[-30:]]
    assert newest.oldest_first() == want

    shuffled = [x for p in parts.values() for x in p]
    random.Random(7).shuffle(shuffled)
    again = NewestIds(30)
    for ts, rid in shuffled:
        again.add(ts, rid)
    assert again.oldest_first() == want


def test_equal_timestamps_keep_read_order() -> None:
    newest = NewestIds(2)
    for rid in ("a", "b", "c"):
        newest.add(5, rid)
    assert newest.oldest_first() == ["b", "c"]


def test_settings_refuse_a_bound_smaller_than_a_few_batches() -> None:
    assert Settings().router_ledger_ids_per_group >= 4 * Settings().batch_max_records
    with pytest.raises(ValidationError, match="router_ledger_ids_per_group"):
        Settings(router_ledger_ids_per_group=1000, batch_max_records=2000)
    with pytest.raises(ValueError):
        DeliveryLedger(max_per_group=0)
