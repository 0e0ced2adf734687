"""The `wsgidaemon` command: subcommands and their wiring; the only place that exits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsgidaemon",
        description="Run WSGI applications the way mod_wsgi daemon mode does.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from wsgidaemon.checkconfig import add_subcommand as add_check_config
    from wsgidaemon.gateway.group import add_subcommand as add_group
    from wsgidaemon.gateway.serve import add_subcommand as add_serve
    from wsgidaemon.shim.moduleconfig import add_subcommand as add_module_config

    add_serve(sub)
    add_check_config(sub)
    add_module_config(sub)
    add_group(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
