"""The Apache side of wsgidaemon: `mod_wsgidaemon.c` and `wire.h`, shipped as package data so
that an installed copy can compile them with apxs (`build`), and the `module-config` command
that prints the LoadModule line for them (`moduleconfig`). The module links only Apache and
APR, never libpython, so one build serves every Python version."""
