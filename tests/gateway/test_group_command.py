"""`wsgidaemon group`: its argument parsing and identity defaults, without processes."""

from __future__ import annotations

import argparse

import pytest

from wsgidaemon.cli import build_parser
from wsgidaemon.config import Location, parse_daemon_process
from wsgidaemon.gateway import control, group


def test_location_argument() -> None:
    assert group.location_arg("/etc/apache2/a b.conf:12") == Location("/etc/apache2/a b.conf", 12)
    assert group.location_arg("C:/x.conf:3") == Location("C:/x.conf", 3)
    for bad in ("nofile", "x.conf:", ":3", "x.conf:three"):
        with pytest.raises(argparse.ArgumentTypeError):
            group.location_arg(bad)


def test_command_line_as_the_module_writes_it() -> None:
    args = build_parser().parse_args(
        [
            "group",
            "--directive",
            "site processes=2",
            "--location",
            "/etc/httpd/conf/httpd.conf:40",
            "--socket",
            "/run/httpd/wsgi.123.site.sock",
            "--apache-user",
            "apache",
            "--apache-group",
            "apache",
            "--import-script",
            "/srv/a.wsgi",
            "--import-script",
            "/srv/b.wsgi",
            "--parent-fd",
            "5",
            "--start-delay",
            "2",
            "--takeover-pid",
            "1234",
        ]
    )
    assert args.import_script == ["/srv/a.wsgi", "/srv/b.wsgi"]
    assert (args.parent_fd, args.start_delay, args.takeover_pid) == (5, 2.0, 1234)
    assert args.location == Location("/etc/httpd/conf/httpd.conf", 40)
    assert not args.check and args.run is group.run


def test_identity_defaults_to_apache_as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group.os, "geteuid", lambda: 0)
    plain = parse_daemon_process("site")
    options = group.with_apache_identity(plain, "www-data", "www-data").options
    assert (options.user, options.group, options.socket_user) == ("www-data",) * 3
    own = parse_daemon_process("site user=alice socket-user=bob")
    options = group.with_apache_identity(own, "www-data", "staff").options
    assert (options.user, options.group, options.socket_user) == ("alice", "staff", "bob")
    assert group.with_apache_identity(plain, None, None) is plain


def test_identity_untouched_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group.os, "geteuid", lambda: 1000)
    plain = parse_daemon_process("site")
    assert group.with_apache_identity(plain, "www-data", "www-data") is plain


def test_stale_message_round_trip() -> None:
    message = control.stale_message(1700000000.25, "/srv/my site/app.wsgi")
    assert message.startswith(control.STALE + b" ")
    assert control.parse_stale(message) == (b"1700000000.25", b"/srv/my site/app.wsgi")
