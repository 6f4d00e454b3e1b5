"""What a path given as input is, told from its metadata alone: a DICOMDIR index read as its folder, and the entries
that are not regular files (broken or looping links, FIFOs, sockets), which are never opened."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["dicomdir_folder", "not_a_regular_file"]


def dicomdir_folder(path: Path) -> Path:
    """The folder of a DICOMDIR file (the index of a DICOM file set, as on a hospital CD), which is read as its
    folder is; any other path as it is."""
    path = Path(path)
    return path.parent if path.name.upper() == "DICOMDIR" and path.is_file() else path


def not_a_regular_file(path: Path) -> str | None:
    """Why ``path`` is not a regular file that can be read (a broken or looping symbolic link, a FIFO, a socket,
    a device), or None when it is one; told from its metadata alone, without opening it."""
    try:
        mode = os.stat(path).st_mode  # follows links: a link to a regular file is one
    except OSError as exc:
        if os.path.islink(path):
            loop = exc.errno == errno.ELOOP
            return "a symbolic link in a loop (it leads back to itself)" if loop else "a broken symbolic link"
        return f"cannot be read: {exc.strerror or exc}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO), not a file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a device or other special file, not a regular file"
