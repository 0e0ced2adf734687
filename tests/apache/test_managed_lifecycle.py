"""The life of daemon groups that Apache starts (docs/apache-managed.md, "Lifetime"): a killed
master comes back, `apachectl graceful` under load loses nothing and keeps unchanged groups,
`apachectl stop` (and Apache killed outright) leaves no process behind, and a touched or
rewritten WSGI script is loaded again under load without a failed request. One more test
(expected to fail for now) asks that a request arriving before a group's master listens wait
for it, as under mod_wsgi. Each test has its own Apache (tests/apache/managed.py)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.apache import managed
from tests.apache.managed import (
    BASE_PYTHON,
    GONE_TIMEOUT,
    ManagedApache,
    RetryingLoad,
    Venv,
    daemon_site,
    describe,
    make_public,
    mounted_group,
    proc,
    public_dir,
)
from tests.functional.daemon import wait_for
from tests.functional.load import KeepAliveLoad, LoadResult

# Fixtures from tests/apache/managed.py (bound here rather than loaded as a plugin, which
# pytest could no longer rewrite the asserts of once this module imported it).
public_venv = managed.public_venv
flask_app = managed.flask_app
managed_apache = managed.managed_apache

GROUP = "site"
RECOVERY_TIMEOUT = 15.0  # a killed master: its restart is delayed 1 s at most here


def start_site(
    make: Callable[..., ManagedApache], venv: Venv, app_dir: Path, options: str | None = None
) -> ManagedApache:
    apache = make()
    extra = {} if options is None else {"options": options}
    apache.start(*daemon_site(GROUP, venv, app_dir, app_dir / "wsgi.py", **extra))
    apache.wait_ok("/about")
    return apache


CLIENTS = 4


def load_on(apache: ManagedApache, path: str) -> KeepAliveLoad:
    return KeepAliveLoad("127.0.0.1", apache.port, path, clients=CLIENTS, deadline=60).start()


def more_requests(load: KeepAliveLoad, count: int, what: str) -> None:
    """Let `load` complete `count` more requests (it is then known to be flowing)."""
    target = load.done + count
    wait_for(lambda: load.done >= target, 30, f"{count} more requests {what}")


def assert_no_failures(result: LoadResult, apache: ManagedApache) -> None:
    assert result.ok > 0
    assert not result.failures, (
        f"{len(result.failures)} of {result.ok + len(result.failures)} requests failed, "
        f"first: {result.failures[:5]}\n{apache.logs()}"
    )


def gone(pid: int, start: int) -> bool:
    """The process is gone (or its pid now belongs to another process)."""
    current = proc(pid)
    return current is None or current.start != start or current.state == "Z"


# -- the first requests -----------------------------------------------------------------------

SLOW_START = 2.0  # seconds the slow venv's interpreter takes to start (the master only)
SLOW_MODULE = """\
# A slow interpreter start, for tests/apache/test_managed_lifecycle.py (imported by slow.pth):
# the packages are the public venv's; a master (not the configuration check) takes {delay} s
# to start.
import site
import time

site.addsitedir({site_packages!r})
with open("/proc/self/cmdline", "rb") as cmdline:
    if b"--check" not in cmdline.read().split(b"\\0"):
        time.sleep({delay})
"""


@pytest.fixture
def slow_venv(public_venv: Venv) -> Iterator[Venv]:
    """A venv with the public venv's packages whose masters take SLOW_START s to start."""
    home = public_dir("wsgidaemon-slow-") / "venv"
    subprocess.run([str(BASE_PYTHON), "-m", "venv", "--without-pip", str(home)], check=True)
    (site_packages,) = (public_venv.home / "lib").glob("python*/site-packages")
    (own,) = (home / "lib").glob("python*/site-packages")
    text = SLOW_MODULE.format(site_packages=str(site_packages), delay=SLOW_START)
    (own / "_wsgidaemon_slow.py").write_text(text)
    (own / "slow.pth").write_text("import _wsgidaemon_slow\n")  # Debian has a sitecustomize
    make_public(home)
    yield Venv(home, public_venv.version)
    shutil.rmtree(home.parent, ignore_errors=True)


# mod_wsgi creates the daemon sockets in Apache's parent, so requests that arrive while a
# daemon starts wait for it. Here the master binds the socket itself; the shim waits for the
# socket of a group it manages (ENOENT retried like ECONNREFUSED, up to connect-timeout).
def test_a_request_arriving_before_the_master_listens_waits_for_it(
    managed_apache: Callable[..., ManagedApache], slow_venv: Venv, flask_app: Path
) -> None:
    apache = managed_apache()
    apache.start(*daemon_site(GROUP, slow_venv, flask_app, flask_app / "wsgi.py"))
    if any(apache.run_dir.glob("wsgi.*.sock")):  # not an AssertionError: a real failure
        raise RuntimeError("the master listens already: the test proves nothing")
    response = apache.get("/about", timeout=30)
    assert response.status == 200, (response, apache.logs())


# -- a master killed ---------------------------------------------------------------------------


def test_a_killed_master_is_started_again(
    managed_apache: Callable[..., ManagedApache], public_venv: Venv, flask_app: Path
) -> None:
    """SIGKILL the master: its workers leave, the module starts a new master (after 1 s, as
    the killed one ran less than 10 s) and requests are answered by its workers again."""
    apache = start_site(managed_apache, public_venv, flask_app)
    old = apache.master(GROUP)
    old_workers = apache.workers(old)
    assert len(old_workers) == 2, describe(old_workers)
    mark = len(apache.error_log())

    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    # The orphaned workers do not linger (they would hold the old socket and their memory).
    wait_for(
        lambda: all(gone(w.pid, w.start) for w in old_workers),
        10,
        f"the killed master's workers to exit\n{describe(old_workers)}\n{apache.logs()}",
    )
    answers: list[object] = []  # what requests got until the group was back

    def served_by_new_master() -> dict[str, object] | None:
        try:
            response = apache.get("/about", timeout=RECOVERY_TIMEOUT)
        except (OSError, http.client.HTTPException) as exc:
            answers.append(type(exc).__name__)
            return None
        answers.append(response.status)
        about = json.loads(response.body) if response.status == 200 else None
        return about if about and about["ppid"] != old else None

    about = wait_for(
        served_by_new_master,
        RECOVERY_TIMEOUT,
        f"a 200 from the restarted group (answers so far: {answers})\n{apache.logs()}",
        interval=0.1,
    )
    recovered = time.monotonic() - killed
    new = apache.master(GROUP)
    assert new != old and about["ppid"] == new
    new_info = proc(new)
    assert new_info is not None and new_info.ppid == apache.pid  # the module started it
    for _ in range(20):
        assert apache.get("/about").status == 200, apache.logs()
    assert len(apache.workers(new)) == 2
    print(
        f"back {recovered:.2f}s after SIGKILL; answers meanwhile: {answers}\n"
        f"log since:\n{apache.error_log()[mark:]}"
    )


# -- apachectl graceful ------------------------------------------------------------------------


def test_graceful_restart_under_load_fails_no_request(
    managed_apache: Callable[..., ManagedApache], public_venv: Venv, flask_app: Path
) -> None:
    """Two groups under load; `apachectl graceful` with one of them changed. No request
    fails; the unchanged group keeps its master; the changed one is taken over by a new
    master and the old one exits.

    The clients resend a request once when Apache closed an idle keep-alive connection under
    it (RetryingLoad: Apache's graceful restart does that to any content, static files too);
    at most one such resend per connection is allowed."""
    apache = managed_apache()
    script = flask_app / "wsgi.py"
    options = "processes=2 threads=15 display-name=%{GROUP}"
    apache.start(
        *mounted_group("kept", public_venv, flask_app, script, "/kept", options),
        *mounted_group("changed", public_venv, flask_app, script, "/changed", options),
    )
    for name in ("kept", "changed"):
        apache.wait_ok(f"/{name}/about")
    kept, changed = apache.master("kept"), apache.master("changed")
    changed_info = proc(changed)
    assert changed_info is not None

    loads = [
        RetryingLoad("127.0.0.1", apache.port, f"/{name}/about", clients=CLIENTS, deadline=60)
        for name in ("kept", "changed")
    ]
    for load in loads:
        load.start()
    try:
        for load in loads:
            more_requests(load, 100, "before the restart")
        # Change one group: a new option value makes its command line differ.
        (index,) = (
            i
            for i, line in enumerate(apache.directives)
            if line.startswith("WSGIDaemonProcess changed")
        )
        apache.directives[index] = apache.directives[index].replace("threads=15", "threads=14")
        apache.restart(graceful=True)
        wait_for(
            lambda: gone(changed, changed_info.start),
            30,
            f"the changed group's old master {changed} to exit\n{apache.logs()}",
        )
        new_changed = apache.master("changed")
        wait_for(
            lambda: apache.about("/changed/about")["ppid"] == new_changed,
            10,
            "the changed group's new master to serve",
        )
        for load in loads:
            more_requests(load, 100, "after the restart")
    finally:
        for load in loads:
            load.stop()
    for load in loads:
        assert_no_failures(load.result, apache)
        assert len(load.retried) <= CLIENTS, load.retried
    assert apache.master("kept") == kept
    assert new_changed != changed


# -- logrotate -------------------------------------------------------------------------------

MARKER_APP = """\
# Writes the marker it is given (the query string) to wsgi.errors and to stdout.
import os
import time


def application(environ, start_response):
    marker = environ["QUERY_STRING"]
    environ["wsgi.errors"].write(marker + " to wsgi.errors\\n")
    print(marker + " printed", flush=True)
    time.sleep(0.2)  # two requests at once keep both single-threaded workers busy
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.fixture
def marker_app() -> Iterator[Path]:
    """A directory Apache's user can read, holding MARKER_APP as marker.wsgi."""
    app_dir = public_dir("wsgidaemon-marker-")
    script = app_dir / "marker.wsgi"
    script.write_text(MARKER_APP)
    script.chmod(0o644)
    yield script
    shutil.rmtree(app_dir, ignore_errors=True)


def test_after_logrotate_a_kept_group_writes_to_the_new_error_log(
    managed_apache: Callable[..., ManagedApache], public_venv: Venv, marker_app: Path
) -> None:
    """Debian's logrotate renames error.log to error.log.1, then reloads Apache, which opens
    error.log anew. The group's master is kept across that graceful restart, and it and its
    running workers (not replaced) write to the new error.log from then on: what the
    application writes to wsgi.errors or prints reaches the live log, not the renamed one."""
    apache = managed_apache()
    options = "processes=2 threads=1 display-name=%{GROUP}"
    apache.start(*daemon_site(GROUP, public_venv, marker_app.parent, marker_app, options))
    apache.wait_ok("/?warming-up")
    master = apache.master(GROUP)
    workers = sorted(w.pid for w in apache.workers(master))
    assert len(workers) == 2, describe(apache.workers(master))

    rotated = apache.error_log_path.with_name("error.log.1")
    os.rename(apache.error_log_path, rotated)
    apache.restart(graceful=True)  # error.log is Apache's new one from here on
    apache.wait_log(rf"daemon group '{GROUP}' is unchanged: its master \(pid {master}\) goes on")
    apache.wait_log(r"Apache opened its error log again: the master and its 2 worker process")

    markers: dict[str, int] = {}  # marker -> the worker pid that served it

    def two_at_once() -> None:
        names = [f"rotated-{len(markers) + i}-{time.monotonic_ns()}" for i in range(2)]
        with ThreadPoolExecutor(2) as pool:
            responses = pool.map(lambda name: apache.get(f"/?{name}"), names)
            for name, response in zip(names, responses, strict=True):
                assert response.status == 200, (response, apache.logs())
                markers[name] = int(response.body)

    wait_for(
        lambda: two_at_once() or set(workers) <= set(markers.values()),
        30,
        f"requests served by both workers {workers}: {markers}\n{apache.logs()}",
    )
    assert apache.master(GROUP) == master
    assert sorted(w.pid for w in apache.workers(master)) == workers  # none was replaced
    live, old = apache.error_log(), rotated.read_text(errors="replace")
    for name in markers:
        assert f"{name} to wsgi.errors" in live and f"{name} printed" in live, apache.logs()
        assert name not in old, old


# -- apachectl stop ----------------------------------------------------------------------------


def test_stop_leaves_no_daemon_process(
    managed_apache: Callable[..., ManagedApache], public_venv: Venv, flask_app: Path
) -> None:
    """`apachectl stop` is SIGTERM to Apache's parent: 15 s later no process of any group
    is left (this test does not use the harness's stop(), which would also kill Apache's
    whole process group and so hide a master that stays)."""
    apache = start_site(managed_apache, public_venv, flask_app)
    daemons = apache.daemon_processes(thorough=True)
    assert len(daemons) == 3, describe(daemons.values())  # the master and 2 workers
    assert apache.proc is not None
    apache.proc.send_signal(signal.SIGTERM)
    apache.proc.wait(GONE_TIMEOUT)
    stopped = time.monotonic()
    left = apache.wait_daemons_gone(GONE_TIMEOUT - (time.monotonic() - stopped))
    still = [info for info in daemons.values() if not gone(info.pid, info.start)]
    assert not left and not still, (
        f"{GONE_TIMEOUT}s after Apache stopped:\n{describe([*left.values(), *still])}\n"
        f"{apache.logs()}"
    )


def test_apache_killed_outright_leaves_no_daemon_process(
    managed_apache: Callable[..., ManagedApache], public_venv: Venv, flask_app: Path
) -> None:
    """SIGKILL to Apache's parent: nobody tells the masters, yet they stop (end of file on
    --parent-fd), and their workers with them."""
    apache = start_site(managed_apache, public_venv, flask_app)
    daemons = apache.daemon_processes(thorough=True)
    assert len(daemons) == 3, describe(daemons.values())
    assert apache.proc is not None
    apache.proc.kill()
    apache.proc.wait(GONE_TIMEOUT)
    left = apache.wait_daemons_gone(GONE_TIMEOUT)
    still = [info for info in daemons.values() if not gone(info.pid, info.start)]
    assert not left and not still, (
        f"{GONE_TIMEOUT}s after Apache was killed:\n{describe([*left.values(), *still])}\n"
        f"{apache.logs()}"
    )


# -- the WSGI script changed -------------------------------------------------------------------


def wait_all_answers(apache: ManagedApache, good: Callable[[dict[str, object]], bool], what: str):
    """Poll /about until 10 answers in a row satisfy `good` (every worker has it)."""
    streak = [0]

    def settled() -> bool:
        streak[0] = streak[0] + 1 if good(apache.about()) else 0
        return streak[0] >= 10

    wait_for(settled, 30, what, interval=0.05)


def test_a_changed_script_is_reloaded_under_load(
    managed_apache: Callable[..., ManagedApache], public_venv: Venv, flask_app: Path
) -> None:
    """Touching the WSGI script, then rewriting it, under load: both times the script is
    loaded again (mod_wsgi's WSGIScriptReloading, on by default) without a failed request,
    and the rewritten code is what answers afterwards."""
    apache = start_site(managed_apache, public_venv, flask_app)
    script = flask_app / "wsgi.py"
    load = load_on(apache, "/about")
    try:
        more_requests(load, 200, "before the touch")
        loaded = {json.loads(body)["load_id"] for body in list(load.result.bodies)}
        later = time.time() + 1
        os.utime(script, (later, later))
        wait_all_answers(apache, lambda a: a["load_id"] not in loaded, "the touched script")
        more_requests(load, 100, "after the touch")

        # Rewrite it as deployment tools do: a new file renamed over the old one.
        new = script.with_name("wsgi.py.new")
        new.write_text(script.read_text().replace('RELEASE = "1"', 'RELEASE = "2"'))
        new.chmod(0o644)
        os.replace(new, script)
        wait_all_answers(apache, lambda a: a["release"] == "2", "release 2 of the script")
        more_requests(load, 100, "after the rewrite")
    finally:
        result = load.stop()
    assert_no_failures(result, apache)
    load_ids = {json.loads(body)["load_id"] for body in result.bodies}
    print(f"{result.ok} requests, none failed; {len(load_ids)} loads of the script: {load_ids}")
    bodies = [b for b in result.bodies[-50:] if b.startswith(b"{")]
    assert bodies and all(b'"release":"2"' in b.replace(b" ", b"") for b in bodies[-20:])
