"""Can the workers' user read the interpreter, its standard library, wsgidaemon and the
python-path entries? `wsgidaemon group --check` asks this as root, for Apache, before any
worker runs. A forked child takes on the workers' identity (as a worker does) and simply
tries, so the answer is exact whatever the reason (modes, groups, ACLs, security modules).

A typical failure: an interpreter built with pyenv under /root, which is mode 0700.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass

from wsgidaemon.config import DaemonOptions
from wsgidaemon.gateway.setup import WorkerSetupError, drop_privileges

SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class Needed:
    """One path the workers read."""

    what: str
    path: str
    directory: bool
    optional: bool = False
    """A missing path is no problem (python-path entries: site.addsitedir skips them)."""
    python_path: bool = False


def interpreter_paths() -> list[Needed]:
    """What every worker reads: this interpreter, its standard library and wsgidaemon."""
    import wsgidaemon

    needed = []
    if sys.executable:
        needed.append(Needed("the interpreter", sys.executable, directory=False))
    stdlib = sysconfig.get_path("stdlib")
    needed.append(Needed("the Python standard library", stdlib, directory=True))
    needed.append(Needed("the Python standard library", os.__file__, directory=False))
    dynload = os.path.join(stdlib, "lib-dynload")
    if os.path.isdir(dynload):
        needed.append(Needed("the Python standard library", dynload, directory=True))
    purelib = sysconfig.get_path("purelib")
    if os.path.isdir(purelib):
        needed.append(Needed("the interpreter's site-packages", purelib, directory=True))
    package = os.path.dirname(os.path.abspath(wsgidaemon.__file__))
    needed.append(Needed("wsgidaemon", os.path.dirname(package), directory=True))
    needed.append(Needed("wsgidaemon", package, directory=True))
    needed.append(Needed("wsgidaemon", os.path.join(package, "__init__.py"), directory=False))
    return needed


def python_path_entries(entries: tuple[str, ...]) -> list[Needed]:
    return [
        Needed("python-path entry", entry, directory=True, optional=True, python_path=True)
        for entry in entries
    ]


def first_unreadable(options: DaemonOptions, needed: list[Needed]) -> str | None:
    """As the identity `options` give (user=, group=, supplementary-groups=), try to read
    each path; a sentence about the first that cannot be read, else None. Root only."""
    assert options.user is not None
    paths = [(item, os.path.realpath(item.path)) for item in needed]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        status = 0
        try:
            os.close(read_end)
            try:
                user = drop_privileges(options)
            except (WorkerSetupError, OSError) as exc:
                answer: str | None = f"cannot take on user={options.user}: {exc}"
            else:
                assert user is not None
                answer = _try_all(paths, user.pw_name)
            os.write(write_end, (answer or "").encode("utf-8", "surrogateescape"))
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as reader:
        while chunk := reader.read(65536):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return f"could not check what user {options.user} can read (the check itself failed)"
    answer = b"".join(chunks).decode("utf-8", "surrogateescape")
    return answer or None


def _try_all(paths: list[tuple[Needed, str]], user: str) -> str | None:
    for item, real in paths:
        problem = _try(item, real, user)
        if problem is not None:
            return problem
    return None


def _try(item: Needed, real: str, user: str) -> str | None:
    try:
        if item.directory:
            os.listdir(item.path)
        else:
            with open(item.path, "rb") as handle:
                handle.read(1)
        return None
    except FileNotFoundError:
        if item.optional:
            return None
        return f"{item.what} {item.path} does not exist"
    except PermissionError:
        culprit, why = _blocker(item.path, real, user)
    except OSError as exc:
        culprit, why = real, exc.strerror or str(exc)
    return f"the workers' user {user} cannot read {item.what} {item.path}: {why}: " + _advice(
        item, culprit, user
    )


def _blocker(path: str, real: str, user: str) -> tuple[str, str]:
    """What keeps `path` out of reach: the first directory on the way that cannot be
    entered (on the way as written, then through symbolic links), else the path itself;
    and a sentence saying so."""
    culprit = _closed_directory(os.path.abspath(path)) or _closed_directory(real) or real
    try:
        mode = os.stat(culprit).st_mode & 0o7777
    except OSError as exc:
        return culprit, f"{culprit}: {exc.strerror}"
    return culprit, f"{culprit} is mode {mode:04o} and not readable by {user}"


def _closed_directory(path: str) -> str | None:
    current = "/"
    for part in path.strip("/").split("/"):
        step = os.path.join(current, part)
        try:
            os.stat(step)
        except PermissionError:
            return current
        except OSError:
            return None
        current = step
    return None


def _advice(item: Needed, culprit: str, user: str) -> str:
    if item.python_path:
        return f"make it readable by {user}, or run the group as a user who can read it (user=)"
    source = SYSTEM_PYTHON if os.path.exists(SYSTEM_PYTHON) else "a system-wide Python"
    return (
        "use an interpreter that user can read, e.g. a virtual environment created from "
        f"{source} outside {culprit}"
    )
