"""Reading whole Apache configurations: includes, ServerRoot, virtual hosts, per-directory
context, the result types the shim will consume."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wsgidaemon.config import (
    DirectorySettings,
    Location,
    ScriptAlias,
    parse_apache_config,
    read_apache_config,
    resolve_routes,
)
from wsgidaemon.config.source import MemorySource

SITE = Path(__file__).parent / "corpus" / "site"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    shutil.copytree(SITE, root)
    main = root / "httpd.conf"
    main.write_text(main.read_text().replace("@SERVER_ROOT@", str(root)))
    return root


def test_multi_file_configuration(site: Path) -> None:
    config = read_apache_config(str(site / "httpd.conf"))
    assert config.errors == []
    assert config.warnings == []
    assert config.server_root == str(site)
    assert config.files == (
        str(site / "httpd.conf"),
        str(site / "conf.d" / "10-main.conf"),
        str(site / "conf.d" / "20-shop.conf"),
        str(site / "sites" / "blog" / "blog.conf"),
    )
    assert [group.name for group in config.daemon_groups] == ["main", "shop", "blog"]

    main = config.group("main")
    assert main is not None
    assert main.vhost is None
    assert main.location == Location(str(site / "conf.d" / "10-main.conf"), 1)
    assert main.title == "(wsgi:main)"
    assert main.options.python_path == ("/srv/main", "/srv/lib")
    assert main.options.maximum_requests_jitter == 100

    shop = config.group("shop")
    assert shop is not None and shop.vhost is not None
    assert shop.vhost.server_name == "shop.example.com"
    assert shop.vhost.server_aliases == ("www.shop.example.com",)
    assert shop.vhost.addresses == ("*:80", "[::]:80")
    assert shop.title == "wsgi-shop"
    blog = config.group("blog")
    assert blog is not None and blog.vhost is not None
    assert blog.vhost.server_name == "blog.example.com"

    assert config.socket_prefix == str(site / "run" / "wsgi")
    assert config.server.restrict_embedded is True
    assert config.server_name == "www.example.com"
    assert [vhost.server_name for vhost in config.virtual_hosts] == [
        "shop.example.com",
        "blog.example.com",
    ]

    routes = {route.url: route for route in resolve_routes(config)}
    assert routes["/"].group_name == "main"
    assert routes["/shop"].group_name == "shop"
    assert routes["/shop"].process_group_from == Location(str(site / "conf.d/20-shop.conf"), 8)
    assert routes["/shop"].application_group == "%{GLOBAL}"
    assert routes["/blog"].group_name == "blog"


def test_directory_context_settings(site: Path) -> None:
    config = read_apache_config(str(site / "httpd.conf"))
    directory = [c for c in config.contexts if c.scope.kind == "Directory"]
    assert len(directory) == 1
    context = directory[0]
    assert context.scope.pattern == "/srv/shop"
    assert context.scope.vhost is not None
    assert context.scope.vhost.server_name == "shop.example.com"
    assert context.settings == DirectorySettings(process_group="shop", script_reloading=False)
    vhost = context.scope.vhost
    server = config.server_settings(vhost)
    assert server.pass_authorization is True
    assert server.application_group == "%{GLOBAL}"
    assert config.server_settings(None).pass_authorization is None


def test_server_root_argument_and_default(site: Path) -> None:
    main = site / "httpd.conf"
    main.write_text(main.read_text().replace(f'ServerRoot "{site}"', ""))
    elsewhere = site.parent / "other-root"
    (elsewhere / "conf.d").mkdir(parents=True)
    (elsewhere / "conf.d" / "x.conf").write_text("WSGIDaemonProcess from-argument\n")
    by_argument = read_apache_config(str(main), server_root=str(elsewhere))
    assert by_argument.errors == []
    assert [group.name for group in by_argument.daemon_groups] == ["from-argument"]
    by_default = read_apache_config(str(main))
    assert by_default.server_root == str(site)
    assert [group.name for group in by_default.daemon_groups] == ["main", "shop", "blog"]


def test_include_errors_are_located(site: Path) -> None:
    extra = site / "conf.d" / "30-more.conf"
    extra.write_text(
        "Include missing.conf\n"
        "Include nothing/*.conf\n"
        "IncludeOptional nothing/*.conf\n"
        "IncludeOptional missing.conf\n"
        "Include conf.d/30-more.conf\n"
    )
    config = read_apache_config(str(site / "httpd.conf"))
    assert [str(error) for error in config.errors] == [
        f"{extra}:1: Include: {site}/missing.conf does not exist",
        f"{extra}:2: Include: no files match 'nothing/*.conf' (looked for {site}/nothing/*.conf);"
        " use IncludeOptional if that is expected",
        f"{extra}:5: Include: {site}/conf.d/30-more.conf includes itself (an Include loop)",
    ]


def test_missing_main_file(tmp_path: Path) -> None:
    config = read_apache_config(str(tmp_path / "nope.conf"))
    assert [error.message for error in config.errors] == [
        f"cannot read {tmp_path}/nope.conf: No such file or directory"
    ]


def test_text_in_memory_with_includes() -> None:
    config = parse_apache_config(
        "ServerRoot /etc/httpd\nInclude conf.d/*.conf\n",
        path="/etc/httpd/conf/httpd.conf",
        files={
            "/etc/httpd/conf.d/b.conf": "WSGIDaemonProcess b\n",
            "/etc/httpd/conf.d/a.conf": "WSGIDaemonProcess a processes=3\n",
            "/etc/httpd/conf.d/.hidden.conf": "WSGIDaemonProcess hidden\n",
        },
    )
    assert config.errors == []
    assert [group.name for group in config.daemon_groups] == ["a", "b"]
    group = config.group("a")
    assert group is not None
    assert group.location == Location("/etc/httpd/conf.d/a.conf", 1)


def test_other_directives_are_ignored_and_names_are_case_insensitive() -> None:
    config = parse_apache_config(
        "Listen 80\n"
        "SSLEngine on\n"
        "RewriteRule ^/(.*) /x [L]\n"
        "wsgidaemonprocess site processes=2\n"
        "<virtualhost *:80>\n"
        "  servername example.com\n"
        "  <LOCATION /app>\n"
        "    wsgiprocessgroup site\n"
        "    WSGIAPPLICATIONGROUP %{GLOBAL}\n"
        "  </location>\n"
        "  wsgiscriptalias /app /srv/app.wsgi\n"
        "</VIRTUALHOST>\n"
    )
    assert config.errors == []
    assert config.warnings == []
    (route,) = resolve_routes(config)
    assert route.group_name == "site"
    assert route.vhost is not None and route.vhost.server_name == "example.com"


def test_script_alias_records() -> None:
    config = parse_apache_config(
        "WSGIDaemonProcess site\n"
        "WSGIScriptAlias /app /srv/app.wsgi process-group=site application-group=%{GLOBAL} "
        "callable-object=app pass-authorization=On\n"
        "WSGIScriptAliasMatch ^/(\\w+)/api /srv/$1.wsgi process-group=site\n"
        "WSGIImportScript /srv/app.wsgi process-group=site application-group=%{GLOBAL}\n",
        path="/etc/httpd.conf",
    )
    assert config.errors == []
    plain, regex = config.script_aliases
    assert plain == ScriptAlias(
        url="/app",
        target="/srv/app.wsgi",
        process_group="site",
        application_group="%{GLOBAL}",
        callable_object="app",
        pass_authorization=True,
        location=Location("/etc/httpd.conf", 2),
    )
    assert plain.preload is True
    assert regex.regex is True and regex.directive == "WSGIScriptAliasMatch"
    assert regex.preload is False
    (script,) = config.import_scripts
    assert (script.path, script.process_group, script.application_group) == (
        "/srv/app.wsgi",
        "site",
        "%{GLOBAL}",
    )


@pytest.mark.parametrize(
    ("url", "uri", "expected"),
    [
        ("/app", "/app", ("/app", "/srv/app.wsgi")),
        ("/app", "/app/x/y", ("/app", "/srv/app.wsgi/x/y")),
        # As mod_wsgi: the rest of the URI is appended as is; Apache's path walk cleans it.
        ("/app", "//app//x", ("/app", "/srv/app.wsgi//x")),
        ("/app", "/apple", None),
        ("/", "/anything", ("/", "/srv/app.wsgi/anything")),
    ],
)
def test_alias_matching(url: str, uri: str, expected: tuple[str, str] | None) -> None:
    match = ScriptAlias(url, "/srv/app.wsgi").match(uri)
    assert (None if match is None else (match.script_name, match.filename)) == expected


def test_regex_alias_matching() -> None:
    alias = ScriptAlias(r"^/(\w+)/api", "/srv/$1.wsgi", regex=True)
    match = alias.match("/shop/api/items")
    assert match is not None
    assert (match.script_name, match.filename) == ("/shop/api", "/srv/shop.wsgi/items")
    assert alias.match("/static") is None


def test_settings_accumulate_and_merge() -> None:
    config = parse_apache_config(
        "WSGITrustedProxies 10.0.0.0/8\n"
        "WSGITrustedProxies ::1\n"
        "WSGIMapHEADToGET on\n"
        "<Location /api>\n"
        "  WSGIMapHEADToGET Off\n"
        "  WSGIChunkedRequest On\n"
        "</Location>\n"
    )
    server, api = config.contexts
    assert server.settings.trusted_proxies == ("10.0.0.0/8", "::1")
    assert server.settings.map_head_to_get == "On"
    merged = server.settings.merged(api.settings)
    assert merged.map_head_to_get == "Off"
    assert merged.chunked_request is True
    assert merged.trusted_proxies == ("10.0.0.0/8", "::1")
    assert merged.effective("script_reloading") is True
    assert merged.effective("callable_object") == "application"
    assert api.scope.label == "<Location /api>"
    assert api.locations["chunked_request"] == Location("/etc/apache2/httpd.conf", 6)


def test_sub_location_routes() -> None:
    config = parse_apache_config(
        "WSGIDaemonProcess site\n"
        "WSGIDaemonProcess api\n"
        "WSGIApplicationGroup %{GLOBAL}\n"
        "WSGIProcessGroup site\n"
        "WSGIScriptAlias / /srv/app.wsgi\n"
        "<Location /api>\n"
        "  WSGIProcessGroup api\n"
        "</Location>\n"
        "<LocationMatch ^/static>\n"
        "  WSGIProcessGroup api\n"
        "</LocationMatch>\n"
    )
    assert config.warnings == []
    routes = [(route.url, route.group_name) for route in resolve_routes(config)]
    assert routes == [("/", "site"), ("/api", "api")]


def test_server_names_compare_without_port_or_scheme() -> None:
    config = parse_apache_config(
        "ServerName https://www.example.com:443\n"
        "<VirtualHost *:443>\n"
        "  ServerName www.example.com:443\n"
        "  WSGIDaemonProcess site\n"
        "</VirtualHost>\n"
        "WSGIProcessGroup site\n"
        "WSGIApplicationGroup %{GLOBAL}\n"
    )
    assert config.server_name == "www.example.com"
    assert config.virtual_hosts[0].server_name == "www.example.com"
    assert config.warnings == []


def test_memory_source_globs_like_the_disk() -> None:

    source = MemorySource(
        {"/c/a.conf": "", "/c/sub/b.conf": "", "/c/.hidden.conf": "", "/c/sub/deep/x": ""}
    )
    assert source.glob("/c/*.conf") == ["/c/a.conf"]
    assert source.glob("/c/*") == ["/c/a.conf", "/c/sub"]
    assert source.is_dir("/c/sub") and not source.is_dir("/c/a.conf")
    assert source.files_below("/c/sub") == ["/c/sub/b.conf", "/c/sub/deep/x"]
    with pytest.raises(FileNotFoundError):
        source.read_text("/c/none")
