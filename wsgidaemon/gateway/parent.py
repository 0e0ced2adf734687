"""The master's end of its link with the Apache parent (`--parent-fd`, docs/apache-managed.md).

The module hands the master one end of a Unix socket pair (SOCK_SEQPACKET) and keeps the
other: end of file means Apache is gone. When Apache keeps the master across a restart it
sends LOG with the error log it has just opened (SCM_RIGHTS), which the master makes its
stdout and stderr and passes on to its workers: a path would not do, since the workers run
as a user who cannot open Apache's log. A module from before the hand-over gave a pipe,
which only ever says end of file; both are read here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat

from wsgidaemon.gateway import control


class ParentLink:
    """The --parent-fd descriptor, non-blocking."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.sock: socket.socket | None = None
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            self.sock = socket.socket(fileno=fd)
            self.sock.setblocking(False)
        else:
            os.set_blocking(fd, False)

    def fileno(self) -> int:
        return self.fd

    def receive(self) -> tuple[bool, int | None]:
        """Read one message: (end of file, the error log Apache handed over, or None). A read
        error counts as end of file: Apache's end is unusable either way. Any descriptor but
        the log is closed; the log is the caller's. Raises BlockingIOError when there is
        nothing to read."""
        if self.sock is not None:
            # The same messages as the master's to its workers: control.receive reads them.
            message, log_fd = control.receive(self.sock)
            return not message, log_fd
        try:
            message = os.read(self.fd, 4096)
        except (BlockingIOError, InterruptedError):
            raise BlockingIOError from None
        except OSError:
            return True, None
        return not message, None

    def close(self) -> None:
        """Close it (a forked worker must not hold Apache's link open)."""
        if self.sock is not None:
            self.sock.close()
        else:
            with contextlib.suppress(OSError):
                os.close(self.fd)
