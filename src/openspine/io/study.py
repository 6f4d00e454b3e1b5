"""Read a study, not one series: the main series (the one graded) and the T1 series read beside it.

A DICOM input with several series is described series by series (:func:`openspine.io.dicom.series_roles`: each
series' sequence from its header); the main series and the T1 series are read, a STIR series is recorded but not
read, the rest are listed as not used with the reason. Any other input (NIfTI, a picture) is one scan: the
study's main series, without a T1.
"""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

from .._logging import get_logger
from ..errors import OpenSpineError
from ..scan import Scan
from ..vocabulary import T1_NOT_USED
from .formats import DICOM_ZIP, ReadRequest, reader_for
from .read import existing_path
from .roles import ROLE_MAIN, ROLE_NOT_USED, ROLE_T1, SeriesRole

log = get_logger("io.study")

__all__ = ["Study", "load_study"]


@dataclass(frozen=True)
class Study:
    """What one input holds for the analysis.

    Attributes:
        main: the series that is graded (for a single-scan input, that scan).
        t1: a sagittal T1 series of the same study, read to be used beside the main series; None when the study
            has none (or the input is a single scan).
        roles: every series of a DICOM input with its role and the reason, in the order ``openspine info`` lists
            them; empty for a single-scan input.
        flags: what the result should say about the reading: ``several_studies: …`` when the main series was
            chosen by default among the series of several studies or patients; ``t1_not_used: …`` when the study's
            T1 series cannot be read.
    """

    main: Scan
    t1: Scan | None = None
    roles: tuple[SeriesRole, ...] = ()
    flags: tuple[str, ...] = ()


def load_study(
    path: str | os.PathLike[str],
    series: str | int | None = None,
    pixel_spacing: tuple[float, float] | float | None = None,
    read_t1: bool = True,
) -> Study:
    """Read the study at ``path``: its main series, and the T1 series beside it where a DICOM study has one.

    Args:
        path: DICOM folder, DICOM file, zip of DICOM files, NIfTI file, or PNG/JPEG slice (as
            :func:`openspine.io.load_scan`).
        series: the main series of a DICOM input holding several (SeriesInstanceUID, SeriesNumber or the index
            ``openspine info`` shows); by default the sagittal series whose header says T2 with the most slices,
            else the one naming no sequence, else the sagittal series with the most slices (objects that are no
            image, such as a SEG, never; acquired before derived; not one named for the sacrum; the lowest station
            of a whole-spine study; of two alike, the later), the same choice as :func:`~openspine.io.load_scan`
            (:func:`openspine.io.dicom.choose_series`). The T1 read beside it is of its station and taken before
            contrast agent where the study holds one.
        pixel_spacing: row and column spacing in mm, required for PNG/JPEG input.
        read_t1: read the T1 series' pixels (False: its role is listed, its pixels are not read, as ``--no-t1``
            wants).

    Only the main and the T1 series are read (pixels); the other series' headers only. A T1 series that cannot
    be read is logged as a warning and left out (``t1`` None, its role "not used" with the reason): it is an
    addition to the main series, never a reason to refuse the study.
    """
    p = existing_path(path)
    reader = reader_for(p)
    if reader.format != "dicom":
        return Study(main=reader.load(p, ReadRequest(series, pixel_spacing)))
    from .archive import extracted_zip

    opened: AbstractContextManager[Path] = extracted_zip(p) if reader is DICOM_ZIP else nullcontext(p)
    with opened as root:
        return _dicom_study(root, series, display_path=p, read_t1=read_t1)


def _dicom_study(root: Path, series: str | int | None, display_path: Path, read_t1: bool = True) -> Study:
    from .dicom import INDEX_CLASH, discover_series, read_series, series_roles

    found = discover_series(root, display_path=display_path)
    roles = list(series_roles(found, series))
    main_role = next(r for r in roles if r.role == ROLE_MAIN)
    main = read_series(found[main_role.index], display_path=display_path)
    t1: Scan | None = None
    flags: list[str] = []
    for k, r in enumerate(roles):
        if r.role != ROLE_T1 or not read_t1:
            continue
        try:
            t1 = read_series(found[r.index], display_path=display_path)
        except OpenSpineError as exc:
            log.warning(
                "the T1 series [%d] %s cannot be read, the study goes on without it: %s",
                r.index,
                found[r.index].describe(),
                exc,
            )
            roles[k] = replace(r, role=ROLE_NOT_USED, reason=f"T1 series that cannot be read: {exc}")
            # said in the result too: a T1 the study holds and the analysis went without must not pass unnoticed
            flags.append(
                f"{T1_NOT_USED}: the study's T1 series [{r.index}] {found[r.index].describe()} cannot be read: {exc}"
            )
    for r in roles:
        # --series 2 meant as the listing's [2] reads another series: said where -q still shows it
        level = logging.WARNING if r.role == ROLE_MAIN and INDEX_CLASH in r.reason else logging.INFO
        log.log(level, "series [%d] %s: %s — %s", r.index, found[r.index].describe(), r.role, r.reason)
    if main_role.note:
        # a PACS export mixing two patients: the default choice picks one, which must not go unnoticed
        flags.insert(
            0,
            f"several_studies: {main_role.note}; analysed series [{main_role.index}] "
            f"{found[main_role.index].describe()}; choose another with --series (openspine info lists them)",
        )
        log.warning("%s", flags[0])
    return Study(main=main, t1=t1, roles=tuple(roles), flags=tuple(flags))
