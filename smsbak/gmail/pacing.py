"""Client-side pacing at Gmail's per-user quota, so the limit is approached, not hit.

Gmail meters 15,000 units a minute per user (an insert costs 25) and allows
short bursts. A token bucket of the same shape lets the first batch go at
once and then spaces batches so the server's own bucket never runs dry.
"""

from __future__ import annotations

import time
from collections.abc import Callable

INSERT_COST = 25
GET_COST = 5
LIST_COST = 5


class TokenBucket:
    def __init__(
        self,
        units_per_minute: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = units_per_minute / 60.0
        self.capacity = capacity
        self._tokens = capacity
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, units: float) -> float:
        """Take ``units``, sleeping until they are there; returns the seconds slept."""
        units = min(units, self.capacity)
        self._refill()
        waited = 0.0
        if self._tokens < units:
            waited = (units - self._tokens) / self.rate
            self._sleep(waited)
            self._refill()
        self._tokens -= units
        return waited

    def delay(self, units: float) -> float:
        """Seconds until ``units`` could be taken, without taking them (0 if now).

        Lets a caller with answers to wait for spend the time collecting them
        instead of sleeping blind in ``acquire``.
        """
        units = min(units, self.capacity)
        self._refill()
        return max(0.0, (units - self._tokens) / self.rate)

    def drain(self) -> None:
        """The server said we are over: assume its bucket is empty and start again."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)


JITTER_RESERVE = 2 * INSERT_COST
"""Units of Gmail's burst the client never spends (0.2 s of quota at 250 units/s).

Requests reach Gmail with jitter: a batch that arrives a little sooner after the
previous one than it left would find the server's bucket a few units short and
earn a 429 and a wait of a second or more. Keeping a standing reserve in the
server's bucket absorbs up to 0.2 s of that at the full rate; pacing 3% under
the quota, as before, absorbed 0.15 s per batch and cost 3% of every backup."""


def quota_bucket(units_per_minute: float, burst_units: float) -> TokenBucket:
    """The client-side bucket for one run: Gmail's rate, its burst less a reserve.

    A batch then holds at most what the bucket can pay at once (48 inserts of 25
    units in 1,200), so every batch leaves the reserve in Gmail's own bucket.
    """
    reserve = min(JITTER_RESERVE, burst_units / 5)
    return TokenBucket(units_per_minute, capacity=burst_units - reserve)
