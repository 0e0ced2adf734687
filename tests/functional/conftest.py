from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.functional.daemon import Daemon, start_daemon


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """serve(app, *flags) starts a daemon; every daemon is stopped at teardown."""
    started: list[Daemon] = []

    def start(app: str | Path, *flags: str, **kwargs: object) -> Daemon:
        daemon = start_daemon(tmp_path, app, *flags, **kwargs)  # type: ignore[arg-type]
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()
