"""When the dedicated interface counts as down: the rules, apart from how samples are taken.

EBA/GL/2018/07 GL 2.2 asks for uptime and downtime per day, GL 2.4 says how: downtime is the
time the interface was down in the 24-hour period, uptime 100 % minus it, and the interface is
down "when five consecutive requests for access to information … are not replied to within a
total timeframe of 30 seconds", from "the moment it has received the first request in the
series". stetgate decides per UTC minute. A minute is **down** when any of:

1. **no probe sample at all**: no worker was there to say it was up (a crashed or stopped
   instance records nothing, and the bank must prove availability, not the TPP prove
   unavailability), or the minute is missing from the database altogether;
2. **a failed probe**: a worker's periodic probe (the database answers a query, and the
   core-banking backend's circuit breaker is not open) failed or did not finish within
   `PROBE_TIMEOUT_SECONDS`;
3. **a failure run** touched it: `FAILURE_RUN_LENGTH` consecutive AISP/CBPII requests seen by
   one worker, each answered with a 5xx status or not within `UNANSWERED_SECONDS`, with no
   successful answer between them; every minute from the first request of the run to the
   last failing one is down.

Rule 3 is per worker: requests spread over workers are consecutive only within each worker,
so a run split across workers may go unseen; rules 1–2 still see a dead database or backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

FAILURE_RUN_LENGTH: Final = 5
"""EBA/GL/2018/07 GL 2.4(c): five consecutive requests not replied to."""
UNANSWERED_SECONDS: Final = 30.0
"""EBA/GL/2018/07 GL 2.4(c): "within a total timeframe of 30 seconds"."""
PROBE_TIMEOUT_SECONDS: Final = 5.0
"""A probe that has not finished by then is a failed probe (the worker cannot serve)."""


def request_failed(status: int, seconds: float) -> bool:
    """Not replied to in the sense of GL 2.4(c): a server error, or an answer too late.
    4xx answers are replies (the TPP's request was wrong), not failures of the interface."""
    return status >= 500 or seconds >= UNANSWERED_SECONDS


@dataclass(frozen=True)
class MinuteSample:
    """What the workers recorded about one minute (summed over workers)."""

    probes_up: int = 0
    probes_down: int = 0
    failure_runs: int = 0


def minute_is_down(sample: MinuteSample | None) -> bool:
    """The three rules of the module docstring; None is a minute with no row at all."""
    if sample is None or sample.probes_up + sample.probes_down == 0:
        return True
    return sample.probes_down > 0 or sample.failure_runs > 0


_NONE: Final = range(0)


class FailureRuns:
    """One worker's current run of failed information requests (rule 3). Not thread-safe: the
    recorder calls it under its lock."""

    __slots__ = ("_first_minute", "_length", "_marked_until")

    def __init__(self) -> None:
        self._first_minute = 0
        self._length = 0
        self._marked_until = -1

    def observe(self, minute: int, failed: bool) -> range:
        """Record one request (``minute`` as epoch minutes); return the minutes this request
        newly makes down (empty unless a run reached its length)."""
        if not failed:
            self._length = 0
            return _NONE
        if self._length == 0:
            self._first_minute = minute
            self._marked_until = -1
        self._length += 1
        if self._length < FAILURE_RUN_LENGTH:
            return _NONE
        start = max(self._first_minute, self._marked_until + 1)
        newly = range(start, minute + 1)
        if len(newly):
            self._marked_until = minute
        return newly
