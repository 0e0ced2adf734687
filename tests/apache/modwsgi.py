"""The real mod_wsgi, for the tests that compare wsgidaemon with it
(tests/apache/test_environ_parity.py).

mod_wsgi comes from PyPI (`pip install mod-wsgi`, which compiles it with apxs against this
interpreter, so it needs Apache's and Python's development files). `require_mod_wsgi()` finds
the compiled module through `mod_wsgi-express module-config`, the command its documentation
gives for loading it into an existing Apache, and turns a missing piece into a skip, or into a
failure when WSGIDAEMON_REQUIRE_APACHE is set (CI installs it, so there the comparison runs).

`daemon_directives()` is the configuration of a mod_wsgi daemon process group for a private
Apache from tests/apache/httpd.py. Only the module is loaded from the virtual environment:
mod_wsgi's daemon processes start Python after dropping to Apache's user and find the
interpreter's standard library by themselves, so WSGIPythonHome is deliberately not set (a
virtual environment may sit where Apache's user cannot read it) and the applications they run
must need nothing but the standard library.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.apache.httpd import unavailable

EXPRESS = "mod_wsgi-express"
INSTALL_HINT = (
    "pip install mod-wsgi (it builds with apxs and the Python headers; on Debian: "
    "apt-get install apache2-dev python3-dev)"
)


@dataclass(frozen=True)
class ModWsgiInstall:
    """mod_wsgi as `mod_wsgi-express module-config` describes it."""

    version: str
    module: Path  # the .so for LoadModule wsgi_module
    load_files: tuple[Path, ...]  # libraries to LoadFile first (a shared libpython, if any)

    def load_directives(self) -> list[str]:
        return [f'LoadFile "{path}"' for path in self.load_files] + [
            f'LoadModule wsgi_module "{self.module}"'
        ]


def _express_command() -> list[str] | None:
    """mod_wsgi-express next to this interpreter (a virtual environment's bin), else on PATH."""
    beside = Path(sys.executable).with_name(EXPRESS)
    if beside.is_file():
        return [str(beside)]
    found = shutil.which(EXPRESS)
    return [found] if found else None


@functools.cache
def find_mod_wsgi() -> ModWsgiInstall | str:
    """The installed mod_wsgi, or why it cannot be used."""
    if importlib.util.find_spec("mod_wsgi") is None:
        return f"mod_wsgi is not installed in {sys.prefix}: {INSTALL_HINT}"
    try:
        version = importlib.metadata.version("mod-wsgi")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    command = _express_command()
    if command is None:
        return f"mod_wsgi {version} is importable but {EXPRESS} is not installed: {INSTALL_HINT}"
    done = subprocess.run([*command, "module-config"], capture_output=True, text=True, check=False)
    modules = re.findall(r'^LoadModule\s+wsgi_module\s+"?([^"\n]+)"?\s*$', done.stdout, re.M)
    if done.returncode != 0 or not modules:
        return (
            f"{EXPRESS} module-config did not name the module (status {done.returncode}):\n"
            f"{done.stdout}{done.stderr}"
        )
    module = Path(modules[0])
    if not module.is_file():
        return f"{EXPRESS} module-config names {module}, which does not exist"
    load_files = tuple(
        Path(path) for path in re.findall(r'^LoadFile\s+"?([^"\n]+)"?\s*$', done.stdout, re.M)
    )
    return ModWsgiInstall(version, module, load_files)


def require_mod_wsgi() -> ModWsgiInstall:
    """The installed mod_wsgi, or skip (fail under WSGIDAEMON_REQUIRE_APACHE)."""
    found = find_mod_wsgi()
    if isinstance(found, str):
        unavailable(found)
    return found


def daemon_directives(
    install: ModWsgiInstall,
    group: str,
    run_dir: Path,
    *,
    processes: int,
    threads: int,
) -> list[str]:
    """Load mod_wsgi and define daemon process group `group`, its sockets in `run_dir`.

    WSGIRestrictEmbedded keeps Python out of Apache's own children, as production daemon-mode
    configurations do: every request must then go to a daemon process."""
    return [
        *install.load_directives(),
        "WSGIRestrictEmbedded On",
        f'WSGISocketPrefix "{run_dir}/wsgi"',
        f"WSGIDaemonProcess {group} processes={processes} threads={threads}",
    ]
