"""Named crash points: a test hook, never set in production.

``MONITOR_TEST_CRASH_AT=<point>`` (or ``<point>:<n>`` for the n-th time it is reached)
makes the process SIGKILL itself at that point. Crash tests use it to die exactly where a
real crash hurts most, instead of hoping that a kill timed from outside lands there
(tests/test_crash.py). With the variable unset, a crash point costs one comparison.

Points:
  after_fetch       a source's fetch returned; nothing of it is stored yet
  mid_ingest        a batch of mentions is written inside its transaction, not committed
  after_send        a sink accepted an alert; its outbox row is still `sending`
  before_mark_sent  `mark_sent` is written for that alert but not committed
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "MONITOR_TEST_CRASH_AT"
POINTS = ("after_fetch", "mid_ingest", "after_send", "before_mark_sent")


def _armed(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    point, _, nth = value.partition(":")
    if point not in POINTS or not (nth or "1").isdigit() or int(nth or "1") < 1:
        # A typo would otherwise make a crash test pass without ever crashing.
        raise ValueError(
            f"{ENV}={value!r}: expected <point> or <point>:<n> (n ≥ 1) with a point out of "
            f"{', '.join(POINTS)}; unset it outside crash tests"
        )
    return point, int(nth or "1")


_ARMED = _armed(os.environ.get(ENV))
_reached = 0


def crash_point(name: str) -> None:
    """SIGKILL this process here if ``MONITOR_TEST_CRASH_AT`` names this point."""
    if _ARMED is None or _ARMED[0] != name:
        return
    global _reached
    _reached += 1
    if _reached >= _ARMED[1]:
        sys.stderr.write(f"crash point {name} reached ({_reached}×): SIGKILL\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
