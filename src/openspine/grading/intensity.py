"""The image's black level, removed before discs are measured where the data cannot be raw MR magnitude.

Crops and disc features (and the spinal-fluid signal that checks the sequence) are in units of the neighbouring
vertebral bodies' median intensity: unchanged by any scaling of the image, but not by an additive offset. Raw MR
magnitude is never negative and always has voxels near 0 (air, cortical bone, ligaments): in every image of the
shared data its darkest voxel is at most 0.3 % of its 99.5th percentile. An image with negative values (z-scored,
offset into the negatives) or whose darkest voxel is above :data:`RAW_BLACK_FRACTION` of that bright level (offset
upwards) has been shifted, and its darkest voxel is taken as its black level and subtracted, so that it is read as
the raw image it came from (exactly, where the raw image's darkest voxel is 0, as in SPIDER). Any other image is
read as it is, so results on raw data and the grader fitted on raw data are unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..scan import SagittalView, Scan
from ..vocabulary import EDGE_NEGATIVE

__all__ = [
    "MAX_AT_WHITE",
    "MAX_SKEWNESS_INVERTED",
    "RAW_BLACK_FRACTION",
    "black_level",
    "bright_border",
    "clipped_white",
    "clipped_white_reason",
    "inverted_contrast",
    "padding_fill",
    "within_border",
    "without_black_level",
]

# the darkest voxel above this fraction of the 99.5th percentile: not raw magnitude (in the 324 shared scans it is at
# most 0.3 %). A pedestal under the whole image (a display window's grey background, a converter's offset) had moved
# grades from 2 % on (`scripts/offset_survey.py`: 166 of 173 val grades unchanged at 2 %, 110 at 20 %); an offset
# above about 2 % of the bright level (its darkest voxel then above 2 % of the 99.5th percentile) is removed. The
# darkest voxel, not a low percentile: the FastCleverSeg VB2 volumes lie on a pedestal (0.5th
# percentile 15-25 % of the 99.5th) with a few voxels of 0 at one edge, which keep them as they are
RAW_BLACK_FRACTION = 0.02
# a negative value this many times the range of the image's other voxels below their darkest is a padding fill
PADDING_GAP = 2.0
# an image whose brightest voxel (above its black level) is below this is brought to a scanner's range before its
# discs are measured: the measures divide by the bodies' intensity, but their small fixed floors (1e-3) had changed
# 14 of 48 grades of a slice scaled by 1e-6
TINY_BRIGHTEST = 0.01


# an image whose intensities lean this far to the bright end is read as a negative. MR magnitude leans to the dark
# end (air, bone, ligaments dark; fat and fluid a bright tail): of the 324 shared scans one (a T1 slice) reads lower,
# as stored and cropped (scripts/inverted_survey.py, docs/grading.md)
MAX_SKEWNESS_INVERTED = -0.5
CENTRAL_SLAB = 5  # slices of the view around its middle that are read
# a negative whose histogram is near symmetric (skewness up to MAX_SKEWNESS_BRIGHT_BORDER) is told by its edges: at
# least MIN_BRIGHT_BORDER of its outer ring in the top tenth of its range and at most MAX_DARK_BORDER in the bottom
# tenth. Set on train (`python scripts/inverted_survey.py --data ../shared/data --split train`): the most of a real
# view's ring that bright is 0.40 (a central half cut from a SPIDER slice: bright tissue at every edge), 0.33 as
# stored; of the negatives 258 of 261 are caught, 230 by their skewness alone (a user test had found an inverted T2
# slice, skewness -0.46, graded Pfirrmann 1 at every level)
MAX_SKEWNESS_BRIGHT_BORDER = 0.5
MIN_BRIGHT_BORDER = 0.5
MAX_DARK_BORDER = 0.05
_RING = 0.03  # the width of the outer ring read, as a share of the slab's smaller side
MIN_EDGE_MARGIN = 0.01  # a border of the brightest value at least this wide on every side is no air, for the ring
# a border of the brightest value this wide on every side (a share of the picture's size) is a page the picture lies
# on, and only what lies within it is read; the SPIDER slices' own padding is at most 0.076 on its narrowest side,
# so the inverted padding of a negative slice does not pass for a page
PAGE_MARGIN = 0.1
_SKEWNESS_SAMPLE = 1 << 17  # about this many of their voxels


def _central_slab(view: SagittalView) -> tuple[NDArray[Any], NDArray[Any]]:
    """The view's central slab (sampled: every step-th row and column), within a white page where it lies on one
    (a margin of its brightest value of at least :data:`PAGE_MARGIN` on every side), and that slab within any frame
    of its darkest value."""
    arr = view.scan.array
    k = arr.shape[2] // 2
    lo = max(0, k - CENTRAL_SLAB // 2)
    slab = np.asarray(arr[:, :, lo : lo + CENTRAL_SLAB])
    step = max(1, int(np.sqrt(slab.size / _SKEWNESS_SAMPLE)))  # every step-th row and column: the same histogram
    slab = slab[::step, ::step]
    page = within_border(slab, float(slab.max()))
    if page is not None and _border_share(slab.shape, page) >= PAGE_MARGIN:  # a picture on a white page
        slab = page[2]
    inner = within_border(slab, float(slab.min()))
    return slab, inner[2] if inner is not None else slab


def intensity_skewness(view: SagittalView) -> float:
    """The skewness of the view's central slab, clipped to its 0.5-99.5th percentiles (so that a few extreme voxels
    do not decide), or of the slab within a border of its darkest value, whichever leans further to the bright end:
    a black frame around a negative (a screenshot, a slide) would otherwise pull its histogram back to the dark end.
    A picture on a white page (a margin of its brightest value of at least :data:`PAGE_MARGIN` on every side) is
    read within the page. Invariant to any positive scaling and offset of the image."""
    return _lower_skewness(*_central_slab(view))


def _lower_skewness(slab: NDArray[Any], inner: NDArray[Any]) -> float:
    """The skewness of the slab or of the slab within its dark border, whichever leans further to the bright end."""
    return min(_skewness(slab), _skewness(inner))


def bright_border(view: SagittalView) -> tuple[float, float]:
    """The shares of the central slab's outer ring (:data:`_RING` of its smaller side wide, within any frame of its
    darkest value or white page) in the top and in the bottom tenth of its 0.5-99.5th percentile range. An MR image
    shows air at its edges, dark; a negative shows it bright."""
    return _bright_border_of(_central_slab(view)[1])


def _bright_border_of(slab: NDArray[Any]) -> tuple[float, float]:
    margin = within_border(slab, float(slab.max()))
    if margin is not None and _border_share(slab.shape, margin) >= MIN_EDGE_MARGIN:
        # a margin of the brightest value on every side is a page or frame, not air: a picture cut close from a page
        # (3 % white on each side) had read as a negative in 36 of 80 SPIDER slices (code review). A negative's own
        # padding lies on some sides only (SPIDER's: the left and right, with 2 rows above and below): it stays
        slab = margin[2]
    low, high = np.percentile(slab, [0.5, 99.5])
    if high <= low:
        return 0.0, 0.0
    w = max(1, int(_RING * min(slab.shape[:2])))
    ring = np.concatenate([slab[:w].ravel(), slab[-w:].ravel(), slab[:, :w].ravel(), slab[:, -w:].ravel()])
    z = (ring.astype(np.float64) - low) / (high - low)
    return float(np.mean(z >= 0.9)), float(np.mean(z <= 0.1))


def _skewness(slab: NDArray[Any]) -> float:
    a = np.asarray(slab, dtype=np.float64).ravel()
    low, high = np.percentile(a, [0.5, 99.5])
    a = np.clip(a, low, high)
    sd = float(a.std())
    if sd == 0:
        return 0.0
    z = (a - a.mean()) / sd
    return float(np.mean(z * z * z))  # not z ** 3: a float power is several times slower


def within_border(slab: NDArray[Any], value: float) -> tuple[int, int, NDArray[Any]] | None:
    """The (rows, cols, slices) slab less the rows and columns at its edges that hold nothing but ``value``, with the
    first row and column kept; None when nothing else is there."""
    flat = slab.reshape(slab.shape[0], slab.shape[1], -1)
    other = flat != value
    rows, cols = np.flatnonzero(other.any(axis=(1, 2))), np.flatnonzero(other.any(axis=(0, 2)))
    if rows.size == 0 or cols.size == 0:
        return None
    return int(rows[0]), int(cols[0]), slab[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _border_share(shape: tuple[int, ...], inner: tuple[int, int, NDArray[Any]]) -> float:
    """The narrowest of the four margins a border leaves around ``inner``, as a share of the slab's size."""
    top, left, kept = inner
    bottom, right = shape[0] - top - kept.shape[0], shape[1] - left - kept.shape[1]
    return min(top / shape[0], bottom / shape[0], left / shape[1], right / shape[1])


# a display window that clips the bright tissue leaves this share or more of the middle of the picture at its white:
# the SPIDER slices the grader learnt from (8-bit, already windowed) reach 0.18 (T2, T1 0.18; `python
# scripts/clipped_survey.py`); windowed again at their 70th percentile 0.31 or more (median 0.47)
MAX_AT_WHITE = 0.25
_MIDDLE = 0.6  # the share of each side of the slice that is read, about its centre


def clipped_white(view: SagittalView) -> float:
    """The share of the middle of the view's middle sagittal slice (:data:`_MIDDLE` of each side, within any frame of
    its brightest value) at the slice's brightest value."""
    arr = view.scan.array
    plane = _middle_slice_with_contrast(arr)
    arr_max = float(plane.max())
    page = within_border(plane, arr_max)  # a picture on a white page or in a white frame: read within it
    plane = page[2] if page is not None else plane
    r0, c0 = (int(n * (1 - _MIDDLE) / 2) for n in plane.shape)
    middle = plane[r0 : plane.shape[0] - r0, c0 : plane.shape[1] - c0]
    if middle.size == 0:
        return 0.0
    return float(np.count_nonzero(middle >= arr_max) / middle.size)


def _middle_slice_with_contrast(arr: NDArray[Any]) -> NDArray[Any]:
    """The middle sagittal slice of ``arr``, or the slice nearest it that holds more than one value: a blank slice
    (a NaN or zero slice in a volume) is all at its brightest value, and had withheld every grade of a volume as
    clipped (user test)."""
    mid = arr.shape[2] // 2
    for k in sorted(range(arr.shape[2]), key=lambda k: abs(k - mid)):
        plane = np.asarray(arr[:, :, k])
        if plane.size and float(plane.max()) > float(plane.min()):
            return plane
    return np.asarray(arr[:, :, mid])


def clipped_white_reason(view: SagittalView) -> str | None:
    """Why an image whose bright tissue a display window clipped is not graded, or None. Discs are graded on their
    brightness against the bodies': clipped at white, a bright disc and a fading one read alike (windowed at its 70th
    percentile, a SPIDER val slice's grades changed in 44 of 83 discs, 11 by two or more, in a user test)."""
    share = clipped_white(view)
    if share < MAX_AT_WHITE:
        return None
    return (
        f"{100 * share:.0f} % of the middle of the image is at its brightest value: a display window clipped the "
        "bright tissue (discs, fluid, fat), whose differences the grades are read from; give the image unwindowed"
    )


def inverted_contrast(view: SagittalView) -> str | None:
    """Why the image looks like a negative (its intensities lean to the bright end, skewness at most
    :data:`MAX_SKEWNESS_INVERTED`; or, up to :data:`MAX_SKEWNESS_BRIGHT_BORDER`, its edges are bright where MR shows
    dark air: :func:`bright_border`), or None. Grades read from a negative are wrong: degenerated, dark discs read as
    bright, healthy ones (a MONOCHROME1 image read without inversion, a picture saved inverted)."""
    slab, inner = _central_slab(view)  # read once for both rules
    skew = _lower_skewness(slab, inner)  # as intensity_skewness
    if skew <= MAX_SKEWNESS_INVERTED:
        return (
            f"the image looks inverted, a negative, or brightened by a display gamma or a narrow window: its "
            f"intensities lean to the bright end (skewness {skew:.2f}), where MR images lean to the dark end"
        )
    bright, dark = _bright_border_of(inner) if skew <= MAX_SKEWNESS_BRIGHT_BORDER else (0.0, 1.0)
    if bright < MIN_BRIGHT_BORDER or dark > MAX_DARK_BORDER:
        return None
    return (
        f"{EDGE_NEGATIVE}{100 * bright:.0f} % of its edges are among its brightest values and "
        f"{100 * dark:.0f} % among its darkest, where an MR image shows air at its edges, dark"
    )


def padding_fill(array: NDArray[Any]) -> tuple[float, float, int] | None:
    """A negative fill value far below the image's own darkest voxel (DICOM pixel padding, the fill outside a
    reconstruction's field of view, -32768 in an int16 image): ``(fill, darkest other value, voxel count)``, or
    None. Far below: by more than :data:`PADDING_GAP` times the range of the other voxels. One such voxel had been
    taken for the image's black level, every intensity shifted by +32768, and 13-25 of 48 grades of a slice changed.
    A z-scored image's darkest values lie close together: no fill."""
    arr = np.asarray(array)
    low = float(np.min(arr))
    if low >= 0:
        return None
    rest = arr[arr > low]
    if rest.size == 0:
        return None
    low2, high = float(rest.min()), float(rest.max())
    if low2 - low <= PADDING_GAP * max(high - low2, 1e-12):
        return None
    return low, low2, int(arr.size - rest.size)


ROUNDING_SHARE = 1e-5  # negative values this close to 0 (a share of the brightest value) are float rounding


def black_level(array: NDArray[Any]) -> tuple[float, str | None]:
    """The intensity to subtract from an image before its discs are measured, and why.

    The darkest voxel when the image cannot be raw MR magnitude: it holds negative values, or its darkest voxel is
    above :data:`RAW_BLACK_FRACTION` of its 99.5th percentile. ``(0.0, None)`` otherwise (the image is read as it
    is). A padding fill (:func:`padding_fill`) is no voxel of the image here. ``array`` holds finite values
    (:meth:`~openspine.scan.Scan.check_analysable`).
    """
    arr = np.asarray(array)
    fill = padding_fill(arr)
    if fill is not None:
        arr = arr[arr > fill[0]]
    low = float(np.min(arr))
    # a rounding error is no offset: int16 stored with scl_slope 0.1 and scl_inter 50 reads its black 0 back as
    # -7e-07 in float32, and had been flagged (user test)
    if low < 0 and -low > ROUNDING_SHARE * max(float(np.max(arr)), 1.0):
        return low, "it holds negative values, which MR magnitude never does"
    # "above the fraction of the 99.5th percentile" is "fewer than 0.5 % of voxels above low / fraction": one
    # comparison, where a percentile of a large volume would partition it (the percentile only for the message)
    if low > 0 and np.count_nonzero(arr > low / RAW_BLACK_FRACTION) < 0.005 * arr.size:
        bright = float(np.percentile(arr, 99.5))
        if low > RAW_BLACK_FRACTION * bright:
            return low, (
                f"its darkest voxel is {100 * low / bright:.0f} % of its 99.5th percentile, where raw MR magnitude "
                "has voxels near 0"
            )
    return 0.0, None


def without_black_level(view: SagittalView, series: str | None = None) -> tuple[SagittalView, str | None]:
    """The view with its :func:`black_level` (read on the image as stored, before any reslicing) subtracted, and
    an ``intensity_offset_removed`` flag saying so; the view itself and ``None`` when nothing is subtracted.

    ``series`` names the series in the flag (e.g. "T1" for one read beside the main series). Only the intensities
    the discs are measured on change: the geometry (affine, the map to the input grid) is the view's own.
    """
    fill = padding_fill(view.stored_voxels)
    level, why = black_level(view.stored_voxels)
    arr = np.asarray(view.scan.array)
    high = float(np.max(arr)) - level
    tiny = 0 < high < TINY_BRIGHTEST  # float intensities far below any scanner's: the measures' floors would show
    if why is None and fill is None and not tiny:
        return view, None
    out = np.asarray(arr, dtype=np.result_type(arr.dtype, np.float32))
    if fill is not None:  # read as the darkest value of the image itself
        out = np.maximum(out, fill[1])
    if why is not None:
        out = out - level
    if tiny:  # a scale factor changes no measure but their floors: brought to a scanner's range
        out = out * (1000.0 / high)
    moved = SagittalView(Scan(out, view.scan.affine, view.scan.source), view.input)
    which = f"the {series} series'" if series else "the image's"
    said = []
    if fill is not None:
        of = f"the {series} series" if series else "the image"
        said.append(
            f"{fill[2]} voxel(s) of {of} hold {_number(fill[0])}, far below its darkest other value "
            f"{_number(fill[1])} (pixel padding, or the fill outside the field of view): read as {_number(fill[1])}"
        )
    if why is not None:
        said.append(
            f"{which} black level is {_number(level)} ({why}); intensities were shifted by {_number(-level, sign=True)}"
        )
    if not said:
        return moved, None
    flag = f"intensity_offset_removed: {'; '.join(said)} before the discs were measured (grading, spinal-fluid check)"
    return moved, flag


def _number(x: float, sign: bool = False) -> str:
    """A short number for a flag: 4 significant digits, whole numbers from 10 000 on (no exponent)."""
    plus = "+" if sign else ""
    return f"{x:{plus}.4g}" if abs(x) < 1e4 else f"{x:{plus}.0f}"
