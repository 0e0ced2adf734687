"""The workers' malloc arena limit (set in the master before it forks)."""

from __future__ import annotations

import platform

import pytest

from wsgidaemon.gateway.arenas import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(M_ARENA_MAX) is glibc's")
def test_glibc_takes_the_arena_limit() -> None:
    assert limit_malloc_arenas() is True
