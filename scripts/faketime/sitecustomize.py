"""Loaded by every Python process of the date-shifted test run (``scripts/test.sh`` puts this
folder on ``PYTHONPATH`` only when ``STETGATE_TEST_FAKETIME`` is set).

The run uses Debian 12's libfaketime 0.9.10 with ``FAKETIME_DONT_FAKE_MONOTONIC=1``: wall-clock
time moves, monotonic time stays real so that timed waits (``threading``, ``queue``, asyncio) keep
working. That libfaketime mistranslates ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``,
which CPython >= 3.11 uses for ``time.sleep``, into a negative deadline: every ``time.sleep``
then fails with ``OSError: [Errno 22] Invalid argument`` (a libfaketime bug, fixed upstream
after 0.9.10). Here ``time.sleep`` waits with ``select`` instead (a relative timeout, which
libfaketime passes through unchanged). Nothing else is touched.
"""

from __future__ import annotations

import os
import select
import time

if (
    "faketime" in os.environ.get("LD_PRELOAD", "")
    and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1"
):

    def _sleep(secs: float, /) -> None:
        seconds = float(secs)  # TypeError for None or a str, as time.sleep
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = time.monotonic() + seconds
        while True:
            select.select([], [], [], seconds)
            seconds = deadline - time.monotonic()
            if seconds <= 0:
                return

    _sleep.__doc__ = time.sleep.__doc__
    time.sleep = _sleep
