"""Pacing for API judges: a requests-per-minute limiter shared by worker threads, and backoff.

The limiter spaces request starts evenly (60 / rpm seconds apart) and lets a 429's Retry-After
pause every worker, not just the one that was told, so a rate-limited judge backs off as a whole.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Mapping


class RateLimiter:
    """Blocks `acquire()` callers so that starts stay under `per_minute` (None = unlimited)."""

    def __init__(self, per_minute: int | None, clock=time.monotonic, sleep=time.sleep):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next_start = 0.0
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start, self._paused_until)
            self._next_start = start + self.interval
        if start > now:
            self._sleep(start - now)

    def pause(self, seconds: float) -> None:
        """No request starts for `seconds` from now (a server's Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


def backoff_delay(retry: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max_s, base_s * 2**retry)]."""
    return rng.uniform(0.0, min(max_s, base_s * (2**retry)))


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a server asked us to wait: `retry-after-ms`, or `Retry-After` (seconds or date)."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
