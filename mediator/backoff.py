"""How long to wait before trying again, for every retry the mediator makes: DHIS2 requests (mediator.dhis2.client),
records that DHIS2 could not take (mediator.journal.finish) and registration with the OpenHIM core
(mediator.openhim.heartbeat). openIMIS requests are retried by urllib3 (mediator.openimis.api).

Exponential: `base * 2**attempt`, at most `cap`; requests and the heartbeat are jittered so that many waiting
callers do not come back at once (records that wait come back with their push, which is what they wait for).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def exponential(attempt: int, base: float, cap: float) -> float:
    """The wait before attempt `attempt + 1` (the first retry is attempt 0), without jitter."""
    return min(cap, base * 2 ** min(max(attempt, 0), 64))


def full_jitter(attempt: int, base: float, cap: float, draw: Callable[[float, float], float] = random.uniform) -> float:
    """Anywhere between no wait and the exponential one (for requests many workers send at once)."""
    return draw(0, exponential(attempt, base, cap))


def half_jitter(attempt: int, base: float, cap: float, draw: Callable[[float, float], float] = random.uniform) -> float:
    """Between half the exponential wait and all of it (for a loop that must not retry too soon)."""
    return exponential(attempt, base, cap) * draw(0.5, 1.0)


def retry_after(value: str | None) -> float | None:
    """An HTTP Retry-After as seconds from now: a number of seconds, or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC without saying so
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
