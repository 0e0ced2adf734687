"""Compile mod_wsgidaemon.so with apxs, once per shim source and Apache build.

Strategy: everything that decides whether an existing build can be reused goes into one
*stamp*, a hash of the shim's sources, of what `apxs -q` says about the Apache build (header
and module directories, compiler and flags, version), of the module magic number in
`ap_mmn.h` and of the compile command. A build directory holds `mod_wsgidaemon.so` next to a
stamp file; while the stamp matches, the module is reused without compiling. The compile command
names the interpreter that runs the build (`-DWSGIDAEMON_PYTHON`): daemon groups that Apache
starts run under it unless python-home= or WSGIPythonHome says otherwise, so each Python
environment builds (and records) its own module.

Several processes (parallel test runs, a deployment script) may ask at once, so a build runs
under an exclusive lock on a file in the build directory, compiles in a private temporary
directory inside it, and moves the finished module into place with one rename: a reader sees
the old module or the new one, never half of one. The stamp is written after the module, so a
matching stamp always describes the file next to it.

The functions that only compute (`find_apxs`, `install_hint`, `parse_release_header`,
`parse_magic_header`, `compute_stamp`, `compile_command`, `default_build_dir`,
`load_module_config`) take everything as arguments; `query_apxs` and `ensure_module` run
programs and touch files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

MODULE_NAME = "wsgidaemon_module"
SO_NAME = "mod_wsgidaemon.so"
MAIN_SOURCE = "mod_wsgidaemon.c"
STAMP_NAME = "mod_wsgidaemon.stamp"
LOCK_NAME = ".build.lock"
WORK_PREFIX = ".build-"
SOURCE_SUFFIXES = (".c", ".h")
# Warnings are errors: the shim must compile cleanly against every Apache it is built for.
WARNING_FLAGS = ("-Wc,-Wall", "-Wc,-Werror")
# The macro naming the interpreter that runs daemon groups without python-home= or
# WSGIPythonHome: the one `wsgidaemon module-config` runs under.
PYTHON_MACRO = "WSGIDAEMON_PYTHON"
# The parts of the Apache build a compiled module depends on. HTTPD_VERSION is missing from
# some older apxs; ap_release.h stands in for it then.
APXS_VARIABLES = (
    "INCLUDEDIR",
    "LIBEXECDIR",
    "CC",
    "CFLAGS",
    "CPPFLAGS",
    "LDFLAGS",
    "HTTPD_VERSION",
)
APXS_NAMES = ("apxs", "apxs2")
APXS_DIRS = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/apache2/bin")
UNKNOWN_VERSION = "unknown"


class ApxsError(Exception):
    """No usable apxs: Apache's development files are missing, or apxs does not answer."""


class BuildError(Exception):
    """The module could not be built."""


class CompileError(BuildError):
    """apxs ran and failed; carries the command and everything it printed."""

    def __init__(self, message: str, command: Sequence[str], output: str) -> None:
        super().__init__(message)
        self.command = list(command)
        self.output = output


@dataclass(frozen=True)
class ApacheBuild:
    """The Apache installation a module is compiled for, as its apxs describes it."""

    apxs: str
    variables: Mapping[str, str]
    version: str  # e.g. "2.4.71", or UNKNOWN_VERSION
    magic: str  # MODULE_MAGIC_NUMBER as "major:minor", or "" when ap_mmn.h is unreadable


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_apxs(
    explicit: str | None = None,
    environ: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    is_executable: Callable[[str], bool] = _is_executable,
) -> str:
    """The apxs to use: `explicit` (--apxs), else $APXS, else apxs/apxs2 on PATH or in the
    usual directories (sbin is often missing from a user's PATH)."""
    env = os.environ if environ is None else environ
    chosen = explicit or env.get("APXS")
    if chosen:
        found = which(chosen) if os.sep not in chosen else chosen
        if found and is_executable(found):
            return os.path.abspath(found)
        raise ApxsError(f"apxs {chosen!r} is not an executable file")
    for name in APXS_NAMES:
        found = which(name)
        if found and is_executable(found):
            return os.path.abspath(found)
    for directory in APXS_DIRS:
        for name in APXS_NAMES:
            path = os.path.join(directory, name)
            if is_executable(path):
                return path
    raise ApxsError(
        "apxs, Apache's tool for building modules, was not found "
        f"(looked for {' and '.join(APXS_NAMES)} on PATH and in {', '.join(APXS_DIRS)})"
    )


def install_hint(os_release: str) -> str:
    """What to install to get apxs, for the system described by /etc/os-release's text."""
    fields = dict(re.findall(r'^(ID|ID_LIKE)="?([^"\n]*)"?$', os_release, re.MULTILINE))
    ids = set(" ".join(fields.values()).lower().split())
    if ids & {"debian", "ubuntu"}:
        return "install the apache2-dev package (apt-get install apache2-dev)"
    if ids & {"fedora", "rhel", "centos"}:
        return "install the httpd-devel package (dnf install httpd-devel)"
    return (
        "install Apache's development package: apache2-dev on Debian/Ubuntu, "
        "httpd-devel on Red Hat/Fedora"
    )


def parse_release_header(text: str) -> str | None:
    """The Apache version ("2.4.71") defined in ap_release.h, or None."""
    parts = []
    for part in ("MAJORVERSION", "MINORVERSION", "PATCHLEVEL"):
        match = re.search(rf"^#define\s+AP_SERVER_{part}_NUMBER\s+(\d+)", text, re.MULTILINE)
        if match is None:
            return None
        parts.append(match.group(1))
    return ".".join(parts)


def parse_magic_header(text: str) -> str | None:
    """MODULE_MAGIC_NUMBER ("20120211:142") defined in ap_mmn.h, or None."""
    numbers = []
    for part in ("MAJOR", "MINOR"):
        match = re.search(rf"^#define\s+MODULE_MAGIC_NUMBER_{part}\s+(\d+)", text, re.MULTILINE)
        if match is None:
            return None
        numbers.append(match.group(1))
    return ":".join(numbers)


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return ""


def query_apxs(apxs: str) -> ApacheBuild:
    """Ask `apxs -q` about the Apache build; raises ApxsError if apxs does not answer."""
    variables: dict[str, str] = {}
    for name in APXS_VARIABLES:
        try:
            done = subprocess.run(
                [apxs, "-q", name],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError as exc:
            raise ApxsError(f"cannot run {apxs}: {exc}") from exc
        variables[name] = done.stdout.strip() if done.returncode == 0 else ""
    include = variables["INCLUDEDIR"]
    if not include:
        raise ApxsError(f"{apxs} -q INCLUDEDIR gave no answer; is apxs working?")
    version = (
        variables["HTTPD_VERSION"]
        or parse_release_header(_read_text(os.path.join(include, "ap_release.h")))
        or UNKNOWN_VERSION
    )
    magic = parse_magic_header(_read_text(os.path.join(include, "ap_mmn.h"))) or ""
    return ApacheBuild(apxs=apxs, variables=variables, version=version, magic=magic)


def shim_sources(package: str = "wsgidaemon.shim") -> dict[str, bytes]:
    """The C sources and headers shipped in `package`, by file name."""
    return {
        entry.name: entry.read_bytes()
        for entry in resources.files(package).iterdir()
        if entry.name.endswith(SOURCE_SUFFIXES) and entry.is_file()
    }


def python_define(python: str) -> str:
    """The apxs -D option compiling `python` into the module as a C string literal. apxs
    pastes it into a shell command, so it is quoted for C first and then for the shell."""
    literal = '"' + python.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "-D" + shlex.quote(f"{PYTHON_MACRO}={literal}")


def compile_command(
    apxs: str, source_names: Sequence[str], python: str = sys.executable
) -> list[str]:
    """The apxs command line compiling the C files among `source_names` (the main one first)
    into SO_NAME in the current directory, with `python` as the default interpreter of daemon
    groups; headers are found there by `#include "..."`."""
    c_files = sorted(name for name in source_names if name.endswith(".c"))
    if MAIN_SOURCE in c_files:
        c_files.remove(MAIN_SOURCE)
        c_files.insert(0, MAIN_SOURCE)
    return [apxs, "-c", *WARNING_FLAGS, python_define(python), "-o", SO_NAME, *c_files]


def compute_stamp(
    sources: Mapping[str, bytes], apache: ApacheBuild, python: str = sys.executable
) -> str:
    """A digest of everything the compiled module depends on."""
    described = {
        "sources": {name: hashlib.sha256(data).hexdigest() for name, data in sources.items()},
        "apxs": apache.apxs,
        "variables": dict(apache.variables),
        "version": apache.version,
        "magic": apache.magic,
        "command": compile_command(apache.apxs, list(sources), python),
    }
    encoded = json.dumps(described, sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()


def default_build_dir(prefix: str, version: str) -> Path:
    """Where a build for Apache `version` lives by default: inside the Python environment
    (`sys.prefix`), so that one pip install carries its own module."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", version) or UNKNOWN_VERSION
    return Path(prefix) / "lib" / "wsgidaemon" / safe


def load_module_config(path: Path, apache: ApacheBuild) -> str:
    """The lines to paste into Apache's configuration to load the module at `path`."""
    quoted = str(path).replace('"', '\\"')
    return (
        f"# mod_wsgidaemon for Apache {apache.version}, built with {apache.apxs}\n"
        f'LoadModule {MODULE_NAME} "{quoted}"\n'
    )


def _stamp_matches(build_dir: Path, stamp: str) -> bool:
    if not (build_dir / SO_NAME).is_file():
        return False
    try:
        recorded = json.loads((build_dir / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and recorded.get("stamp") == stamp


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def ensure_module(
    build_dir: Path,
    apache: ApacheBuild,
    sources: Mapping[str, bytes],
    rebuild: bool = False,
    python: str = sys.executable,
) -> Path:
    """The absolute path of a module built from `sources` for `apache` in `build_dir`, with
    `python` as the daemon groups' default interpreter, compiling it first unless a matching
    build is already there (or `rebuild`).

    Raises BuildError when the sources lack MAIN_SOURCE, CompileError when apxs fails, and
    OSError when the build directory cannot be written."""
    if MAIN_SOURCE not in sources:
        raise BuildError(f"the shim source {MAIN_SOURCE} is missing from the installed package")
    build_dir = Path(os.path.abspath(build_dir))
    module = build_dir / SO_NAME
    stamp = compute_stamp(sources, apache, python)
    if not rebuild and _stamp_matches(build_dir, stamp):
        return module
    build_dir.mkdir(parents=True, exist_ok=True)
    with _locked(build_dir / LOCK_NAME):
        # Whoever held the lock before us may have just built the same thing.
        if not rebuild and _stamp_matches(build_dir, stamp):
            return module
        # Work directories exist only while their builder holds the lock: any left now
        # belong to a build that was killed.
        for stale in build_dir.glob(WORK_PREFIX + "*"):
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=WORK_PREFIX, dir=build_dir) as work:
            _compile(Path(work), apache, sources, module, python)
            record = {
                "stamp": stamp,
                "apache_version": apache.version,
                "apxs": apache.apxs,
                "sources": sorted(sources),
                "python": python,
            }
            (Path(work) / STAMP_NAME).write_text(json.dumps(record, indent=1) + "\n")
            os.replace(Path(work) / STAMP_NAME, build_dir / STAMP_NAME)
    return module


def _compile(
    work: Path, apache: ApacheBuild, sources: Mapping[str, bytes], target: Path, python: str
) -> None:
    """Compile `sources` in `work` and rename the result to `target`."""
    for name, data in sources.items():
        (work / name).write_bytes(data)
    command = compile_command(apache.apxs, list(sources), python)
    try:
        done = subprocess.run(
            command,
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            check=False,
        )
    except OSError as exc:
        raise CompileError(f"cannot run {apache.apxs}: {exc}", command, "") from exc
    if done.returncode != 0:
        raise CompileError(
            f"compiling {MAIN_SOURCE} for Apache {apache.version} failed "
            f"(apxs exit status {done.returncode})",
            command,
            done.stdout,
        )
    for built in (work / ".libs" / SO_NAME, work / SO_NAME):
        if built.is_file():
            built.chmod(0o755)
            os.replace(built, target)
            return
    raise CompileError(f"apxs reported success but produced no {SO_NAME}", command, done.stdout)
