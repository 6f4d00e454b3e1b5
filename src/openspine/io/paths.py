"""What a path given as input is, told from its metadata alone: a DICOMDIR index read as its folder, and the entries
that are not regular files (broken or looping links, FIFOs, sockets), which are never opened."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["NOT_REGULAR", "dicomdir_folder", "not_a_regular_file", "resolved"]

NOT_REGULAR = "not a regular file"


def dicomdir_folder(path: Path) -> Path:
    """The folder of a DICOMDIR file (the index of a DICOM file set, as on a hospital CD), which is read as its
    folder is; any other path as it is."""
    path = Path(path)
    return path.parent if path.name.upper() == "DICOMDIR" and path.is_file() else path


def not_a_regular_file(path: Path) -> str | None:
    """Why ``path`` is not a regular file that can be read (a broken or looping symbolic link, a named pipe, a
    socket, a device, a folder, no read permission), or None when it is one; told from its metadata alone, without
    opening it: opening a named pipe would wait forever. Shared by series discovery and batch discovery."""
    try:
        mode = os.stat(path).st_mode  # follows links: a link to a regular file is one
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a loop of symbolic links"
        if exc.errno == errno.ENOENT and os.path.islink(path):
            return f"a broken symbolic link (its target '{os.readlink(path)}' does not exist)"
        return str(exc.strerror or exc)
    if stat.S_ISDIR(mode):
        return "a folder"
    if not stat.S_ISREG(mode):
        kind = "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        return f"{NOT_REGULAR} ({kind})"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def resolved(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute with its symbolic links followed, as ``Path.resolve`` does, but never raising: a loop of
    links (which ``resolve`` refuses with RuntimeError) or an unreadable link keeps its absolute path unresolved."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))
