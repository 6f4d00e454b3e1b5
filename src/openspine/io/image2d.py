"""2D PNG/JPEG slices: an image file carries no pixel size, so the user gives it (or a placeholder, to estimate it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._logging import get_logger
from ..errors import ConfigError, ScanReadError
from ..geometry import MAX_EXTENT_MM
from ..scan import Scan, ScanSource

log = get_logger("io.image2d")


def read_image(path: Path, pixel_spacing: tuple[float, float] | float | None) -> Scan:
    """A sagittal slice (head up, anterior left, as displayed: its EXIF orientation applied) with the given row/column
    spacing in mm. A PNG that openspine wrote (its overlay) is read with ``ScanSource.not_a_scan`` saying so."""
    if pixel_spacing is None:
        raise ConfigError(
            f"'{path.name}' is a 2D picture, which carries no pixel size. Give it with --pixel-spacing ROW COL "
            "(mm), or pixel_spacing=(row_mm, col_mm) in Python; where it is unknown, --pixel-spacing auto "
            "estimates it from the vertebral bodies."
        )
    sp = (float(pixel_spacing), float(pixel_spacing)) if np.isscalar(pixel_spacing) else tuple(pixel_spacing)  # type: ignore[arg-type]
    if len(sp) != 2 or not all(np.isfinite(s) and s > 0 for s in sp):
        raise ConfigError(f"pixel spacing must be two positive numbers in mm, got {pixel_spacing!r}")
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            output = _openspine_output(im)
            turn = im.getexif().get(_EXIF_ORIENTATION, 1)
            if turn not in (None, 1):
                # phones and exporters store the pixels turned and say so in EXIF; viewers show them turned back
                log.info("'%s' is turned by its EXIF orientation (%s): read as viewers show it", path.name, turn)
                im = ImageOps.exif_transpose(im)
            arr = np.asarray(im.convert("F") if im.mode not in ("L", "I;16", "I") else im)
            colour = colour_mask(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise ScanReadError(f"cannot read '{path}' as an image: {exc}") from exc
    check_picture_extent(arr.shape[:2], (sp[0], sp[1]))
    not_a_scan = (
        f"this picture is an openspine output ({output}), not a scan: analyse the scan it was made from"
        if output
        else None
    )
    source = ScanSource(path=str(path), format="image", not_a_scan=not_a_scan, colour_mask=colour)
    return Scan(arr[:, :, None], picture_affine(sp[0], sp[1]), source)


_EXIF_ORIENTATION = 0x0112
# a pixel whose channels differ by more than this (of 255) is in colour: a grey picture saved as JPEG at quality 30
# has none (chroma noise stays below), openspine's overlays have 1-24 % of their pixels so
COLOUR_CHROMA = 48


def colour_mask(im: Any) -> NDArray[np.bool_] | None:
    """Which of a picture's pixels are in colour (channels differing by more than :data:`COLOUR_CHROMA`); None for
    a picture stored in grey."""
    if im.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return None
    rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
    mask: NDArray[np.bool_] = rgb.max(axis=2) - rgb.min(axis=2) > COLOUR_CHROMA
    return mask


def _openspine_output(im: Any) -> str | None:
    """What openspine output a picture is (``"overlay"``) by the PNG text its writer puts in, or None for any other
    picture."""
    from ..render.overlay import OUTPUT_KEY

    try:
        text = getattr(im, "text", None) or im.info  # a PNG's text chunks, also those after the pixels
    except (OSError, ValueError, SyntaxError):  # a damaged text chunk: read as a plain picture
        text = im.info
    value = text.get(OUTPUT_KEY) if isinstance(text, Mapping) else None
    return str(value) if value is not None else None


def check_picture_extent(shape: tuple[int, ...], spacing_mm: tuple[float, float]) -> None:
    """Raise :class:`ConfigError` when a picture's given pixel size makes it larger than any spine picture."""
    rows_mm, cols_mm = shape[0] * spacing_mm[0], shape[1] * spacing_mm[1]
    if max(rows_mm, cols_mm) > MAX_EXTENT_MM:
        raise ConfigError(
            f"a pixel size of {spacing_mm[0]:g} × {spacing_mm[1]:g} mm makes this {shape[0]} × {shape[1]} picture "
            f"{rows_mm:.0f} × {cols_mm:.0f} mm, larger than any spine picture ({MAX_EXTENT_MM:.0f} mm): give the "
            "pixel size in mm (sagittal spine MRI: typically 0.3–2 mm), or --pixel-spacing auto"
        )


# file endings of the pictures openspine reads (PNG, JPEG, TIFF, BMP)
PICTURE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def picture_affine(row_mm: float, col_mm: float) -> np.ndarray:
    """The affine of a picture as displayed: rows go head → feet, columns anterior → posterior (the internal sagittal
    layout), one slice 1 mm thick."""
    return np.array([[0.0, 0.0, 1.0, 0.0], [0.0, -col_mm, 0.0, 0.0], [-row_mm, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
