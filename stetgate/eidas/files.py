"""Atomic file replacement for the files other processes read while they change.

The CRL folder is shared by every worker of an instance (and by the test QTSP): a reader must
see the old file or the new one, never half of one. Writing to a temporary file in the same
folder and renaming it (POSIX ``rename(2)`` is atomic within a filesystem) gives that.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over
    ``path``. The temporary name starts with a dot, which the CRL store ignores."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


__all__ = ["atomic_write"]
