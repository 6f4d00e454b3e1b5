"""Safe extraction of a zip of DICOM files into a temporary folder.

Every member is checked before anything is written: no member may land outside the extraction folder
(absolute paths, ``..``, drive letters, symbolic links), and the archive may not expand beyond a size and
member-count limit (zip bombs). The limits are enforced again on the bytes actually written, because the
sizes a zip header declares can lie.
"""

from __future__ import annotations

import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from .._logging import get_logger
from ..errors import ScanReadError

log = get_logger("io.archive")

__all__ = ["MAX_MEMBERS", "MAX_TOTAL_BYTES", "extracted_zip"]

MAX_TOTAL_BYTES = 4 * 1024**3  # 4 GiB uncompressed: far above any spine MRI study, far below a zip bomb
MAX_MEMBERS = 100_000
_CHUNK = 1 << 20


@contextmanager
def extracted_zip(
    path: Path, *, max_total_bytes: int = MAX_TOTAL_BYTES, max_members: int = MAX_MEMBERS
) -> Iterator[Path]:
    """Extract the zip at ``path`` into a temporary folder, yield the folder, remove it afterwards.

    The input zip is only read. Raises ScanReadError for a corrupt or encrypted zip, a member that would be
    written outside the folder, or an archive beyond ``max_total_bytes`` / ``max_members``.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="openspine-zip-") as tmp:
        dest = Path(tmp).resolve()
        try:
            with zipfile.ZipFile(path) as zf:
                members = _checked_members(zf, path, dest, max_total_bytes, max_members)
                _extract(zf, members, path, max_total_bytes)
        except zipfile.BadZipFile as exc:
            raise ScanReadError(f"'{path}' is not a readable zip archive (corrupt or truncated): {exc}") from exc
        except OSError as exc:
            raise ScanReadError(f"cannot extract '{path}': {exc}") from exc
        log.debug("extracted %d members of %s into a temporary folder", len(members), path)
        yield dest


def _checked_members(
    zf: zipfile.ZipFile, path: Path, dest: Path, max_total_bytes: int, max_members: int
) -> list[tuple[zipfile.ZipInfo, Path]]:
    """Validate every member before writing anything; return (member, target path) for the files."""
    infos = zf.infolist()
    _check_declared_size(infos, path, max_total_bytes, max_members)
    out: list[tuple[zipfile.ZipInfo, Path]] = []
    for info in infos:
        name = info.filename
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ScanReadError(
                f"'{path}': member '{name}' is a symbolic link, which could point outside the extraction "
                "folder; refusing to extract the archive"
            )
        # zips made on Windows may use backslashes; treat them as separators so '..\\x' cannot slip through
        parts = PurePosixPath(name.replace("\\", "/"))
        target = (dest / parts).resolve()
        escapes = (
            parts.is_absolute()
            or (parts.parts and ":" in parts.parts[0])  # drive letter, e.g. 'C:/x'
            or not target.is_relative_to(dest)
            or (target == dest and not info.is_dir())  # a file member named '.' or 'x/..'
        )
        if escapes:
            raise ScanReadError(
                f"'{path}': member '{name}' would be written outside the extraction folder; refusing to extract "
                "the archive (a crafted 'zip slip' archive?)"
            )
        if info.flag_bits & 0x1:
            raise ScanReadError(f"'{path}' is encrypted (member '{name}'); decrypt it first")
        if not info.is_dir():
            out.append((info, target))
    return out


def _check_declared_size(infos: list[zipfile.ZipInfo], path: Path, max_total_bytes: int, max_members: int) -> None:
    """Refuse before extracting anything when the central directory announces too many members or bytes."""
    if len(infos) > max_members:
        raise ScanReadError(
            f"'{path}' has {len(infos)} members, more than the limit of {max_members}; refusing to extract it "
            "(a zip bomb?). Unzip it yourself and pass the folder."
        )
    declared = sum(i.file_size for i in infos)
    if declared > max_total_bytes:
        raise ScanReadError(
            f"'{path}' would expand to {_size(declared)}, more than the limit of {_size(max_total_bytes)}; refusing "
            "to extract it (a zip bomb?). Unzip it yourself and pass the folder."
        )


def _size(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB" if n >= 1024**3 else f"{n / 1024**2:.1f} MiB" if n >= 1024**2 else f"{n} bytes"


def _extract(zf: zipfile.ZipFile, members: list[tuple[zipfile.ZipInfo, Path]], path: Path, limit: int) -> None:
    written = 0
    for info, target in members:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with zf.open(info) as src, open(target, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > limit:  # declared sizes can lie: count what is really written
                        raise ScanReadError(
                            f"'{path}' expands beyond the limit of {_size(limit)}; refusing to extract it (a zip bomb?)"
                        )
                    dst.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ScanReadError(f"'{path}': member '{info.filename}' is corrupt: {exc}") from exc
        except (NotImplementedError, RuntimeError) as exc:  # unknown compression method, encryption
            raise ScanReadError(f"'{path}': cannot extract member '{info.filename}': {exc}") from exc
