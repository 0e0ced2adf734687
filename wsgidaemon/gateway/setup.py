"""A worker's preparation after fork, in mod_wsgi's order: identity, home, umask, language,
python-path, interpreter knobs and resource limits. Everything here runs in the child only."""

from __future__ import annotations

import grp
import locale as locale_module
import logging
import os
import pwd
import resource
import site
import sys

from wsgidaemon.config import DaemonOptions

log = logging.getLogger("wsgidaemon")


class WorkerSetupError(Exception):
    """The worker cannot take on the identity or environment it was configured with."""


def resolve_user(spec: str) -> pwd.struct_passwd:
    try:
        if spec.startswith("#"):
            return pwd.getpwuid(int(spec[1:]))
        return pwd.getpwnam(spec)
    except (KeyError, ValueError) as exc:
        raise WorkerSetupError(f"unknown user '{spec}'") from exc


def resolve_group(spec: str) -> int:
    try:
        if spec.startswith("#"):
            return int(spec[1:])
        return grp.getgrnam(spec).gr_gid
    except (KeyError, ValueError) as exc:
        raise WorkerSetupError(f"unknown group '{spec}'") from exc


def drop_privileges(options: DaemonOptions) -> pwd.struct_passwd | None:
    """Switch to user=/group= when started as root; returns the new identity, if any."""
    if os.geteuid() != 0:
        return None
    if options.user is None:
        return None
    user = resolve_user(options.user)
    if user.pw_uid == 0:
        raise WorkerSetupError("WSGI process blocked from running as root")
    gid = resolve_group(options.group) if options.group else user.pw_gid
    os.setgid(gid)
    if options.supplementary_groups:
        os.setgroups([resolve_group(name) for name in options.supplementary_groups])
    else:
        os.initgroups(user.pw_name, gid)
    os.setuid(user.pw_uid)
    os.environ["USER"] = os.environ["LOGNAME"] = user.pw_name
    os.environ["HOME"] = user.pw_dir
    return user


def prepare_worker(options: DaemonOptions, apache_user: str | None = None) -> None:
    """`apache_user`: Apache's User when Apache started the group. As in mod_wsgi, a worker
    running as that user keeps the inherited working directory unless home= says otherwise;
    one running as another user changes to that user's home directory."""
    user = drop_privileges(options)
    home = options.home
    if home is None and user is not None and not _same_user(user, apache_user):
        home = user.pw_dir
    if home:
        try:
            os.chdir(home)
        except OSError as exc:
            raise WorkerSetupError(f"cannot change to home directory '{home}': {exc}") from exc
    if options.umask is not None:
        os.umask(options.umask)
    if options.lang:
        os.environ["LANG"] = options.lang
    if options.locale:
        os.environ["LC_ALL"] = options.locale
        try:
            locale_module.setlocale(locale_module.LC_ALL, options.locale)
        except locale_module.Error:
            log.warning("unsupported locale setting '%s'", options.locale)
    if options.python_eggs:
        os.environ["PYTHON_EGG_CACHE"] = options.python_eggs
    add_python_path(options.python_path)
    if options.switch_interval:
        sys.setswitchinterval(options.switch_interval)
    if options.cpu_priority:
        os.setpriority(os.PRIO_PROCESS, 0, options.cpu_priority)
    apply_limits(options)


def _same_user(user: pwd.struct_passwd, other: str | None) -> bool:
    if other is None:
        return False
    try:
        return resolve_user(other).pw_uid == user.pw_uid
    except WorkerSetupError:
        return False


def add_python_path(entries: tuple[str, ...]) -> None:
    """site.addsitedir() for each entry (so .pth files apply), then move them to the front."""
    if not entries:
        return
    before = list(sys.path)
    for entry in entries:
        site.addsitedir(entry)
    added = [path for path in sys.path if path not in before]
    sys.path[:] = added + before


def apply_limits(options: DaemonOptions) -> None:
    if options.memory_limit:
        resource.setrlimit(resource.RLIMIT_DATA, (options.memory_limit, options.memory_limit))
    if options.virtual_memory_limit:
        limit = options.virtual_memory_limit
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if options.cpu_time_limit:
        soft = int(options.cpu_time_limit)
        hard = soft + 1 + int(options.shutdown_timeout)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
