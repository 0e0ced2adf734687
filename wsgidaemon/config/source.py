"""The files an Apache configuration is read from.  `DiskSource` is the package's only file
system access, and only ever opens paths the configuration names; `MemorySource` serves the
same calls from a dict, for tests and for callers that already hold the text."""

from __future__ import annotations

import fnmatch
import glob
import os
import posixpath
from collections.abc import Mapping
from typing import Protocol


class Source(Protocol):
    """What the reader needs from a file system."""

    def read_text(self, path: str) -> str:
        """The file's text; raises OSError."""
        ...

    def glob(self, pattern: str) -> list[str]:
        """Paths matching a shell pattern, sorted; dot files only when the pattern says so."""
        ...

    def is_dir(self, path: str) -> bool: ...

    def exists(self, path: str) -> bool: ...

    def files_below(self, directory: str) -> list[str]:
        """Every file under a directory, recursively, in sorted order (Apache's rule for
        `Include DIRECTORY`)."""
        ...

    def identity(self, path: str) -> str:
        """A name that is equal for two paths to the same file (to detect Include loops)."""
        ...


class DiskSource:
    """The real file system."""

    def read_text(self, path: str) -> str:
        # utf-8-sig: a byte order mark must not become part of the first directive's name.
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            return handle.read()

    def glob(self, pattern: str) -> list[str]:
        return sorted(glob.glob(pattern))

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def files_below(self, directory: str) -> list[str]:
        found: list[str] = []
        for entry in sorted(os.listdir(directory)):
            path = os.path.join(directory, entry)
            found.extend(self.files_below(path) if os.path.isdir(path) else [path])
        return found

    def identity(self, path: str) -> str:
        return os.path.realpath(path)


class MemorySource:
    """Files held in memory, keyed by absolute POSIX path."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self.files = {posixpath.normpath(path): text for path, text in files.items()}

    def read_text(self, path: str) -> str:
        try:
            return self.files[posixpath.normpath(path)]
        except KeyError:
            raise FileNotFoundError(2, "No such file or directory", path) from None

    def glob(self, pattern: str) -> list[str]:
        pattern = posixpath.normpath(pattern)
        depth = pattern.count("/")
        found = set()
        for path in self.files:
            # A match may be a file or a directory holding files.
            parts = path.split("/")
            for cut in range(depth + 1, len(parts) + 1):
                candidate = "/".join(parts[:cut])
                if candidate.count("/") == depth and _matches(candidate, pattern):
                    found.add(candidate)
        return sorted(found)

    def is_dir(self, path: str) -> bool:
        prefix = posixpath.normpath(path).rstrip("/") + "/"
        return any(name.startswith(prefix) for name in self.files)

    def exists(self, path: str) -> bool:
        return posixpath.normpath(path) in self.files or self.is_dir(path)

    def files_below(self, directory: str) -> list[str]:
        prefix = posixpath.normpath(directory).rstrip("/") + "/"
        return sorted(name for name in self.files if name.startswith(prefix))

    def identity(self, path: str) -> str:
        return posixpath.normpath(path)


def _matches(path: str, pattern: str) -> bool:
    # Component by component, like glob: `*` never crosses `/` and skips dot files.
    for name, part in zip(path.split("/"), pattern.split("/"), strict=False):
        if name.startswith(".") and not part.startswith("."):
            return False
        if not fnmatch.fnmatchcase(name, part):
            return False
    return True
