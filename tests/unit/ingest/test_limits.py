from __future__ import annotations

import pytest

from services.ingest.limits import (
    IdempotencyCache,
    IdempotencyConflict,
    RateLimiter,
    RecentRecords,
    retry_after_header,
)


def test_given_a_burst_then_the_next_request_waits_for_one_token() -> None:
    rl = RateLimiter(rate=2.0, burst=3)
    assert [rl.take("p", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.take("p", 0.0) == pytest.approx(0.5)
    assert rl.take("q", 0.0) == 0.0  # buckets are per partner
    assert rl.take("p", 0.6) == 0.0  # refilled


def test_given_rate_zero_then_unlimited() -> None:
    rl = RateLimiter(rate=0, burst=1)
    assert all(rl.take("p", 0.0) == 0.0 for _ in range(100))


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"


def test_given_same_key_and_body_then_the_first_answer_is_replayed() -> None:
    c = IdempotencyCache(entries=10, ttl=60)
    fp = c.fingerprint("POST", "/v1/feeds/police/records", b"{}")
    assert c.begin("p", "k", fp, 0.0) is None
    c.finish("p", "k", 202, {"id": 1}, 1.0)
    stored = c.begin("p", "k", fp, 2.0)
    assert stored is not None
    assert (stored.status, stored.body) == (202, {"id": 1})


def test_given_same_key_other_body_then_422_and_in_flight_then_409() -> None:
    c = IdempotencyCache(entries=10, ttl=60)
    a = c.fingerprint("POST", "/x", b"a")
    b = c.fingerprint("POST", "/x", b"b")
    assert c.begin("p", "k", a, 0.0) is None
    with pytest.raises(IdempotencyConflict) as exc:
        c.begin("p", "k", a, 0.0)
    assert exc.value.status == 409
    c.finish("p", "k", 202, {}, 0.0)
    with pytest.raises(IdempotencyConflict) as exc:
        c.begin("p", "k", b, 0.0)
    assert exc.value.status == 422
    assert c.begin("other-partner", "k", b, 0.0) is None  # keys are per partner


def test_given_a_failed_request_then_its_key_can_be_retried() -> None:
    c = IdempotencyCache(entries=10, ttl=60)
    fp = c.fingerprint("POST", "/x", b"a")
    assert c.begin("p", "k", fp, 0.0) is None
    c.finish("p", "k", None, None, 0.0)
    assert c.begin("p", "k", fp, 0.0) is None


def test_given_ttl_or_capacity_exceeded_then_old_answers_are_forgotten() -> None:
    c = IdempotencyCache(entries=2, ttl=10)
    fp = c.fingerprint("POST", "/x", b"a")
    for k in ("a", "b", "c"):
        c.begin("p", k, fp, 0.0)
        c.finish("p", k, 202, k, 0.0)
    assert c.begin("p", "a", fp, 1.0) is None  # evicted by capacity
    assert c.begin("p", "c", fp, 1.0) is not None
    assert c.begin("p", "c", fp, 20.0) is None  # expired


def test_recent_records_match_id_and_content_only() -> None:
    r = RecentRecords(2)
    r.add("r1", "d1")
    assert r.seen("r1", "d1")
    assert not r.seen("r1", "d2")  # a correction is not a duplicate
    r.add("r2", "d")
    r.add("r3", "d")
    assert not r.seen("r1", "d1")  # evicted
    assert not RecentRecords(0).seen("r1", "d1")


def test_given_answers_over_a_partners_byte_budget_then_its_oldest_are_forgotten() -> None:
    """Issue 12: fresh keys with big answers cannot grow the cache past the budget."""
    cache = IdempotencyCache(entries=1000, ttl=60, bytes_per_partner=10_000)
    body = {"rejected": ["x" * 1000]}
    for i in range(50):
        cache.begin("p", f"k{i}", "f", 0)
        cache.finish("p", f"k{i}", 200, body, 0)
    assert cache.bytes_held("p") <= 10_000
    assert cache.begin("p", "k49", "f", 0) is not None  # the newest is still answered
    cache.begin("q", "k0", "f", 0)
    cache.finish("q", "k0", 200, body, 0)
    assert cache.bytes_held("q") > 0  # another partner keeps its own budget


def test_given_an_answer_over_a_quarter_of_the_budget_then_it_is_not_stored() -> None:
    cache = IdempotencyCache(entries=1000, ttl=60, bytes_per_partner=10_000)
    cache.begin("p", "big", "f", 0)
    cache.finish("p", "big", 200, {"rejected": ["x" * 5000]}, 0)
    assert cache.bytes_held("p") == 0
    assert cache.begin("p", "big", "f", 0) is None  # processed again, which is harmless
