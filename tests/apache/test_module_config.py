"""`wsgidaemon module-config` and the build behind it (wsgidaemon/shim/build.py).

Most tests drive the build with a stand-in apxs (a shell script that answers `-q` and
"compiles" by copying), so reuse, rebuilds, locking and failures are checked without a
compiler; the functional tests at the end compile real modules with the machine's apxs."""

from __future__ import annotations

import ast
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.apache.httpd import Apache, unavailable
from wsgidaemon.cli import main
from wsgidaemon.shim import build, moduleconfig
from wsgidaemon.shim.build import (
    ApacheBuild,
    ApxsError,
    BuildError,
    CompileError,
    compile_command,
    compute_stamp,
    default_build_dir,
    ensure_module,
    find_apxs,
    install_hint,
    load_module_config,
    parse_magic_header,
    parse_release_header,
    python_define,
    query_apxs,
)

FAKE_APXS = """\
#!/bin/sh
# A stand-in for apxs: answers -q from the environment, "compiles" by copying the source.
if [ "$1" = "-q" ]; then
  case "$2" in
    INCLUDEDIR) echo "$FAKE_APXS_INCLUDEDIR" ;;
    HTTPD_VERSION) [ -n "$FAKE_APXS_NO_VERSION" ] && exit 1; echo 2.4.99 ;;
    *) echo "fake-$2" ;;
  esac
  exit 0
fi
echo "$*" >> "$FAKE_APXS_LOG"
sleep "${FAKE_APXS_DELAY:-0}"
if [ -n "$FAKE_APXS_FAIL" ]; then
  echo "mod_wsgidaemon.c:3:5: error: $FAKE_APXS_FAIL"
  exit 1
fi
mkdir -p .libs && cat mod_wsgidaemon.c > .libs/mod_wsgidaemon.so
"""

RELEASE_H = """\
#define AP_SERVER_BASEPRODUCT "Apache"
#define AP_SERVER_MAJORVERSION_NUMBER 2
#define AP_SERVER_MINORVERSION_NUMBER 4
#define AP_SERVER_PATCHLEVEL_NUMBER   58
"""

MMN_H = """\
#ifndef MODULE_MAGIC_NUMBER_MAJOR
#define MODULE_MAGIC_NUMBER_MAJOR 20120211
#endif
#define MODULE_MAGIC_NUMBER_MINOR 142                 /* 0...n */
"""

SOURCES = {"mod_wsgidaemon.c": b"/* version 1 */\n", "wire.h": b"#define WIRE 1\n"}


def apache_build(**changes: object) -> ApacheBuild:
    fields: dict[str, object] = {
        "apxs": "/usr/bin/apxs",
        "variables": {"INCLUDEDIR": "/usr/include/apache2", "CC": "gcc"},
        "version": "2.4.71",
        "magic": "20120211:142",
    }
    fields.update(changes)
    return ApacheBuild(**fields)  # type: ignore[arg-type]


@pytest.fixture
def fake_apxs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in apxs; its compile invocations are appended to `compiles.log` beside it."""
    include = tmp_path / "include"
    include.mkdir()
    (include / "ap_release.h").write_text(RELEASE_H)
    (include / "ap_mmn.h").write_text(MMN_H)
    apxs = tmp_path / "apxs"
    apxs.write_text(FAKE_APXS)
    apxs.chmod(0o755)
    monkeypatch.setenv("FAKE_APXS_INCLUDEDIR", str(include))
    monkeypatch.setenv("FAKE_APXS_LOG", str(tmp_path / "compiles.log"))
    return apxs


def compiles(apxs: Path) -> list[str]:
    log = apxs.parent / "compiles.log"
    return log.read_text().splitlines() if log.exists() else []


# -- finding apxs ------------------------------------------------------------------------------


def test_find_apxs_prefers_the_option_then_the_environment() -> None:
    def executable(path: str) -> bool:
        return path in ("/opt/apxs", "/env/apxs", "/usr/bin/apxs")

    def which(name: str) -> str | None:
        return "/usr/bin/apxs" if name == "apxs" else None

    env = {"APXS": "/env/apxs"}
    assert find_apxs("/opt/apxs", env, which, executable) == "/opt/apxs"
    assert find_apxs(None, env, which, executable) == "/env/apxs"
    assert find_apxs(None, {}, which, executable) == "/usr/bin/apxs"
    with pytest.raises(ApxsError, match="/nowhere/apxs"):
        find_apxs("/nowhere/apxs", {}, which, executable)


def test_find_apxs_looks_in_sbin_when_path_lacks_it() -> None:
    found = find_apxs(None, {}, lambda name: None, lambda path: path == "/usr/sbin/apxs2")
    assert found == "/usr/sbin/apxs2"


def test_find_apxs_says_where_it_looked() -> None:
    with pytest.raises(ApxsError, match=r"apxs and apxs2 on PATH and in /usr/bin"):
        find_apxs(None, {}, lambda name: None, lambda path: False)


@pytest.mark.parametrize(
    ("os_release", "package"),
    [
        ('ID=debian\nVERSION_ID="12"\n', "apache2-dev"),
        ("ID=ubuntu\nID_LIKE=debian\n", "apache2-dev"),
        ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', "apache2-dev"),
        ("ID=fedora\n", "httpd-devel"),
        ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "httpd-devel"),
    ],
)
def test_install_hint_names_the_distribution_package(os_release: str, package: str) -> None:
    assert package in install_hint(os_release)


def test_install_hint_names_both_packages_when_the_system_is_unknown() -> None:
    hint = install_hint("ID=arch\n")
    assert "apache2-dev" in hint
    assert "httpd-devel" in hint


# -- pure pieces of the build ------------------------------------------------------------------


def test_headers_give_version_and_module_magic() -> None:
    assert parse_release_header(RELEASE_H) == "2.4.58"
    assert parse_magic_header(MMN_H) == "20120211:142"
    assert parse_release_header("nothing here") is None
    assert parse_magic_header("#define MODULE_MAGIC_NUMBER_MAJOR 1\n") is None


def test_compile_command_treats_warnings_as_errors_and_compiles_the_main_file_first() -> None:
    command = compile_command(
        "/usr/bin/apxs", ["wire.h", "a_helper.c", "mod_wsgidaemon.c"], "/srv/venv/bin/python"
    )
    assert command == [
        "/usr/bin/apxs",
        "-c",
        "-Wc,-Wall",
        "-Wc,-Werror",
        "-D'WSGIDAEMON_PYTHON=\"/srv/venv/bin/python\"'",
        "-o",
        "mod_wsgidaemon.so",
        "mod_wsgidaemon.c",
        "a_helper.c",
    ]


def test_compile_command_records_the_running_interpreter_by_default() -> None:
    command = compile_command("/usr/bin/apxs", ["mod_wsgidaemon.c"])
    assert python_define(sys.executable) in command


@pytest.mark.parametrize(
    "python", ["/usr/bin/python3", "/opt/my venv/bin/python", '/o\'dd/"q"/back\\slash/python']
)
def test_the_interpreter_define_survives_the_shell_and_the_c_compiler(python: str) -> None:
    # apxs pastes the option into a shell command; the compiler then sees NAME=<C literal>.
    (word,) = shlex.split(python_define(python))
    name, _, literal = word.removeprefix("-D").partition("=")
    assert name == "WSGIDAEMON_PYTHON"
    assert ast.literal_eval(literal) == python  # C and Python agree on \\ and \"


def test_stamp_changes_with_the_sources_and_the_apache_build() -> None:
    base = compute_stamp(SOURCES, apache_build())
    assert compute_stamp(dict(reversed(SOURCES.items())), apache_build()) == base
    changed_source = {**SOURCES, "wire.h": b"#define WIRE 2\n"}
    variants = [
        compute_stamp(changed_source, apache_build()),
        compute_stamp({**SOURCES, "extra.h": b""}, apache_build()),
        compute_stamp(SOURCES, apache_build(version="2.4.72")),
        compute_stamp(SOURCES, apache_build(magic="20120211:143")),
        compute_stamp(SOURCES, apache_build(apxs="/opt/httpd/bin/apxs")),
        compute_stamp(SOURCES, apache_build(variables={"INCLUDEDIR": "/opt/include"})),
        compute_stamp(SOURCES, apache_build(), python="/other/venv/bin/python"),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_default_build_dir_is_inside_the_python_environment() -> None:
    assert default_build_dir("/srv/venv", "2.4.71") == Path("/srv/venv/lib/wsgidaemon/2.4.71")
    assert default_build_dir("/srv/venv", "2.4/x y") == Path("/srv/venv/lib/wsgidaemon/2.4_x_y")


def test_load_module_config_names_apache_version_and_quotes_the_path() -> None:
    text = load_module_config(Path('/opt/my "lib"/mod_wsgidaemon.so'), apache_build())
    assert text.splitlines() == [
        "# mod_wsgidaemon for Apache 2.4.71, built with /usr/bin/apxs",
        'LoadModule wsgidaemon_module "/opt/my \\"lib\\"/mod_wsgidaemon.so"',
    ]


# -- building with a stand-in apxs -------------------------------------------------------------


def test_query_apxs_reads_variables_and_headers(fake_apxs: Path) -> None:
    apache = query_apxs(str(fake_apxs))
    assert apache.version == "2.4.99"
    assert apache.magic == "20120211:142"
    assert apache.variables["CC"] == "fake-CC"


def test_query_apxs_falls_back_to_ap_release_h(
    fake_apxs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_APXS_NO_VERSION", "1")
    assert query_apxs(str(fake_apxs)).version == "2.4.58"


def test_query_apxs_rejects_an_apxs_that_does_not_answer(
    fake_apxs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_APXS_INCLUDEDIR", "")
    with pytest.raises(ApxsError, match="INCLUDEDIR"):
        query_apxs(str(fake_apxs))


def test_a_build_is_reused_until_the_sources_change(fake_apxs: Path, tmp_path: Path) -> None:
    apache = query_apxs(str(fake_apxs))
    out = tmp_path / "out"
    module = ensure_module(out, apache, SOURCES)
    assert module == out / "mod_wsgidaemon.so"
    assert module.read_bytes() == SOURCES["mod_wsgidaemon.c"]
    assert ensure_module(out, apache, SOURCES) == module
    define = python_define(sys.executable)
    command = f"-c -Wc,-Wall -Wc,-Werror {define} -o mod_wsgidaemon.so mod_wsgidaemon.c"
    assert [shlex.split(line) for line in compiles(fake_apxs)] == [shlex.split(command)]

    (out / ".build-killed").mkdir()  # left by a build that did not finish
    ensure_module(out, apache, SOURCES, rebuild=True)
    assert len(compiles(fake_apxs)) == 2
    changed = {**SOURCES, "mod_wsgidaemon.c": b"/* version 2 */\n"}
    assert ensure_module(out, apache, changed).read_bytes() == b"/* version 2 */\n"
    assert len(compiles(fake_apxs)) == 3
    # Nothing but the module, its stamp and the lock file is left behind.
    assert sorted(p.name for p in out.iterdir()) == [
        ".build.lock",
        "mod_wsgidaemon.so",
        "mod_wsgidaemon.stamp",
    ]


def test_concurrent_builds_compile_once(
    fake_apxs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_APXS_DELAY", "0.3")
    apache = query_apxs(str(fake_apxs))
    results: list[Path] = []

    def build_one() -> None:
        results.append(ensure_module(tmp_path / "out", apache, SOURCES))

    threads = [threading.Thread(target=build_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [tmp_path / "out" / "mod_wsgidaemon.so"] * 4
    assert len(compiles(fake_apxs)) == 1


def test_a_failed_build_keeps_the_previous_module(
    fake_apxs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apache = query_apxs(str(fake_apxs))
    module = ensure_module(tmp_path / "out", apache, SOURCES)
    monkeypatch.setenv("FAKE_APXS_FAIL", "expected ';' before '}' token")
    with pytest.raises(CompileError) as caught:
        ensure_module(tmp_path / "out", apache, {**SOURCES, "mod_wsgidaemon.c": b"broken"})
    assert "expected ';' before '}' token" in caught.value.output
    assert caught.value.command[:2] == [str(fake_apxs), "-c"]
    assert module.read_bytes() == SOURCES["mod_wsgidaemon.c"]


def test_sources_without_the_module_file_are_refused(fake_apxs: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"mod_wsgidaemon\.c is missing"):
        ensure_module(tmp_path / "out", query_apxs(str(fake_apxs)), {"wire.h": b""})


def test_the_package_ships_its_c_sources() -> None:
    shipped = build.shim_sources()
    assert all(name.endswith((".c", ".h")) for name in shipped)
    package = Path(build.__file__).parent
    assert set(shipped) == {p.name for p in package.iterdir() if p.suffix in (".c", ".h")}


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def command(fake_apxs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    """Run `wsgidaemon module-config --apxs FAKE --build-dir DIR ARGS...` on SOURCES."""
    monkeypatch.setattr(moduleconfig, "shim_sources", lambda: dict(SOURCES))

    def run(*args: str) -> int:
        return main(
            ["module-config", "--apxs", str(fake_apxs), "--build-dir", str(tmp_path / "b"), *args]
        )

    return run


def test_command_prints_the_load_module_lines(
    command: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert command() == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"# mod_wsgidaemon for Apache 2.4.99, built with {tmp_path / 'apxs'}",
        f'LoadModule wsgidaemon_module "{tmp_path / "b" / "mod_wsgidaemon.so"}"',
    ]


def test_command_print_path_prints_only_the_path(
    command: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert command("--print-path") == 0
    assert capsys.readouterr().out == f"{tmp_path / 'b' / 'mod_wsgidaemon.so'}\n"


def test_command_shows_the_compiler_output_when_the_build_fails(
    command: Callable[..., int], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_APXS_FAIL", "unknown type name 'request_rec'")
    assert command() == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "mod_wsgidaemon.c:3:5: error: unknown type name 'request_rec'" in captured.err
    assert "compiling mod_wsgidaemon.c for Apache 2.4.99 failed" in captured.err


def test_command_without_apxs_names_the_package_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["module-config", "--apxs", str(tmp_path / "no-apxs")]) == 2
    err = capsys.readouterr().err
    assert "no-apxs" in err
    assert "apache2-dev" in err or "httpd-devel" in err


def test_command_reports_an_unwritable_build_dir(
    command: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "b").write_text("a file, not a directory")
    assert command() == 1
    assert "--build-dir" in capsys.readouterr().err


# -- real builds with the machine's apxs -------------------------------------------------------

PROBE_C = b"""\
#include "httpd.h"
#include "http_config.h"
#include "probe.h"

static void register_hooks(apr_pool_t *pool)
{
    (void)pool;
}

module AP_MODULE_DECLARE_DATA wsgidaemon_module = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, register_hooks
};
"""


@pytest.fixture(scope="module")
def real_apache() -> ApacheBuild:
    try:
        return query_apxs(find_apxs())
    except ApxsError as exc:
        unavailable(f"cannot build Apache modules here: {exc}")


def assert_no_libpython(module: Path) -> None:
    if shutil.which("ldd") is None:
        pytest.skip("ldd is not installed")
    linked = subprocess.run(["ldd", str(module)], capture_output=True, text=True, check=False)
    assert "libpython" not in linked.stdout + linked.stderr


def test_apxs_builds_a_module_apache_accepts(
    real_apache: ApacheBuild, tmp_path: Path, new_apache: Callable[..., Apache]
) -> None:
    sources = {"mod_wsgidaemon.c": PROBE_C, "probe.h": b"#define PROBE 1\n"}
    module = ensure_module(tmp_path / "build", real_apache, sources)
    assert module.stat().st_size > 0
    assert_no_libpython(module)
    done = new_apache(module=module).config_test()
    assert done.returncode == 0, done.stderr


def test_apxs_compiles_the_interpreter_path_in(real_apache: ApacheBuild, tmp_path: Path) -> None:
    python = '/opt/my "odd" venv/bin/python'
    probe = PROBE_C + b"const char *wsgidaemon_python = WSGIDAEMON_PYTHON;\n"
    module = ensure_module(
        tmp_path / "build", real_apache, {"mod_wsgidaemon.c": probe, "probe.h": b""}, False, python
    )
    assert python.encode() + b"\0" in module.read_bytes()


def test_apxs_warnings_fail_the_build(real_apache: ApacheBuild, tmp_path: Path) -> None:
    unused = PROBE_C.replace(b"(void)pool;", b"(void)pool;\n    int unused;")
    with pytest.raises(CompileError) as caught:
        ensure_module(tmp_path / "build", real_apache, {"mod_wsgidaemon.c": unused, "probe.h": b""})
    assert "unused" in caught.value.output
    assert not (tmp_path / "build" / "mod_wsgidaemon.so").exists()


def test_the_shim_is_built_without_libpython(wsgidaemon_module: Path) -> None:
    assert wsgidaemon_module.name == "mod_wsgidaemon.so"
    assert wsgidaemon_module.is_absolute()
    assert_no_libpython(wsgidaemon_module)
