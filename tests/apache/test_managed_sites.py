"""Sites served by daemon groups that Apache itself starts (docs/apache-managed.md), configured
exactly as mod_wsgi's documentation and the usual how-tos have it; only the LoadModule line
differs from a mod_wsgi user's configuration:

    WSGIDaemonProcess NAME processes=2 threads=15 display-name=%{GROUP} \\
        python-home=VENV python-path=APPDIR
    WSGIProcessGroup NAME
    WSGIApplicationGroup %{GLOBAL}
    WSGIScriptAlias / APPDIR/.../wsgi.py

A Flask application, a Django project with its admin (sqlite), the processes `ps` shows, and
two groups on two Python versions under one Apache. Fixtures: tests/apache/managed.py.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import urllib.parse
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from tests.apache import managed
from tests.apache.httpd import HttpdInstall
from tests.apache.managed import (
    DjangoSite,
    ManagedApache,
    Spawned,
    Venv,
    copy_flask_app,
    daemon_site,
    describe,
    mounted_group,
    processes,
)
from tests.functional.daemon import Response

# Fixtures from tests/apache/managed.py (bound here rather than loaded as a plugin, which
# pytest could no longer rewrite the asserts of once this module imported it).
public_venv = managed.public_venv
second_venv = managed.second_venv
django_site = managed.django_site
flask_app = managed.flask_app
managed_apache = managed.managed_apache


@pytest.fixture(scope="module")
def flask_site(
    httpd_install: HttpdInstall, wsgidaemon_module: Path, public_venv: Venv
) -> Iterator[ManagedApache]:
    spawned = Spawned()
    app_dir = copy_flask_app()
    try:
        apache = spawned.new(httpd_install, wsgidaemon_module)
        apache.start(*daemon_site("flasksite", public_venv, app_dir, app_dir / "wsgi.py"))
        apache.wait_ok("/")
        yield apache
    finally:
        spawned.remove()
        shutil.rmtree(app_dir.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def django_apache(
    httpd_install: HttpdInstall, wsgidaemon_module: Path, public_venv: Venv, django_site: DjangoSite
) -> Iterator[ManagedApache]:
    spawned = Spawned()
    try:
        apache = spawned.new(httpd_install, wsgidaemon_module)
        apache.start(*daemon_site("djangosite", public_venv, django_site.root, django_site.script))
        apache.wait_ok("/admin/login/")
        yield apache
    finally:
        spawned.remove()


def uid_of(install: HttpdInstall) -> int:
    return pwd.getpwnam(install.user).pw_uid if install.user else os.getuid()


# -- Flask -------------------------------------------------------------------------------------


def test_a_flask_application_is_served(
    flask_site: ManagedApache, public_venv: Venv, httpd_install: HttpdInstall
) -> None:
    page = flask_site.get("/")
    assert page.status == 200, flask_site.logs()
    assert page.header("Content-Type") == "text/html; charset=utf-8"
    assert b"<h1>Hello from Flask</h1>" in page.body

    about = flask_site.about()
    assert about["process_group"] == "flasksite"
    assert about["application_group"] == ""  # %{GLOBAL}
    assert about["multiprocess"] is True and about["multithread"] is True
    assert about["prefix"] == str(public_venv.home)  # python-home= chose the interpreter
    # ... and the wsgidaemon installed there, not one the working directory happens to hold
    assert str(about["wsgidaemon"]).startswith(f"{public_venv.home}/lib/"), about
    assert about["uid"] == uid_of(httpd_install)  # Apache's User, not root
    assert about["ppid"] == flask_site.master("flasksite")

    assert flask_site.get("/missing").status == 404  # Flask's, through the shim


def test_a_form_post_reaches_flask(flask_site: ManagedApache) -> None:
    body = urllib.parse.urlencode({"name": "wsgidaemon", "text": "é & ü"}).encode()
    response = flask_site.request(
        "POST", "/echo", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 200, flask_site.logs()
    assert b'"name":"wsgidaemon"' in response.body.replace(b" ", b"")


def test_ps_shows_the_master_and_the_wsgi_workers(
    flask_site: ManagedApache, httpd_install: HttpdInstall
) -> None:
    """One `wsgidaemon: master [NAME]`, a child of Apache's parent process, with
    processes=2 children titled `(wsgi:NAME)` (display-name=%{GROUP}) as Apache's user."""
    masters = flask_site.masters()
    assert list(masters) == ["flasksite"], describe(flask_site.daemon_processes().values())
    (master,) = masters["flasksite"]
    table = processes()
    assert table[master].title == "wsgidaemon: master [flasksite]"
    assert table[master].ppid == flask_site.pid  # started by the parent, not by a child
    workers = flask_site.workers(master)
    assert [w.title for w in workers] == ["(wsgi:flasksite)"] * 2, describe(workers)
    assert {w.uid for w in workers} == {uid_of(httpd_install)}
    # The requests are served by those workers.
    served = {flask_site.about()["pid"] for _ in range(20)}
    assert served <= {w.pid for w in workers}
    # Apache's children are not part of it: nothing else of this ServerRoot is running.
    others = set(flask_site.daemon_processes()) - {master, *(w.pid for w in workers)}
    assert not others, describe(table[pid] for pid in others if pid in table)


# -- Django ------------------------------------------------------------------------------------

CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def cookies_of(response: Response) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in response.headers:
        if name.lower() == "set-cookie":
            jar.load(value)
    return {key: morsel.value for key, morsel in jar.items()}


def login(apache: ManagedApache, username: str, password: str) -> tuple[Response, dict[str, str]]:
    """GET the admin's login form, POST it back with its CSRF token (cookie + hidden field)."""
    form = apache.get("/admin/login/?next=/admin/")
    assert form.status == 200, apache.logs()
    assert b"<title>Log in | Django site admin</title>" in form.body
    cookies = cookies_of(form)
    assert "csrftoken" in cookies, form.headers
    token = CSRF_FIELD.search(form.body)
    assert token, form.body[:2000]
    body = urllib.parse.urlencode(
        {
            "csrfmiddlewaretoken": token.group(1).decode(),
            "username": username,
            "password": password,
            "next": "/admin/",
        }
    ).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"csrftoken={cookies['csrftoken']}",
    }
    answer = apache.request("POST", "/admin/login/?next=/admin/", body, headers)
    return answer, {**cookies, **cookies_of(answer)}


def test_django_admin_refuses_wrong_credentials(django_apache: ManagedApache) -> None:
    answer, _cookies = login(django_apache, "admin", "not the password")
    assert answer.status == 200, (answer, django_apache.logs())
    assert b"Please enter the correct username and password for a staff account" in answer.body


def test_django_admin_login_writes_a_session(
    django_apache: ManagedApache, django_site: DjangoSite
) -> None:
    """The right credentials: Django writes the session to sqlite and redirects; the session
    cookie then opens the admin index."""
    answer, cookies = login(django_apache, *django_site.superuser)
    assert answer.status == 302, (answer, answer.body[:2000], django_apache.logs())
    assert answer.header("Location") == "/admin/"
    assert "sessionid" in cookies
    index = django_apache.request(
        "GET", "/admin/", headers={"Cookie": f"sessionid={cookies['sessionid']}"}
    )
    assert index.status == 200, django_apache.logs()
    assert b"Site administration" in index.body


def test_django_workers_run_on_the_venv(django_apache: ManagedApache, public_venv: Venv) -> None:
    about = django_apache.about()
    assert about["prefix"] == str(public_venv.home)
    assert about["process_group"] == "djangosite"
    (master,) = django_apache.masters()["djangosite"]
    assert about["pid"] in {w.pid for w in django_apache.workers(master)}


# -- two Python versions -----------------------------------------------------------------------


def test_two_groups_on_two_python_versions(
    managed_apache: Callable[..., ManagedApache],
    public_venv: Venv,
    second_venv: Venv,
    flask_app: Path,
) -> None:
    """Each group's python-home chooses its interpreter: one Apache, two Python versions."""
    apache = managed_apache()
    script = flask_app / "wsgi.py"
    names = {venv: f"py{venv.version[0]}{venv.version[1]}" for venv in (public_venv, second_venv)}
    directives = []
    for venv, name in names.items():
        directives += mounted_group(
            name, venv, flask_app, script, f"/{name}", "processes=1 threads=4 display-name=%{GROUP}"
        )
    apache.start(*directives)
    for venv, name in names.items():
        apache.wait_ok(f"/{name}/about")
        about = apache.about(f"/{name}/about")
        assert about["version_info"] == list(venv.version), about
        assert about["prefix"] == str(venv.home)
        assert str(about["wsgidaemon"]).startswith(f"{venv.home}/lib/"), about
        assert about["process_group"] == name
        (master,) = apache.masters()[name]
        # The master runs on the group's interpreter as well.
        exe = os.path.realpath(f"/proc/{master}/exe")
        assert exe == os.path.realpath(venv.python), (name, exe)
