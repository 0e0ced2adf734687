"""glibc's malloc arenas for the workers' threads.

glibc gives each thread that allocates its own arena, up to eight per core, and an arena keeps
what was freed in it for reuse. A worker's M request threads each read and write whole frames
(64 KiB bodies are common), so every one of them grows an arena of its own: measured with 15
threads under 64 KiB requests, about 10 MiB more per worker than with two arenas. The threads
take turns on the GIL anyway, so they gain nothing from separate arenas. Set in the master
before it forks, the limit holds in every worker.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("wsgidaemon")

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """True if the C library took the limit (glibc); other C libraries are left alone."""
    try:
        libc = ctypes.CDLL(None)  # the process itself: libc is among what it links
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
