"""Table-driven corpus for `WSGIDaemonProcess`: every option's default, a valid value and a
refused value (with the exact message), quoting, and every error message of the parser.

Expected defaults are written out here rather than read from the declarations, so that a
changed default is a failing test, not a silent change."""

from __future__ import annotations

from typing import Any

import pytest

from wsgidaemon.config import (
    OPTIONS,
    ConfigError,
    ConfigErrors,
    DaemonOptions,
    Location,
    parse_apache_config,
    parse_daemon_process,
    read_daemon_process,
)

# mod_wsgi 6.x code defaults (src/server/wsgi_daemon.c), plus our own jitter.
DEFAULTS: dict[str, Any] = {
    "processes": 1,
    "threads": 15,
    "display_name": None,
    "user": None,
    "group": None,
    "supplementary_groups": (),
    "home": None,
    "umask": None,
    "chroot": None,
    "lang": None,
    "locale": None,
    "python_home": None,
    "python_path": (),
    "python_eggs": None,
    "switch_interval": None,
    "stack_size": None,
    "maximum_requests": 0,
    "maximum_requests_jitter": 0,
    "restart_interval": 0.0,
    "inactivity_timeout": 0.0,
    "request_timeout": 0.0,
    "interrupt_timeout": 0.0,
    "deadlock_timeout": 300.0,
    "startup_timeout": 0.0,
    "graceful_timeout": 15.0,
    "eviction_timeout": 0.0,
    "shutdown_timeout": 5.0,
    "connect_timeout": 15.0,
    "socket_timeout": 0.0,
    "queue_timeout": 0.0,
    "listen_backlog": 100,
    "socket_user": None,
    "send_buffer_size": 0,
    "receive_buffer_size": 0,
    "header_buffer_size": 0,
    "response_buffer_size": 0,
    "response_socket_timeout": 0.0,
    "response_flush_delay": 5,
    "script_user": None,
    "script_group": None,
    "cpu_time_limit": 0.0,
    "cpu_priority": 0,
    "memory_limit": 0,
    "virtual_memory_limit": 0,
    "server_metrics": False,
}

# (option text, attribute, expected value)
VALID: list[tuple[str, str, Any]] = [
    ("processes=4", "processes", 4),
    ("processes=1", "processes", 1),
    ("threads=0", "threads", 0),
    ("threads=65533", "threads", 65533),
    ("display-name=%{GROUP}", "display_name", "%{GROUP}"),
    ("display-name=wsgi-site", "display_name", "wsgi-site"),
    ("user=www-data", "user", "www-data"),
    ("user=#33", "user", "#33"),
    ("group=www-data", "group", "www-data"),
    ("group=#0", "group", "#0"),
    ("supplementary-groups=adm,www-data", "supplementary_groups", ("adm", "www-data")),
    ("home=/srv/app", "home", "/srv/app"),
    ("umask=0022", "umask", 0o022),
    ("umask=007", "umask", 0o007),
    ("chroot=/jail", "chroot", "/jail"),
    ("lang=en_US.UTF-8", "lang", "en_US.UTF-8"),
    ("locale=C.UTF-8", "locale", "C.UTF-8"),
    ("python-home=/opt/venv", "python_home", "/opt/venv"),
    ("python-path=/srv/app:/srv/lib", "python_path", ("/srv/app", "/srv/lib")),
    ("python-path=/srv/app", "python_path", ("/srv/app",)),
    ("python-eggs=/tmp/eggs", "python_eggs", "/tmp/eggs"),
    ("switch-interval=0.001", "switch_interval", 0.001),
    ("stack-size=524288", "stack_size", 524288),
    ("maximum-requests=1000", "maximum_requests", 1000),
    ("maximum-requests-jitter=50", "maximum_requests_jitter", 50),
    ("restart-interval=3600", "restart_interval", 3600.0),
    ("restart-interval=1.5", "restart_interval", 1.5),
    ("inactivity-timeout=300", "inactivity_timeout", 300.0),
    ("request-timeout=60", "request_timeout", 60.0),
    ("interrupt-timeout=5", "interrupt_timeout", 5.0),
    ("deadlock-timeout=60", "deadlock_timeout", 60.0),
    ("startup-timeout=15", "startup_timeout", 15.0),
    ("graceful-timeout=30", "graceful_timeout", 30.0),
    ("eviction-timeout=10", "eviction_timeout", 10.0),
    ("shutdown-timeout=0", "shutdown_timeout", 0.0),
    ("connect-timeout=20", "connect_timeout", 20.0),
    ("socket-timeout=60", "socket_timeout", 60.0),
    ("queue-timeout=45", "queue_timeout", 45.0),
    ("listen-backlog=500", "listen_backlog", 500),
    ("socket-user=apache", "socket_user", "apache"),
    ("send-buffer-size=512", "send_buffer_size", 512),
    ("send-buffer-size=0", "send_buffer_size", 0),
    ("receive-buffer-size=65536", "receive_buffer_size", 65536),
    ("header-buffer-size=65536", "header_buffer_size", 65536),
    ("response-buffer-size=65536", "response_buffer_size", 65536),
    ("response-socket-timeout=30", "response_socket_timeout", 30.0),
    ("response-flush-delay=0", "response_flush_delay", 0),
    ("script-user=deploy", "script_user", "deploy"),
    ("script-group=deploy", "script_group", "deploy"),
    ("cpu-time-limit=600", "cpu_time_limit", 600.0),
    ("cpu-priority=-5", "cpu_priority", -5),
    ("memory-limit=1073741824", "memory_limit", 1073741824),
    ("virtual-memory-limit=2147483648", "virtual_memory_limit", 2147483648),
    ("server-metrics=On", "server_metrics", True),
    ("server-metrics=off", "server_metrics", False),
]

# (option text, exact error message): out of range, wrong type, empty.
INVALID: list[tuple[str, str]] = [
    ("processes=0", "processes: invalid value '0'; expected an integer >= 1"),
    ("processes=two", "processes: invalid value 'two'; expected an integer >= 1"),
    ("threads=65534", "threads: invalid value '65534'; expected an integer from 0 to 65533"),
    ("threads=-1", "threads: invalid value '-1'; expected an integer from 0 to 65533"),
    ("display-name=", "display-name: missing value; expected a non-empty string"),
    (
        "user=root",
        "user: invalid value 'root'; daemon processes must not run as root (mod_wsgi refuses "
        'this too: "WSGI process blocked from running as root"); choose an unprivileged user',
    ),
    (
        "user=#0",
        "user: invalid value '#0'; daemon processes must not run as root (mod_wsgi refuses "
        'this too: "WSGI process blocked from running as root"); choose an unprivileged user',
    ),
    (
        "user=#www",
        "user: invalid value '#www'; expected digits after #, e.g. #1000 (a user name or #uid "
        "other than root)",
    ),
    ("group=", "group: missing value; expected a group name or #gid"),
    (
        "supplementary-groups=,",
        "supplementary-groups: invalid value ','; expected one or more group names separated "
        "by ','",
    ),
    ("home=srv/app", "home: invalid value 'srv/app'; expected an absolute path starting with /"),
    (
        "umask=0999",
        "umask: invalid value '0999'; expected an octal number from 0 to 777, e.g. 0022",
    ),
    (
        "umask=01000",
        "umask: invalid value '01000'; expected an octal number from 0 to 777, e.g. 0022",
    ),
    ("chroot=jail", "chroot: invalid value 'jail'; expected an absolute path starting with /"),
    ("lang=", "lang: missing value; expected a non-empty string"),
    ("locale=", "locale: missing value; expected a non-empty string"),
    ("python-home=", "python-home: missing value; expected a non-empty string"),
    (
        "python-path=:",
        "python-path: invalid value ':'; expected one or more directories separated by ':'",
    ),
    ("python-eggs=", "python-eggs: missing value; expected a non-empty string"),
    ("switch-interval=0", "switch-interval: invalid value '0'; expected a number of seconds > 0"),
    (
        "stack-size=1024",
        "stack-size: invalid value '1024'; expected an integer >= 32768 bytes",
    ),
    ("maximum-requests=-1", "maximum-requests: invalid value '-1'; expected an integer >= 0"),
    (
        "maximum-requests-jitter=ten",
        "maximum-requests-jitter: invalid value 'ten'; expected an integer >= 0",
    ),
    (
        "restart-interval=-5",
        "restart-interval: invalid value '-5'; expected a number of seconds >= 0",
    ),
    (
        "inactivity-timeout=1e3",
        "inactivity-timeout: invalid value '1e3'; expected a number of seconds >= 0",
    ),
    (
        "request-timeout=abc",
        "request-timeout: invalid value 'abc'; expected a number of seconds >= 0",
    ),
    (
        "interrupt-timeout=-1",
        "interrupt-timeout: invalid value '-1'; expected a number of seconds >= 0",
    ),
    (
        "deadlock-timeout=nan",
        "deadlock-timeout: invalid value 'nan'; expected a number of seconds >= 0",
    ),
    (
        "startup-timeout=inf",
        "startup-timeout: invalid value 'inf'; expected a number of seconds >= 0",
    ),
    (
        "graceful-timeout=1,5",
        "graceful-timeout: invalid value '1,5'; expected a number of seconds >= 0",
    ),
    (
        "eviction-timeout=-0.5",
        "eviction-timeout: invalid value '-0.5'; expected a number of seconds >= 0",
    ),
    (
        "shutdown-timeout=five",
        "shutdown-timeout: invalid value 'five'; expected a number of seconds >= 0",
    ),
    (
        "connect-timeout=-1",
        "connect-timeout: invalid value '-1'; expected a number of seconds >= 0",
    ),
    ("socket-timeout=x", "socket-timeout: invalid value 'x'; expected a number of seconds >= 0"),
    (
        "queue-timeout=-45",
        "queue-timeout: invalid value '-45'; expected a number of seconds >= 0",
    ),
    ("listen-backlog=-1", "listen-backlog: invalid value '-1'; expected an integer >= 0"),
    ("socket-user=", "socket-user: missing value; expected a user name or #uid"),
    (
        "send-buffer-size=511",
        "send-buffer-size: invalid value '511'; expected 0 or an integer >= 512 bytes",
    ),
    (
        "receive-buffer-size=100",
        "receive-buffer-size: invalid value '100'; expected 0 or an integer >= 512 bytes",
    ),
    (
        "header-buffer-size=4096",
        "header-buffer-size: invalid value '4096'; expected 0 or an integer >= 8192 bytes",
    ),
    (
        "response-buffer-size=65535",
        "response-buffer-size: invalid value '65535'; expected 0 or an integer >= 65536 bytes",
    ),
    (
        "response-socket-timeout=-1",
        "response-socket-timeout: invalid value '-1'; expected a number of seconds >= 0",
    ),
    (
        "response-flush-delay=-1",
        "response-flush-delay: invalid value '-1'; expected an integer >= 0 ms",
    ),
    ("script-user=", "script-user: missing value; expected a user name or #uid"),
    ("script-group=", "script-group: missing value; expected a group name or #gid"),
    (
        "cpu-time-limit=-1",
        "cpu-time-limit: invalid value '-1'; expected a number of seconds >= 0",
    ),
    ("cpu-priority=20", "cpu-priority: invalid value '20'; expected an integer from -20 to 19"),
    ("cpu-priority=-21", "cpu-priority: invalid value '-21'; expected an integer from -20 to 19"),
    ("memory-limit=-1", "memory-limit: invalid value '-1'; expected an integer >= 0 bytes"),
    (
        "virtual-memory-limit=1G",
        "virtual-memory-limit: invalid value '1G'; expected an integer >= 0 bytes",
    ),
    ("server-metrics=yes", "server-metrics: invalid value 'yes'; expected On or Off"),
]

# (directive arguments, exact messages, in order)
ERRORS: list[tuple[str, list[str]]] = [
    (
        "processes=2 threads=15",
        [
            "WSGIDaemonProcess: the first argument must be the daemon group's name, not the "
            "option 'processes=2'; e.g. WSGIDaemonProcess mysite processes=2 threads=15"
        ],
    ),
    (
        "",
        [
            "WSGIDaemonProcess: the first argument must be the daemon group's name; none was "
            "given (e.g. WSGIDaemonProcess mysite processes=2 threads=15)"
        ],
    ),
    (
        "site maximum-request=100",
        ["maximum-request: unknown option; did you mean maximum-requests?"],
    ),
    ("site Threads=4", ["Threads: unknown option; did you mean threads?"]),
    (
        "site frobnicate=1",
        [
            "frobnicate: unknown option; see docs/options.md for the options WSGIDaemonProcess "
            "accepts"
        ],
    ),
    (
        "site processes 2",
        ["processes 2: options are written key=value; write processes=2"],
    ),
    ("site processes", ["processes: missing '='; options are written processes=VALUE"]),
    ("site verbose", ["verbose: not an option; options are written key=value"]),
    (
        "site processes=2 # two of them",
        ["#: Apache has no comments after a directive; put the comment on a line of its own"],
    ),
    (
        'site "display-name=My Site"',
        ['"display-name=My Site": quote only the value, e.g. display-name="My Site"'],
    ),
    (
        "site script-user=a script-group=b",
        ["script-user, script-group: only one of them may be given (mod_wsgi refuses both)"],
    ),
    (
        "site processes=0 threads=x maximum-request=1 user=root",
        [
            "maximum-request: unknown option; did you mean maximum-requests?",
            "processes: invalid value '0'; expected an integer >= 1",
            "threads: invalid value 'x'; expected an integer from 0 to 65533",
            "user: invalid value 'root'; daemon processes must not run as root (mod_wsgi "
            'refuses this too: "WSGI process blocked from running as root"); choose an '
            "unprivileged user",
        ],
    ),
]

# Apache quoting rules: (directive arguments, group name, attribute, expected value)
QUOTING: list[tuple[str, str, str, Any]] = [
    ('site display-name="My Site"', "site", "display_name", "My Site"),
    ("site display-name='My Site'", "site", "display_name", "My Site"),
    (r'site display-name="say \"hi\""', "site", "display_name", 'say "hi"'),
    (r"site display-name='it\'s'", "site", "display_name", "it's"),
    (r'site display-name="back\\slash"', "site", "display_name", "back\\slash"),
    (r'site display-name="not\nescaped"', "site", "display_name", "not\\nescaped"),
    ('site python-path="/srv/my app:/srv/lib"', "site", "python_path", ("/srv/my app", "/srv/lib")),
    ("site \t processes=2 \t  threads=3  ", "site", "threads", 3),
    ('"my site" processes=2', "my site", "processes", 2),
    ("'host:8000' processes=2", "host:8000", "processes", 2),
    # mod_wsgi reads the value after '=' with ap_getword_conf, which skips white space.
    ("site processes= 3", "site", "processes", 3),
    ('site display-name="unterminated', "site", "display_name", "unterminated"),
]


def _coverage(rows: list[tuple[str, Any]] | list[tuple[str, str, Any]]) -> set[str]:
    return {row[0].split("=", 1)[0] for row in rows}


def test_tables_cover_every_option() -> None:
    keys = {spec.key for spec in OPTIONS}
    assert set(DEFAULTS) == {spec.attr for spec in OPTIONS}
    assert keys - _coverage(VALID) == set(), "options without a valid-value row"
    assert keys - _coverage(INVALID) == set(), "options without a refused-value row"


@pytest.mark.parametrize("attr", sorted(DEFAULTS))
def test_default(attr: str) -> None:
    group = parse_daemon_process("site")
    assert getattr(group.options, attr) == DEFAULTS[attr]
    assert getattr(DaemonOptions(), attr) == DEFAULTS[attr]
    assert group.given == frozenset()


@pytest.mark.parametrize(("text", "attr", "expected"), VALID, ids=[row[0] for row in VALID])
def test_valid_value(text: str, attr: str, expected: Any) -> None:
    group = parse_daemon_process(f"site {text}")
    value = getattr(group.options, attr)
    assert value == expected
    assert type(value) is type(expected)
    assert group.given == {text.split("=", 1)[0]}


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[row[0] for row in INVALID])
def test_refused_value(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_daemon_process(f"site {text}", Location("site.conf", 7))
    assert caught.value.message == message
    assert str(caught.value) == f"site.conf:7: {message}"


@pytest.mark.parametrize(("text", "messages"), ERRORS, ids=[row[0] for row in ERRORS])
def test_error_messages(text: str, messages: list[str]) -> None:
    result = read_daemon_process(text, Location("a.conf", 3))
    assert [error.message for error in result.errors] == messages
    assert all(error.location == Location("a.conf", 3) for error in result.errors)
    with pytest.raises(ConfigError) as caught:
        parse_daemon_process(text)
    if len(messages) > 1:
        assert isinstance(caught.value, ConfigErrors)
        assert [error.message for error in caught.value.errors] == messages
    else:
        assert caught.value.message == messages[0]


@pytest.mark.parametrize(("text", "name", "attr", "expected"), QUOTING)
def test_quoting(text: str, name: str, attr: str, expected: Any) -> None:
    group = parse_daemon_process(text)
    assert group.name == name
    assert getattr(group.options, attr) == expected


def test_duplicate_option_warns_and_last_wins() -> None:
    result = read_daemon_process("site processes=2 processes=4")
    assert result.errors == []
    assert result.group is not None and result.group.options.processes == 4
    assert [warning.message for warning in result.warnings] == [
        "processes is given twice ('2', then '4'); the last one wins, as in mod_wsgi"
    ]


def test_continuation_lines_in_a_file() -> None:
    config = parse_apache_config(
        "WSGIDaemonProcess site \\\n"
        "    processes=2 \\\n"
        '    display-name="%{GROUP}" \\\n'
        "    python-path=/srv/a:/srv/b\n"
        "WSGIDaemonProcess other threads=x\n",
        path="/etc/httpd/site.conf",
    )
    group = config.group("site")
    assert group is not None
    assert group.options.processes == 2
    assert group.title == "(wsgi:site)"
    assert group.options.python_path == ("/srv/a", "/srv/b")
    assert group.location == Location("/etc/httpd/site.conf", 1)
    assert [str(error) for error in config.errors] == [
        "/etc/httpd/site.conf:5: threads: invalid value 'x'; expected an integer from 0 to 65533"
    ]


def test_multiprocess_follows_whether_processes_was_given() -> None:
    assert parse_daemon_process("site processes=1").multiprocess is True
    assert parse_daemon_process("site threads=4").multiprocess is False


def test_title() -> None:
    assert parse_daemon_process("site display-name=%{GROUP}").title == "(wsgi:site)"
    assert parse_daemon_process("site display-name=custom").title == "custom"
    # %{GROUP} is recognised only as the entire value, as in mod_wsgi.
    assert parse_daemon_process("site display-name=x-%{GROUP}").title == "x-%{GROUP}"
    assert parse_daemon_process("site").title is None


def test_effective_values() -> None:
    options = DaemonOptions()
    assert options.effective_socket_timeout == 60.0
    assert options.effective_response_socket_timeout == 60.0
    assert options.effective_header_buffer_size == 32768
    assert options.effective_response_buffer_size == 8 * 1024 * 1024
    assert options.effective_eviction_timeout == 15.0
    tuned = parse_daemon_process("site socket-timeout=30 eviction-timeout=3").options
    assert tuned.effective_response_socket_timeout == 30.0
    assert tuned.effective_eviction_timeout == 3.0
