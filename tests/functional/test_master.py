"""The master and its pool, with real processes, signals and sockets."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.functional.daemon import Daemon, wait_for
from tests.functional.load import KeepAliveLoad

Serve = Callable[..., Daemon]


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").replace(b"\0", b" ").decode()


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_pool_is_processes_times_threads(serve: Serve) -> None:
    daemon = serve("pool.wsgi", "--processes", "2", "--threads", "4", wait_ready=2)
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda _: daemon.request(path="/?sleep=0.6"), range(16)))
    reports = [json.loads(r.body) for r in responses]
    assert all(r.status == 200 for r in responses)
    pids = {report["pid"] for report in reports}
    assert len(pids) == 2, pids
    assert max(report["peak"] for report in reports) <= 4
    assert max(report["peak"] for report in reports) >= 3
    assert all(report["multiprocess"] and report["multithread"] for report in reports)
    assert {report["thread_id"] for report in reports} <= {1, 2, 3, 4}


def test_maximum_requests_recycles_with_zero_failures(serve: Serve) -> None:
    daemon = serve(
        "pool.wsgi",
        "--processes",
        "2",
        "--threads",
        "4",
        "--maximum-requests",
        "20",
        wait_ready=2,
    )
    load = KeepAliveLoad(daemon.host, daemon.port, "/", clients=16, total=2000).start()
    result = load.join()
    assert result.failures == [], result.failures[:5]
    assert result.ok == 2000
    assert len(result.pids) >= 24, len(result.pids)
    assert "reached maximum requests of 20; finishing and exiting" in daemon.log()
    assert "takes over as worker" in daemon.log()


def test_killed_worker_is_replaced_and_reason_logged(serve: Serve) -> None:
    daemon = serve("pool.wsgi", "--processes", "2", "--threads", "2", wait_ready=2)
    before = daemon.worker_pids()
    assert len(before) == 2
    load = KeepAliveLoad(daemon.host, daemon.port, "/", clients=4, deadline=60).start()
    wait_for(lambda: load.done > 50, 20, "some load")
    os.kill(before[0], signal.SIGKILL)
    wait_for(
        lambda: len(daemon.worker_pids()) == 2 and before[0] not in daemon.worker_pids(),
        10,
        "a replacement worker",
    )
    done_at_kill = load.done
    wait_for(lambda: load.done > done_at_kill + 100, 20, "load served after the kill")
    result = load.stop()
    # Only the requests the killed worker held (at most its 2 threads' worth per client
    # connection it had) may fail.
    assert len(result.failures) <= 4, result.failures
    daemon.wait_log(rf"pid {before[0]}\) was killed by SIGKILL — perhaps out of memory")


VERSIONED_SOURCE = (
    "import os\n"
    "VERSION = b'{}'\n"
    "def application(environ, start_response):\n"
    "    body = VERSION + b' %d' % os.getpid()\n"
    "    start_response('200 OK', [('Content-Length', str(len(body)))])\n"
    "    return [body]\n"
)


def test_sighup_reloads_changed_code_with_zero_failures(serve: Serve, tmp_path: Path) -> None:
    script = tmp_path / "versioned.wsgi"
    source = VERSIONED_SOURCE
    script.write_text(source.format("one"))
    daemon = serve(script, "--processes", "2", "--threads", "4", wait_ready=2)
    old = daemon.worker_pids()
    load = KeepAliveLoad(daemon.host, daemon.port, "/", clients=8, deadline=90).start()
    wait_for(lambda: load.done > 100, 20, "load before the reload")
    script.write_text(source.format("two"))
    os.kill(daemon.pid, signal.SIGHUP)
    wait_for(
        lambda: any(body.startswith(b"two") for body in load.result.bodies),
        30,
        "the new code to be served",
    )
    wait_for(lambda: not set(old) & set(daemon.worker_pids()), 30, "old workers gone")
    # Each of the 8 clients may still be recording a response it read from an old worker.
    mark = len(load.result.bodies) + 8
    wait_for(lambda: load.done > mark + 200, 20, "load after the reload")
    result = load.stop()
    assert result.failures == [], result.failures[:5]
    assert {body.split()[0] for body in result.bodies[mark:]} == {b"two"}


def test_sighup_replaces_the_standby_worker_too(serve: Serve, tmp_path: Path) -> None:
    script = tmp_path / "versioned.wsgi"
    script.write_text(VERSIONED_SOURCE.format("one"))
    daemon = serve(script, "--maximum-requests", "3", wait_ready=1)

    def standby() -> list[int]:
        return [pid for pid in daemon.worker_pids() if "standby" in cmdline(pid)]

    (old_standby,) = wait_for(standby, 10, "the standby worker")
    script.write_text(VERSIONED_SOURCE.format("two"))
    os.kill(daemon.pid, signal.SIGHUP)
    # It holds the old code, so it goes, and a standby with the new code takes its place.
    wait_for(lambda: not alive(old_standby), 10, "the old standby to exit")
    wait_for(lambda: standby() and standby() != [old_standby], 10, "a new standby")
    bodies = [daemon.request().body.split()[0] for _ in range(8)]
    assert set(bodies[-3:]) == {b"two"}, bodies


def test_sigusr1_restarts_workers_gracefully(serve: Serve) -> None:
    daemon = serve("pool.wsgi", "--processes", "2", "--threads", "2", wait_ready=2)
    old = daemon.worker_pids()
    load = KeepAliveLoad(daemon.host, daemon.port, "/", clients=4, deadline=60).start()
    wait_for(lambda: load.done > 50, 20, "load")
    os.kill(daemon.pid, signal.SIGUSR1)
    wait_for(lambda: not set(old) & set(daemon.worker_pids()), 30, "old workers replaced")
    wait_for(lambda: len(daemon.worker_pids()) == 2, 10, "two workers")
    result = load.stop()
    assert result.failures == [], result.failures[:5]


def test_workers_exit_when_master_is_killed(serve: Serve) -> None:
    daemon = serve("pool.wsgi", "--processes", "3", "--threads", "2", wait_ready=3)
    workers = daemon.worker_pids()
    assert len(workers) == 3
    os.kill(daemon.pid, signal.SIGKILL)
    daemon.proc.wait(5)
    started = time.monotonic()
    wait_for(lambda: not any(alive(pid) for pid in workers), 2.0, "orphaned workers to exit")
    assert time.monotonic() - started < 2.0


def test_sigterm_lets_in_flight_requests_finish(serve: Serve, tmp_path: Path) -> None:
    daemon = serve("pool.wsgi", "--threads", "2", wait_ready=1)
    mark = tmp_path / "started"
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(daemon.request, "GET", f"/?sleep=1.0&mark={mark}")
        wait_for(mark.exists, 10, "the slow request to be running")
        os.kill(daemon.pid, signal.SIGTERM)
        response = future.result(timeout=10)
    assert response.status == 200
    assert daemon.proc.wait(10) == 0


def test_titles_with_display_name_group(serve: Serve) -> None:
    daemon = serve(
        "pool.wsgi",
        "--processes",
        "2",
        "--display-name",
        "%{GROUP}",
        "--process-group",
        "mysite",
        wait_ready=2,
    )
    assert cmdline(daemon.pid) == "wsgidaemon: master [mysite]"
    assert [cmdline(pid) for pid in daemon.worker_pids()] == ["(wsgi:mysite)"] * 2


def test_titles_verbatim_and_default(serve: Serve) -> None:
    custom = serve("pool.wsgi", "--display-name", "my custom title", wait_ready=1)
    assert [cmdline(pid) for pid in custom.worker_pids()] == ["my custom title"]
    plain = serve("pool.wsgi", "--processes", "2", wait_ready=2)
    group = f"127.0.0.1:{plain.port}"
    assert cmdline(plain.pid) == f"wsgidaemon: master [{group}]"
    assert sorted(cmdline(pid) for pid in plain.worker_pids()) == [
        f"wsgidaemon: worker 1 [{group}]",
        f"wsgidaemon: worker 2 [{group}]",
    ]


def test_unloadable_script_backs_off(serve: Serve) -> None:
    daemon = serve("broken.wsgi")
    daemon.wait_log(r"could not load the application\) before it was ready; restarting it in 1s")
    daemon.wait_log(r"restarting it in 2s", timeout=10)
    assert "this script cannot be loaded" in daemon.log()
    # Two failures in ~1 s of backoff, never a tight loop.
    assert daemon.log().count("worker 1 started") <= 3


def test_missing_callable_gives_500_and_mod_wsgi_log_line(serve: Serve) -> None:
    daemon = serve("nocallable.wsgi", wait_ready=1)
    response = daemon.request()
    assert response.status == 500
    assert "does not contain WSGI application 'application'" in daemon.log()
    good = serve("nocallable.wsgi", "--callable-object", "app", wait_ready=1)
    assert good.request().body == b"named app, not application"


def test_keep_alive_connections_are_spread_across_processes(serve: Serve) -> None:
    daemon = serve("pool.wsgi", "--processes", "2", "--threads", "8", wait_ready=2)
    connections = [daemon.connection() for _ in range(16)]
    try:
        for conn in connections:
            conn.connect()
        owners: list[int] = []
        for conn in connections:
            conn.request("GET", "/")
            owners.append(json.loads(conn.getresponse().read())["pid"])
        # Every connection stays with the process that accepted it.
        for conn, owner in zip(connections, owners, strict=True):
            conn.request("GET", "/")
            assert json.loads(conn.getresponse().read())["pid"] == owner
    finally:
        for conn in connections:
            conn.close()
    counts = sorted(owners.count(pid) for pid in set(owners))
    assert len(counts) == 2 and counts[0] >= 6, counts
