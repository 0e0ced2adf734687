"""The Apache test harness itself: the configuration it writes, starting, serving, restarting
and stopping a real httpd, how it reports a failure, and httpd with the shim loaded."""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.apache import httpd
from tests.apache.httpd import Apache, ApacheError, HttpdInstall, apache_user
from tests.functional.daemon import start_daemon, wait_for

DEBIAN_ENVVARS = """\
unset HOME
export APACHE_RUN_USER=www-data
export APACHE_RUN_GROUP=www-data
export APACHE_PID_FILE=/var/run/apache2$SUFFIX/apache2.pid
"""


def fake_install(user: str | None = None) -> HttpdInstall:
    return HttpdInstall(
        binary="/usr/sbin/apache2",
        modules_dir="/modules",
        builtin=frozenset({"core.c", "mod_so.c", "mod_log_config.c"}),
        user=user,
        group=user,
    )


# -- the configuration -------------------------------------------------------------------------


def test_config_keeps_runtime_files_inside_the_server_root(tmp_path: Path) -> None:
    apache = Apache(tmp_path, fake_install())
    apache.port = 8123
    lines = apache.config_text().splitlines()
    for expected in (
        f'ServerRoot "{tmp_path}"',
        f'DefaultRuntimeDir "{tmp_path}/run"',
        f'PidFile "{tmp_path}/run/httpd.pid"',
        f"Mutex file:{tmp_path}/run default",
        f'ErrorLog "{tmp_path}/logs/error.log"',
        "Listen 127.0.0.1:8123",
        "ServerName 127.0.0.1",
        "KeepAlive On",
        f'DocumentRoot "{tmp_path}/htdocs"',
    ):
        assert expected in lines
    assert not [line for line in lines if line.startswith(("CustomLog", "User", "Group"))]


def test_config_runs_children_as_the_apache_user_only_when_given(tmp_path: Path) -> None:
    lines = Apache(tmp_path, fake_install("www-data")).config_text().splitlines()
    assert "User www-data" in lines
    assert "Group www-data" in lines


def test_config_loads_modules_that_are_not_compiled_in(tmp_path: Path) -> None:
    module = tmp_path / "mod_wsgidaemon.so"
    apache = Apache(tmp_path, fake_install(), module=module, mpm="prefork", access_log=True)
    apache.directives += ["WSGIDaemonSocket g /s.sock", "WSGIProcessGroup g"]
    lines = apache.config_text().splitlines()
    loads = [line for line in lines if line.startswith("LoadModule")]
    assert loads == [
        'LoadModule mpm_prefork_module "/modules/mod_mpm_prefork.so"',
        'LoadModule authz_core_module "/modules/mod_authz_core.so"',
        'LoadModule mime_module "/modules/mod_mime.so"',
        f'LoadModule wsgidaemon_module "{module}"',
    ]  # mod_log_config is compiled in
    assert any(line.startswith("CustomLog") for line in lines)
    assert lines[-2:] == ["WSGIDaemonSocket g /s.sock", "WSGIProcessGroup g"]


def test_apache_user_comes_from_debian_envvars() -> None:
    assert apache_user(DEBIAN_ENVVARS) == ("www-data", "www-data")
    custom = "export APACHE_RUN_USER='web'\nexport APACHE_RUN_GROUP=webgroup\n"
    assert apache_user(custom) == ("web", "webgroup")


def test_apache_user_without_envvars_is_a_user_that_exists() -> None:
    assert apache_user("", user_exists=lambda name: name == "apache") == ("apache", "apache")
    assert apache_user("", user_exists=lambda name: False) == ("nobody", "nobody")


# -- a running server --------------------------------------------------------------------------


def test_serves_a_static_file_from_its_document_root(start_apache: Callable[..., Apache]) -> None:
    apache = start_apache(access_log=True)
    apache.write_htdocs("hello.txt", "hello from htdocs\n")

    conn = apache.connection(timeout=10)
    try:
        for _ in range(2):  # KeepAlive: both on one connection
            conn.request("GET", "/hello.txt")
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, b"hello from htdocs\n")
            assert resp.getheader("Content-Type") == "text/plain"
    finally:
        conn.close()
    assert apache.request("GET", "/missing.txt").status == 404
    # Apache logs a request after answering it, so the last line may come a moment later.
    wait_for(
        lambda: apache.access_log_path.read_text().count('"GET /hello.txt HTTP/1.1" 200') == 2,
        5,
        "both requests in the access log",
    )
    if apache.install.user is not None:  # started as root: the children dropped privileges
        uid = pwd.getpwnam(apache.install.user).pw_uid
        children = apache.child_pids()
        assert children
        for pid in children:
            assert os.stat(f"/proc/{pid}").st_uid == uid


def test_stop_ends_httpd_and_its_children(start_apache: Callable[..., Apache]) -> None:
    apache = start_apache()
    pids = [apache.pid, *apache.child_pids()]
    assert len(pids) > 1
    assert apache.stop() == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # type: ignore[arg-type]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", apache.port), timeout=2).close()


def test_graceful_restart_reads_the_new_configuration(start_apache: Callable[..., Apache]) -> None:
    apache = start_apache()
    apache.write_htdocs("data.txt", "{}")
    assert apache.request("GET", "/data.txt").header("Content-Type") == "text/plain"
    apache.restart("AddType application/json .txt")
    assert apache.request("GET", "/data.txt").header("Content-Type") == "application/json"


def test_a_failed_start_reports_the_logs(new_apache: Callable[..., Apache]) -> None:
    apache = new_apache()
    with pytest.raises(ApacheError, match=r"(?s)exited with status.*NoSuchDirective"):
        apache.start("NoSuchDirective on")
    assert not apache.running()


def test_a_taken_port_is_retried(
    new_apache: Callable[..., Apache], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy, httpd.free_port()])
        monkeypatch.setattr(httpd, "free_port", lambda: next(ports))
        apache = new_apache().start()
        assert apache.port != busy
        assert apache.request("GET", "/").status in (200, 403, 404)


def test_wait_log_fails_naming_what_it_waited_for(start_apache: Callable[..., Apache]) -> None:
    apache = start_apache()
    assert apache.wait_log(r"resuming normal operations")
    with pytest.raises(AssertionError, match="never-logged"):
        apache.wait_log(r"never-logged", timeout=0.2)


# -- with the shim loaded ----------------------------------------------------------------------


def test_config_test_passes_with_the_module_loaded(
    new_apache: Callable[..., Apache], wsgidaemon_module: Path
) -> None:
    done = new_apache(module=wsgidaemon_module).config_test()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Syntax OK" in done.stderr


def test_static_files_still_served_with_the_module_loaded(
    start_apache: Callable[..., Apache], wsgidaemon_module: Path
) -> None:
    apache = start_apache(module=wsgidaemon_module)
    apache.write_htdocs("plain.txt", "static\n")
    response = apache.request("GET", "/plain.txt")
    assert (response.status, response.body) == (200, b"static\n")
    assert "[emerg]" not in apache.error_log()


APP = """\
def application(environ, start_response):
    body = " ".join([environ["SCRIPT_NAME"], environ["PATH_INFO"], environ["QUERY_STRING"]])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"""


def test_a_request_reaches_a_daemon_through_the_shim(
    new_apache: Callable[..., Apache], wsgidaemon_module: Path, tmp_path: Path
) -> None:
    apache = new_apache(module=wsgidaemon_module)
    app = apache.root / "app.wsgi"
    app.write_text(APP)
    sock = apache.run_dir / "g.sock"  # reachable by Apache's children through run_dir
    flags = ["--socket", str(sock), "--process-group", "g"]
    if apache.install.user is not None:
        flags += ["--socket-user", apache.install.user]
    daemon = start_daemon(tmp_path, app, *flags, listening=r"listening on unix:", wait_ready=1)
    try:
        apache.start(
            f"WSGIDaemonSocket g {sock}", f"WSGIScriptAlias /mount {app}", "WSGIProcessGroup g"
        )
        response = apache.request("GET", "/mount/some/path?x=1")
        assert (response.status, response.body) == (200, b"/mount /some/path x=1"), (
            apache.logs() + daemon.log()
        )
    finally:
        daemon.stop()
