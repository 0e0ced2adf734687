"""`wsgidaemon module-config`: build mod_wsgidaemon.so for this machine's Apache (once; later
runs reuse it while the shim's sources and the Apache build are unchanged) and print the
lines that load it, to paste into Apache's configuration. Exit status 2 when apxs is missing,
1 when the build fails."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsgidaemon.shim.build import (
    ApxsError,
    BuildError,
    CompileError,
    default_build_dir,
    ensure_module,
    find_apxs,
    install_hint,
    load_module_config,
    query_apxs,
    shim_sources,
)

PROG = "wsgidaemon module-config"
OS_RELEASE_FILES = ("/etc/os-release", "/usr/lib/os-release")


def add_subcommand(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `module-config [--apxs PATH] [--build-dir DIR] [--rebuild] [--print-path]`."""
    parser = subparsers.add_parser(
        "module-config",
        help="build the Apache module if needed and print the lines that load it",
        description=__doc__,
    )
    parser.add_argument(
        "--apxs",
        metavar="PATH",
        help="the apxs of the Apache to build for (default: $APXS, else apxs or apxs2 found "
        "on PATH or in /usr/bin, /usr/sbin)",
    )
    parser.add_argument(
        "--build-dir",
        metavar="DIR",
        help="where to build and keep the module (default: "
        "<sys.prefix>/lib/wsgidaemon/<apache version>/)",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="compile again even if an up-to-date build exists"
    )
    parser.add_argument(
        "--print-path", action="store_true", help="print only the path of mod_wsgidaemon.so"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Build (or reuse) the module, then print its configuration or its path."""
    try:
        apache = query_apxs(find_apxs(args.apxs))
    except ApxsError as exc:
        print(
            f"{PROG}: {exc}.\nTo build the Apache module, {install_hint(_os_release())}, "
            "or name apxs with --apxs PATH.",
            file=sys.stderr,
        )
        return 2
    build_dir = (
        Path(args.build_dir) if args.build_dir else default_build_dir(sys.prefix, apache.version)
    )
    try:
        module = ensure_module(build_dir, apache, shim_sources(), rebuild=args.rebuild)
    except CompileError as exc:
        sys.stderr.write(exc.output)
        if exc.output and not exc.output.endswith("\n"):
            sys.stderr.write("\n")
        print(f"{PROG}: {exc}\n{PROG}: command: {' '.join(exc.command)}", file=sys.stderr)
        return 1
    except BuildError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"{PROG}: cannot build in {build_dir}: {exc}; choose another directory with "
            "--build-dir DIR",
            file=sys.stderr,
        )
        return 1
    if args.print_path:
        print(module)
    else:
        sys.stdout.write(load_module_config(module, apache))
    return 0


def _os_release() -> str:
    for path in OS_RELEASE_FILES:
        try:
            with open(path, encoding="utf-8", errors="replace") as file:
                return file.read()
        except OSError:
            continue
    return ""
