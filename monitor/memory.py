"""Keep the daemon's resident memory small on a 1 GB VPS.

glibc gives every thread that allocates its own malloc arena (up to 8 per core) and keeps
freed memory in each. The daemon's worker threads (one per SQLite connection, feed parsing
in a thread pool) then hold tens of MB that Python has long freed. Two arenas is the usual
remedy for threaded Python services (the same as MALLOC_ARENA_MAX=2 in the environment);
it must be set before those threads start. Measured by `bench/memory.py`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas() -> bool:
    """Apply the arena limit unless MALLOC_ARENA_MAX already chose one; True if set here."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl (Alpine) has no mallopt and needs none
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, ARENAS))
