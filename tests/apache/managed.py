"""Fixtures and helpers for the tests of daemon groups that Apache starts itself
(docs/apache-managed.md), tests/apache/test_managed_*.py, which bind the fixtures they use.

Everything a daemon worker touches must be readable by Apache's user (www-data when the tests
run as root), and neither the checkout nor its .venv need be (CI may keep them in a private
directory). So the applications run from **public virtual environments** under
/var/tmp/wsgidaemon-test (WSGIDAEMON_TEST_ROOT), built here once and reused:

- `public_venv`: /usr/bin/python3 -m venv, with this checkout installed into it (a copy, not an
  editable install) plus Flask and Django. Keyed by a hash of pyproject.toml, README.md and
  the package's sources, so it is rebuilt exactly when they change; built under an exclusive
  lock and held under a shared one until the session ends, so parallel sessions neither race
  nor delete a venv another session uses. Venvs no session holds and none used for ten
  minutes are removed (the sources change often while one works on them).
- `second_venv`: the same on another Python version, from a pyenv build (pyenv keeps them under
  /root, which Apache's user cannot enter). The build is copied to
  /var/tmp/wsgidaemon-test/python-X.Y.Z, its interpreter's RUNPATH pointed at the copy with
  patchelf, and its standard library compiled once. Skipped, or failed under
  WSGIDAEMON_REQUIRE_APACHE, when there is no such build or no patchelf.

Applications: `copy_flask_app()` and the `django_site` fixture copy tests/apache/apps/flaskapp
and tests/apache/apps/djangosite to world-readable temporary directories (the Django project
migrated there, its sqlite directory given to Apache's user).

`ManagedApache` is the harness's Apache (tests/apache/httpd.py) with what these tests look at:
the group masters and workers it started, found in /proc; requests polled until they succeed;
and a teardown that, after Apache stopped, waits for every daemon process of its ServerRoot to
go and kills by pid whatever is still there (`leftovers` records it; the fixtures warn). A
process belongs to the ServerRoot if Apache's parent started it (or its descendants), if its
command line names the ServerRoot, or if it holds a socket bound under it.

`RetryingLoad` is tests/functional/load.py's KeepAliveLoad with the one resend clients make
when a server closes an idle keep-alive connection under them (Apache's graceful restart).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.apache.httpd import Apache, HttpdInstall, unavailable
from tests.functional.daemon import Response, wait_for
from tests.functional.load import KeepAliveLoad

REPO = Path(__file__).resolve().parents[2]
APPS = Path(__file__).parent / "apps"
FLASK_APP = APPS / "flaskapp"
DJANGO_SITE = APPS / "djangosite"

TEST_ROOT = Path(os.environ.get("WSGIDAEMON_TEST_ROOT", "/var/tmp/wsgidaemon-test"))
BASE_PYTHON = Path("/usr/bin/python3")
SITE_PACKAGES = ("flask", "django")
PYENV_ROOTS = (os.environ.get("PYENV_ROOT", ""), "/root/.pyenv", str(Path.home() / ".pyenv"))
SECOND_VERSIONS = ((3, 12), (3, 13), (3, 10))  # the order a second interpreter is chosen in
PRUNE_AGE = 600.0  # a venv or interpreter copy unused this long (and by no session) goes
SOURCE_SUFFIXES = (".py", ".c", ".h", ".typed", ".toml", ".md", ".txt", ".json", ".cfg")

MASTER_TITLE = re.compile(r"^wsgidaemon: master \[(.*)\]$")
READY_TIMEOUT = 30.0  # a group's first 200: Python start-up, workers, Django's import
GONE_TIMEOUT = 15.0  # daemon processes must be gone this long after Apache stopped


# -- files Apache's user can read ------------------------------------------------------------


def make_public(top: Path) -> None:
    """Directories 0755-ish, files readable (and executable where the owner may execute)."""
    for path in (top, *top.rglob("*")):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        if path.is_dir():
            path.chmod(mode | 0o755)
        else:
            path.chmod(mode | 0o444 | (0o111 if mode & 0o100 else 0))


def public_dir(prefix: str) -> Path:
    """A new directory under /tmp that Apache's user can traverse."""
    made = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    made.chmod(0o755)
    return made


def ensure_test_root() -> Path:
    TEST_ROOT.mkdir(parents=True, exist_ok=True)
    TEST_ROOT.chmod(0o755)
    for parent in TEST_ROOT.parents:  # /var/tmp is 1777; a custom root must be reachable too
        if parent == Path("/") or parent.stat().st_mode & 0o005 == 0o005:
            continue
        unavailable(f"{parent} is not world-traversable: set WSGIDAEMON_TEST_ROOT elsewhere")
    return TEST_ROOT


def apache_user(install: HttpdInstall) -> tuple[str, str] | None:
    """(user, group) the children and daemon workers run as, or None when not root."""
    if install.user is None or install.group is None:
        return None
    return install.user, install.group


def run_as(user: tuple[str, str] | None, *command: str | Path) -> subprocess.CompletedProcess[str]:
    """Run `command` as Apache's user (as ourselves when not root)."""
    options: dict[str, object] = {}
    if user is not None:
        options = {"user": user[0], "group": user[1], "extra_groups": []}
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        **options,  # type: ignore[arg-type]
    )


def lock(path: Path, mode: int = fcntl.LOCK_EX) -> int:
    """An open descriptor of lock file `path`, flock()ed with `mode`. Retried when the file
    was removed (by prune()) while we waited, so that the lock held is the one on the path."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
        except OSError:
            os.close(fd)
            raise
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)


@contextlib.contextmanager
def locked(path: Path, mode: int = fcntl.LOCK_EX) -> Iterator[int]:
    fd = lock(path, mode)
    try:
        yield fd
    finally:
        os.close(fd)


def prune(pattern: str, keep: Path) -> None:
    """Remove TEST_ROOT entries matching `pattern` unused for PRUNE_AGE that no session holds."""
    for old in TEST_ROOT.glob(pattern):
        if old == keep or not old.is_dir() or ".new-" in old.name:  # a copy under way
            continue
        marker = old / ".complete"
        with contextlib.suppress(OSError):
            if marker.exists() and time.time() - marker.stat().st_mtime < PRUNE_AGE:
                continue
            lock_path = old.with_name(old.name + ".lock")
            fd = lock(lock_path, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a session holds it
            try:
                shutil.rmtree(old, ignore_errors=True)
                lock_path.unlink()
            finally:
                os.close(fd)


# -- public virtual environments -------------------------------------------------------------


@dataclass(frozen=True)
class Venv:
    """A virtual environment Apache's user can run, with wsgidaemon, Flask and Django."""

    home: Path  # what python-home= names
    version: tuple[int, int, int]

    @property
    def python(self) -> Path:
        return self.home / "bin" / "python"

    @property
    def label(self) -> str:
        return ".".join(map(str, self.version))


def source_files() -> list[Path]:
    """What `pip install` of the checkout reads: its metadata and the package's sources."""
    files = [REPO / "pyproject.toml", REPO / "README.md"]
    for path in sorted((REPO / "wsgidaemon").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in SOURCE_SUFFIXES:
            files.append(path)
    return files


def venv_key(base_python: Path, packages: Iterable[str]) -> str:
    digest = hashlib.sha256()
    version = subprocess.run(
        [str(base_python), "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for part in (str(base_python.resolve()), version, *packages):
        digest.update(part.encode() + b"\0")
    for path in source_files():
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def copy_sources(dest: Path) -> None:
    """The checkout's installable files, so that pip builds in a scratch directory and never
    writes build/ or *.egg-info into the repository."""
    for path in source_files():
        target = dest / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _check(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=False
    )


def build_venv(home: Path, base_python: Path, packages: Iterable[str]) -> None:
    """`base_python -m venv home`, then pip install a copy of the checkout and `packages`."""
    shutil.rmtree(home, ignore_errors=True)
    _check(_run(base_python, "-m", "venv", home), f"{base_python} -m venv {home}")
    with tempfile.TemporaryDirectory(prefix="wsgidaemon-src-") as scratch:
        copy_sources(Path(scratch))
        pip = [home / "bin" / "python", "-m", "pip", "install", "-q", "--root-user-action=ignore"]
        _check(_run(*pip, scratch, *packages), f"pip install wsgidaemon {' '.join(packages)}")
    make_public(home)


_VENVS: dict[Path, Venv] = {}  # per base interpreter, for this process's lifetime


def ensure_venv(base_python: Path, user: tuple[str, str] | None) -> Venv:
    """The public venv on `base_python`, built if missing or stale. This process then holds
    it (a shared lock, released when the process exits) so that no other session prunes it."""
    if base_python in _VENVS:
        return _VENVS[base_python]
    root = ensure_test_root()
    key = venv_key(base_python, SITE_PACKAGES)
    home = root / f"venv-{key}"
    fd = lock(home.with_name(home.name + ".lock"))
    marker = home / ".complete"
    if not marker.exists():
        build_venv(home, base_python, SITE_PACKAGES)
        marker.write_text(f"{base_python}\n")
    marker.touch()
    fcntl.flock(fd, fcntl.LOCK_SH)  # in use from here on; fd stays open on purpose
    prune("venv-*", keep=home)
    probe = "import sys, wsgidaemon, flask, django; print(*sys.version_info[:3])"
    done = run_as(user, home / "bin" / "python", "-c", probe)
    if done.returncode != 0:
        raise RuntimeError(f"{home} is not usable by {user}:\n{done.stderr}")
    major, minor, micro = map(int, done.stdout.split())
    _VENVS[base_python] = Venv(home, (major, minor, micro))
    return _VENVS[base_python]


# -- a second interpreter --------------------------------------------------------------------


def pyenv_builds() -> dict[tuple[int, int], Path]:
    """The newest pyenv build of each X.Y, from PYENV_ROOT, /root/.pyenv or ~/.pyenv."""
    found: dict[tuple[int, int], tuple[tuple[int, ...], Path]] = {}
    for pyenv in PYENV_ROOTS:
        versions = Path(pyenv) / "versions" if pyenv else None
        if versions is None or not versions.is_dir():
            continue
        for build in versions.iterdir():
            match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", build.name)
            if not match or not (build / "bin").is_dir():
                continue
            numbers = tuple(map(int, match.groups()))
            minor = (numbers[0], numbers[1])
            if minor not in found or numbers > found[minor][0]:
                found[minor] = (numbers, build)
    return {minor: path for minor, (_numbers, path) in found.items()}


def public_interpreter(build: Path, user: tuple[str, str] | None) -> Path:
    """A copy of the pyenv `build` that Apache's user can run: its bin/pythonX.Y."""
    version = build.name
    minor = ".".join(version.split(".")[:2])
    dest = ensure_test_root() / f"python-{version}"
    python = dest / "bin" / f"python{minor}"
    with locked(dest.with_name(dest.name + ".lock")):
        if not (dest / ".complete").exists():
            copy_interpreter(build, dest, minor)
        (dest / ".complete").touch()
    done = run_as(user, python, "-c", "import sys, ssl, sqlite3; print(sys.prefix)")
    if done.returncode != 0 or done.stdout.strip() != str(dest):
        raise RuntimeError(
            f"{python} does not run as {user or 'this user'} from its own prefix:\n"
            f"{done.stdout}{done.stderr}"
        )
    return python


def copy_interpreter(build: Path, dest: Path, minor: str) -> None:
    patchelf = shutil.which("patchelf")
    if patchelf is None:
        unavailable(
            f"patchelf is not installed: it is needed to run a copy of {build} as Apache's "
            "user (on Debian: apt-get install patchelf)"
        )
    scratch = dest.with_name(dest.name + f".new-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    stdlib = f"lib/python{minor}"

    def skip(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).relative_to(build).as_posix()
        dropped = {"__pycache__"}
        if relative == stdlib:
            dropped |= {"test", "idlelib", "turtledemo", "site-packages"}
        return dropped & set(names)

    shutil.copytree(build, scratch, symlinks=True, ignore=skip)
    (scratch / stdlib / "site-packages").mkdir()
    binary = scratch / "bin" / f"python{minor}"
    rpath = subprocess.run(
        [patchelf, "--print-rpath", str(binary)], capture_output=True, text=True, check=True
    ).stdout.strip()
    if rpath:  # a shared build finds libpython through it: make it relative to the copy
        subprocess.run([patchelf, "--set-rpath", "$ORIGIN/../lib", str(binary)], check=True)
    # Apache's user cannot write __pycache__ here: compile the standard library once.
    subprocess.run(
        [str(binary), "-m", "compileall", "-q", "-j0", str(scratch / stdlib)],
        capture_output=True,
        check=False,
    )
    make_public(scratch)
    scratch.rename(dest)
    prune("python-*", keep=dest)


# -- the applications ------------------------------------------------------------------------


def copy_tree(source: Path, prefix: str) -> Path:
    """`source` copied to a new world-readable directory under /tmp."""
    dest = public_dir(prefix) / source.name
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    make_public(dest)
    return dest


def copy_flask_app() -> Path:
    """tests/apache/apps/flaskapp in a directory of its own (APPDIR; the script is
    APPDIR/wsgi.py). Remove its parent when done."""
    return copy_tree(FLASK_APP, "wsgidaemon-flask-")


@dataclass(frozen=True)
class DjangoSite:
    root: Path  # python-path=
    superuser: tuple[str, str]

    @property
    def script(self) -> Path:
        return self.root / "mysite" / "wsgi.py"


def make_django_site(venv: Venv, user: tuple[str, str] | None) -> DjangoSite:
    """The Django project copied, migrated (sqlite) and given a superuser."""
    root = copy_tree(DJANGO_SITE, "wsgidaemon-django-")
    var = root / "var"
    var.mkdir()
    env = {**os.environ, "DJANGO_SUPERUSER_PASSWORD": "correct horse battery staple"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    for command in (
        ["migrate", "--noinput"],
        ["createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com"],
    ):
        done = subprocess.run(
            [str(venv.python), "manage.py", *command],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        _check(done, f"manage.py {' '.join(command)}")
    make_public(var)
    if user is not None:  # sqlite writes the file and its journal beside it
        for path in (var, *var.iterdir()):
            shutil.chown(path, *user)
    return DjangoSite(root, ("admin", env["DJANGO_SUPERUSER_PASSWORD"]))


# -- configuration in mod_wsgi's documented style --------------------------------------------


def daemon_site(
    name: str,
    venv: Venv,
    app_dir: Path,
    script: Path,
    options: str = "processes=2 threads=15 display-name=%{GROUP}",
) -> list[str]:
    """The block mod_wsgi's documentation and the usual how-tos give for one site served by
    one daemon group, mounted at /."""
    return [
        f"WSGIDaemonProcess {name} {options} python-home={venv.home} python-path={app_dir}",
        f"WSGIProcessGroup {name}",
        "WSGIApplicationGroup %{GLOBAL}",
        f"WSGIScriptAlias / {script}",
        f"<Directory {script.parent}>",
        f"    <Files {script.name}>",
        "        Require all granted",
        "    </Files>",
        "</Directory>",
    ]


def mounted_group(
    name: str, venv: Venv, app_dir: Path, script: Path, mount: str, options: str = ""
) -> list[str]:
    """One group mounted at `mount` with process-group= and application-group= on the alias
    (so its workers also preload the script), as mod_wsgi's docs show for several sites."""
    words = [name, *options.split(), f"python-home={venv.home}", f"python-path={app_dir}"]
    return [
        f"WSGIDaemonProcess {' '.join(words)}",
        f"WSGIScriptAlias {mount} {script} process-group={name} application-group=%{{GLOBAL}}",
        f"<Directory {script.parent}>",
        "    Require all granted",
        "</Directory>",
    ]


# -- processes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    sid: int
    state: str
    uid: int
    start: int  # clock ticks after boot: tells a reused pid apart
    title: str  # /proc/PID/cmdline, NULs as spaces


def proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        uid = os.stat(f"/proc/{pid}").st_uid
    except (OSError, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    title = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return Proc(pid, int(fields[1]), int(fields[3]), fields[0], uid, int(fields[19]), title)


def processes() -> dict[int, Proc]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := proc(int(entry))) is not None and info.state != "Z":
            found[info.pid] = info
    return found


def unix_socket_inodes(under: Path) -> set[str]:
    """Inodes of the Unix sockets bound to a path under `under` (even if since unlinked)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 8 and fields[7].lstrip("@").startswith(f"{under}/"):
                inodes.add(fields[6])
    return inodes


def holds_socket(pid: int, inodes: set[str]) -> bool:
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    return False


def descendants(table: Mapping[int, Proc], roots: Iterable[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


# -- Apache with its daemon groups -----------------------------------------------------------


class ManagedApache(Apache):
    """An Apache whose module starts the daemon groups."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: dict[int, int] = {}  # every daemon pid seen: its start time
        self.leftovers: list[Proc] = []  # what teardown had to kill

    # -- processes -------------------------------------------------------------------------

    def child_pids(self) -> list[int]:
        """httpd's own children only: the daemon masters are children of Apache's parent
        too, and the unchanged ones outlive a graceful restart, which restart() waits on."""
        table = processes()
        return [pid for pid in super().child_pids() if pid in table and self.is_httpd(table[pid])]

    def is_httpd(self, info: Proc) -> bool:
        binary = self.install.binary
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{info.pid}/exe") == os.path.realpath(binary):
                return True
        return info.title.split(" ", 1)[0] == binary

    def daemon_processes(self, thorough: bool = False) -> dict[int, Proc]:
        """The processes of this Apache's daemon groups: its descendants that are not httpd
        (and theirs), anything whose command line names the ServerRoot, and, when
        `thorough` (slower: reads every process's descriptors), any process holding a socket
        bound under the ServerRoot and any pid seen before that is still the same process."""
        table = processes()
        under_apache = descendants(table, [self.pid]) if self.pid is not None else set()
        roots = set()
        inodes = unix_socket_inodes(self.root) if thorough else set()
        for info in table.values():
            if self.is_httpd(info):
                continue
            if (
                info.pid in under_apache
                or str(self.root) in info.title
                or (thorough and self.seen.get(info.pid) == info.start)
                or (thorough and holds_socket(info.pid, inodes))
            ):
                roots.add(info.pid)
        found = {pid: table[pid] for pid in descendants(table, roots) if pid in table}
        for info in found.values():
            self.seen[info.pid] = info.start
        return found

    def masters(self) -> dict[str, list[int]]:
        """Group name -> pids of the processes titled `wsgidaemon: master [NAME]`."""
        found: dict[str, list[int]] = {}
        for info in self.daemon_processes().values():
            if match := MASTER_TITLE.match(info.title):
                found.setdefault(match.group(1), []).append(info.pid)
        return {name: sorted(pids) for name, pids in sorted(found.items())}

    def master(self, group: str) -> int:
        """The one master of `group` (waits while there are none or two, as in a takeover)."""
        pids: list[int] = wait_for(
            lambda: (found := self.masters().get(group, [])) and len(found) == 1 and found,
            READY_TIMEOUT,
            f"one master of group {group} ({self.masters()})\n{self.logs()}",
        )
        return pids[0]

    def workers(self, master: int) -> list[Proc]:
        return sorted(
            (info for info in processes().values() if info.ppid == master), key=lambda p: p.pid
        )

    # -- requests --------------------------------------------------------------------------

    def get(self, path: str, timeout: float = 30.0) -> Response:
        return self.request("GET", path, timeout=timeout)

    def wait_ok(self, path: str = "/", timeout: float = READY_TIMEOUT) -> Response:
        """GET `path` until it answers 200 (a group's first start, or after a restart)."""
        last: list[str] = []

        def ok() -> Response | None:
            try:
                response = self.get(path, timeout=10)
            except (OSError, http.client.HTTPException) as exc:
                last[:] = [f"{type(exc).__name__}: {exc}"]
                return None
            last[:] = [f"{response.status} {response.body[:300]!r}"]
            return response if response.status == 200 else None

        try:
            found: Response = wait_for(ok, timeout, f"200 from {path}", interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last answer: {last}\n{self.logs()}") from None
        return found

    def about(self, path: str = "/about") -> dict[str, object]:
        response = self.get(path)
        assert response.status == 200, (response, self.logs())
        data: dict[str, object] = json.loads(response.body)
        return data

    # -- ending ----------------------------------------------------------------------------

    def wait_daemons_gone(self, timeout: float) -> dict[int, Proc]:
        """Poll until no daemon process of this ServerRoot is left; return what is left."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.daemon_processes(thorough=True)
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.1)

    def kill_leftovers(self, timeout: float = 5.0) -> None:
        """Wait up to `timeout` for the daemon processes to go, then SIGKILL each by pid."""
        left = self.wait_daemons_gone(timeout)
        for info in left.values():
            current = proc(info.pid)
            if current is not None and current.start == info.start:
                self.leftovers.append(info)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(info.pid, signal.SIGKILL)
        if left:
            self.wait_daemons_gone(5.0)

    def remove(self) -> None:
        self.stop()
        self.kill_leftovers()
        super().remove()


def describe(procs: Iterable[Proc]) -> str:
    return "\n".join(f"  {p.pid} (parent {p.ppid}, uid {p.uid}) {p.title}" for p in procs)


# -- load through Apache's graceful restarts ---------------------------------------------------


class RetryingLoad(KeepAliveLoad):
    """KeepAliveLoad whose clients resend a request, once, when the server closed a reused
    keep-alive connection before sending any byte of the response, as browsers and urllib3
    do for idempotent requests (RFC 9112 section 9.3.1).

    Apache's graceful restart closes its old children's idle keep-alive connections, and a
    request the client sends at that moment meets a closed connection, whatever serves it:
    a static file loses requests that way too. Those resends are counted in `retried` (at
    most one per connection and restart); a request that fails any other way, on a new
    connection or a second time, is a failure."""

    RESENT = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.retried: list[str] = []

    def _client(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        served = 0  # responses on this connection so far
        while self._next():
            for attempt in (1, 2):
                try:
                    conn.request("GET", self.path)
                    resp = conn.getresponse()
                except self.RESENT as exc:
                    conn.close()
                    if served and attempt == 1:
                        served = 0
                        with self._lock:
                            self.retried.append(f"{type(exc).__name__}: {exc}")
                        continue
                    self._failed(exc)
                    break
                except Exception as exc:
                    conn.close()
                    self._failed(exc)
                    break
                try:
                    body = resp.read()
                    served += 1
                    if resp.will_close:
                        conn.close()
                        served = 0
                    if resp.status != 200:
                        raise AssertionError(f"status {resp.status}: {body[:200]!r}")
                except Exception as exc:
                    conn.close()
                    served = 0
                    self._failed(exc)
                    break
                with self._lock:
                    self.result.ok += 1
                    self.result.bodies.append(body)
                    if body.startswith(b"{"):
                        self.result.pids.add(json.loads(body)["pid"])
                break
        conn.close()

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self.result.failures.append(f"{type(exc).__name__}: {exc}")


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def public_venv(httpd_install: HttpdInstall) -> Venv:
    if not BASE_PYTHON.exists():
        unavailable(f"{BASE_PYTHON} is missing: the public venv is built from it")
    return ensure_venv(BASE_PYTHON, apache_user(httpd_install))


@pytest.fixture(scope="session")
def second_venv(httpd_install: HttpdInstall, public_venv: Venv) -> Venv:
    """A public venv on a second Python version (see the module's docstring)."""
    builds = pyenv_builds()
    minor = next((v for v in SECOND_VERSIONS if v in builds and v != public_venv.version[:2]), None)
    if minor is None:
        unavailable(
            f"no second Python: looked for pyenv builds of "
            f"{', '.join(f'{a}.{b}' for a, b in SECOND_VERSIONS)} (other than "
            f"{public_venv.label}) under {', '.join(p for p in PYENV_ROOTS if p)}/versions"
        )
    user = apache_user(httpd_install)
    python = public_interpreter(builds[minor], user)
    return ensure_venv(python, user)


@pytest.fixture(scope="module")
def django_site(public_venv: Venv, httpd_install: HttpdInstall) -> Iterator[DjangoSite]:
    site = make_django_site(public_venv, apache_user(httpd_install))
    yield site
    shutil.rmtree(site.root.parent, ignore_errors=True)


@pytest.fixture
def flask_app() -> Iterator[Path]:
    """A fresh copy of the Flask application (APPDIR) for one test."""
    app_dir = copy_flask_app()
    yield app_dir
    shutil.rmtree(app_dir.parent, ignore_errors=True)


@pytest.fixture
def managed_apache(
    httpd_install: HttpdInstall, wsgidaemon_module: Path
) -> Iterator[Callable[..., ManagedApache]]:
    """`managed_apache(**options)`: a ManagedApache with the module loaded, not started;
    stopped, cleared of daemon processes and removed at teardown."""
    made: list[ManagedApache] = []

    def make(**options: object) -> ManagedApache:
        apache = ManagedApache.create(httpd_install, module=wsgidaemon_module, **options)
        made.append(apache)  # type: ignore[arg-type]
        return apache  # type: ignore[return-value]

    yield make
    for apache in made:
        apache.remove()
        warn_leftovers(apache)


def warn_leftovers(apache: ManagedApache) -> None:
    if apache.leftovers:
        warnings.warn(
            f"daemon processes of {apache.root} outlived Apache's stop and were killed:\n"
            f"{describe(apache.leftovers)}",
            stacklevel=1,
        )


@dataclass
class Spawned:
    """Servers a module-scoped fixture started, removed at its end."""

    servers: list[ManagedApache] = field(default_factory=list)

    def new(self, install: HttpdInstall, module: Path, **options: object) -> ManagedApache:
        apache = ManagedApache.create(install, module=module, **options)
        self.servers.append(apache)  # type: ignore[arg-type]
        return apache  # type: ignore[return-value]

    def remove(self) -> None:
        for apache in self.servers:
            apache.remove()
            warn_leftovers(apache)
