"""Stations of a whole-spine study: sagittal series of one frame of reference that image different heights of the
spine (cervical, thoracic, lumbar), told apart from the headers alone (:attr:`SeriesInfo.height_mm`). The models read
the lumbar spine, so the default choice of a study's main series takes the lowest station, and the T1 read beside it
must be of the same one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dicom import SeriesInfo

__all__ = [
    "STATION_APART",
    "STATION_MIN_SLICES",
    "centre_mm",
    "lowest_station",
    "named_below_lumbar",
    "other_station",
]

# stations of a whole-spine study: sagittal series of one frame of reference whose centres lie more than this share
# of the taller one's height apart image different parts of the spine (re-acquisitions of one region overlap)
STATION_APART = 1.0 / 3.0
# a series of fewer slices is no station (a scout): slice counts are not compared, since a lumbar station of 4 mm
# slices has fewer than a cervical one of 1 mm
STATION_MIN_SLICES = 5


# a series named for the sacrum, coccyx, pelvis or SI joints images below the lumbar spine: never the station chosen
# as lowest, unless its name also says lumbar ("T2 SAG LUMBAR + SACRUM"); the words must stand alone, so that
# "lumbosacral" does not count ("sac…" covers sacral, sacro-iliac, sacrococcygeal and a "_SAC" suffix)
_BELOW_LUMBAR_NAMES = re.compile(
    r"(?<![a-z])(sac\w*|coccy\w*|pelvi\w*|hips?|si[\s_-]?joints?|sij|isg|kreuzbein|stei(ss|ß)bein|becken)(?![a-z])"
)
_LUMBAR_NAMES = re.compile(r"(?<![a-z])(lumb\w*|l[\s_-]?spine|lws|ls[\s_-]?spine)(?![a-z])")


def named_below_lumbar(s: SeriesInfo) -> bool:
    """Whether the series' name says it images the sacrum, coccyx, pelvis or SI joints, and not the lumbar spine."""
    text = (s.description or "").lower()
    return bool(_BELOW_LUMBAR_NAMES.search(text)) and not _LUMBAR_NAMES.search(text)


def centre_mm(s: SeriesInfo) -> float:
    return 0.5 * (s.height_mm[0] + s.height_mm[1]) if s.height_mm else 0.0


def other_station(a: SeriesInfo, b: SeriesInfo) -> bool:
    """Whether ``a`` and ``b`` image different parts of the spine (stations of a whole-spine study): one frame of
    reference, centres more than :data:`STATION_APART` of the taller one's height apart. False when the headers
    cannot tell (no geometry, other or no frames of reference)."""
    if a.height_mm is None or b.height_mm is None or a.frame_of_reference_uid is None:
        return False
    if a.frame_of_reference_uid != b.frame_of_reference_uid:
        return False
    tallest = max(a.height_mm[1] - a.height_mm[0], b.height_mm[1] - b.height_mm[0])
    return abs(centre_mm(a) - centre_mm(b)) > STATION_APART * tallest


def lowest_station(
    pool: list[SeriesInfo], best: SeriesInfo, most_slices: Callable[[list[SeriesInfo]], SeriesInfo]
) -> tuple[SeriesInfo, int]:
    """Where the series of ``pool`` are stations of a whole-spine study (:func:`other_station`), the one of the
    lowest station that ``most_slices`` picks, and the number of stations; else ``best`` and 1. The models read the
    lumbar spine, so the cervical station (often the first series, with as many slices) must not be the one read."""
    peers = [
        s
        for s in pool
        if s.n_slices >= STATION_MIN_SLICES
        and s.height_mm is not None
        and s.frame_of_reference_uid == best.frame_of_reference_uid  # heights compare within one frame only
    ]
    if best not in peers or not any(other_station(s, best) for s in peers):
        return best, 1
    stations: list[SeriesInfo] = []  # one series of each station, lowest first
    for s in sorted(peers, key=centre_mm):
        if all(other_station(s, t) for t in stations):
            stations.append(s)
    return most_slices([s for s in peers if not other_station(s, stations[0])]), len(stations)
