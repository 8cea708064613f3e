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


FolderSignature = tuple[tuple[str, int, int, int], ...]


def folder_signature(folder: Path, suffixes: tuple[str, ...]) -> FolderSignature:
    """(name, mtime, size, inode) of the files of ``folder`` ending in ``suffixes``, dot-files
    left out: a cheap ``scandir`` that changes whenever a file is added, removed or replaced
    (an atomic replace changes the inode even within one mtime tick)."""
    entries: list[tuple[str, int, int, int]] = []
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.startswith(".") or not entry.name.endswith(suffixes):
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue  # replaced while scanning; the next look sees it
                entries.append((entry.name, st.st_mtime_ns, st.st_size, st.st_ino))
    except FileNotFoundError:
        return ()
    return tuple(sorted(entries))


__all__ = ["FolderSignature", "atomic_write", "folder_signature"]
