"""Every retry waits by the same rules: exponential, capped, jittered; Retry-After as DHIS2 says it."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from mediator.backoff import exponential, full_jitter, half_jitter, retry_after


def test_the_wait_doubles_up_to_the_cap_and_huge_attempts_do_not_overflow():
    assert [exponential(a, 0.5, 30) for a in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert exponential(10**6, 30, 3600) == 3600
    assert exponential(-1, 30, 3600) == 30


def test_jitter_stays_within_its_bounds():
    lowest, highest = (lambda a, b: a), (lambda a, b: b)
    assert full_jitter(3, 1, 60, lowest) == 0 and full_jitter(3, 1, 60, highest) == 8
    assert half_jitter(3, 1, 60, lowest) == 4 and half_jitter(3, 1, 60, highest) == 8
    for _ in range(200):
        assert 0 <= full_jitter(20, 1, 60) <= 60
        assert 30 <= half_jitter(20, 1, 60) <= 60


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after("120") == 120 and retry_after("-5") == 0
    assert retry_after(None) is None and retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 85 <= (retry_after(later) or 0) <= 90
