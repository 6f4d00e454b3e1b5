"""2D PNG/JPEG slices: an image file carries no pixel size, so the user gives it (or a placeholder, to estimate it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._logging import get_logger
from ..errors import ConfigError, ScanReadError, UnsupportedScanError
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
            frames = int(getattr(im, "n_frames", 1) or 1)
            # a multi-page TIFF: which page is the slice to analyse is not the reader's guess (a JPEG's second frame
            # is an embedded preview or depth map of the same picture, MPO: its first is the picture)
            if frames > 1 and im.format == "TIFF":
                raise UnsupportedScanError(
                    f"'{path.name}' holds {frames} pictures (pages); openspine reads one slice per picture: save the "
                    "slice to analyse as its own picture, or give the series as DICOM or NIfTI"
                )
            turn = im.getexif().get(_EXIF_ORIENTATION, 1)
            if turn not in (None, 1):
                # phones and exporters store the pixels turned and say so in EXIF; viewers show them turned back
                log.info("'%s' is turned by its EXIF orientation (%s): read as viewers show it", path.name, turn)
                im = ImageOps.exif_transpose(im)
            im = _over_black(im, path.name)
            arr = np.asarray(im.convert("F") if im.mode not in ("L", "I;16", "I") else im)
            colour = colour_mask(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise ScanReadError(f"cannot read '{path}' as an image: {exc}") from exc
    except Image.DecompressionBombError as exc:  # Pillow's guard against a picture that would fill the memory
        raise ScanReadError(
            f"cannot read '{path}': {str(exc).rstrip('.')} (Pillow's guard); no spine picture needs that many "
            "pixels: scale it down"
        ) from exc
    check_picture_extent(arr.shape[:2], (sp[0], sp[1]))
    arr, canvas, where = without_light_canvas(arr)
    if where is not None and colour is not None:  # a pale-coloured canvas is no colour drawing over the spine
        colour = colour & ~where
    not_a_scan = (
        f"this picture is an openspine output ({output}), not a scan: analyse the scan it was made from"
        if output
        else None
    )
    source = ScanSource(path=str(path), format="image", not_a_scan=not_a_scan, colour_mask=colour, header_flags=canvas)
    return Scan(arr[:, :, None], picture_affine(sp[0], sp[1]), source)


# the image a canvas frames is a rectangle: each side of the largest piece of content is at least this share content
# (a negative's light background, which follows the body's outline, meets the side its background lies on at a point)
MIN_FRAMED_SIDE = 0.9
FRAME_INSET_PX = 8  # a JPEG block


def _framed_rectangle(content: NDArray[np.bool_]) -> bool:
    """Whether the largest connected piece of ``content`` fills the four sides of its bounding box (the pasted
    image of a canvas), not an outline."""
    from scipy import ndimage

    parts, n = ndimage.label(content)
    if n == 0:
        return False
    sizes = np.bincount(parts.ravel())[1:]
    piece = parts == int(np.argmax(sizes)) + 1
    rows, cols = np.nonzero(piece)
    box = piece[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    # the sides are read a little inside the box: JPEG's ringing sticks out a few pixels past a pasted image's edge
    k = min(FRAME_INSET_PX, max(box.shape) // 10)
    inner = box[k : box.shape[0] - k, k : box.shape[1] - k] if min(box.shape) > 2 * k + 2 else box
    return bool(min(inner[0].mean(), inner[-1].mean(), inner[:, 0].mean(), inner[:, -1].mean()) >= MIN_FRAMED_SIDE)


# a canvas is the value most of a picture's outermost pixels share (within this share of the picture's range: JPEG
# blurs it a little), and every pixel of about that value joined to the edge; where it is lighter than the darkest
# 5 % of what it frames, and frames a rectangle, it is set to the darkest content value, as an MR image's own
# background is. A slice pasted on a white or grey canvas, or framed by a white border, had read as a negative
# (intensity_inverted, grades withheld), mirrored, or as an axial image
CANVAS_TOLERANCE = 0.02
MIN_CANVAS_EDGE_SHARE = 0.5
CANVAS_ABOVE_PERCENTILE = 5.0


def without_light_canvas(arr: NDArray[Any]) -> tuple[NDArray[Any], tuple[str, ...], NDArray[np.bool_] | None]:
    """The picture with a light uniform canvas around it set to its darkest content value, the flag that says so,
    and where the canvas is (no flag and None where the picture has no such canvas: an MR image's background is
    dark already)."""
    found = light_canvas(arr)
    if found is None:
        return arr, (), None
    canvas, value = found
    out = np.asarray(arr).copy()
    out[canvas] = out[~canvas].min()
    share = 100.0 * float(canvas.mean())
    flag = (
        f"picture_canvas: a uniform canvas or frame of grey value {value:.0f} around the image ({share:.0f} % of "
        f"the picture) was read as black, the background of an MR image"
    )
    return out, (flag,), canvas


def light_canvas(arr: NDArray[Any]) -> tuple[NDArray[np.bool_], float] | None:
    """Where a light uniform canvas lies around the picture, and its grey value; None where there is none."""
    from scipy import ndimage

    a = np.asarray(arr)
    if a.ndim != 2 or min(a.shape) < 8:
        return None
    f = a.astype(np.float32, copy=False)
    lo, hi = float(np.nanmin(f)), float(np.nanmax(f))
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return None
    tol = CANVAS_TOLERANCE * (hi - lo)
    edge = np.concatenate([f[0], f[-1], f[1:-1, 0], f[1:-1, -1]])
    values, counts = np.unique(np.round(edge / max(tol, 1e-12)), return_counts=True)
    value = float(values[np.argmax(counts)]) * max(tol, 1e-12)
    on_value = np.abs(edge - value) <= tol
    if np.mean(on_value) < MIN_CANVAS_EDGE_SHARE:
        return None
    value = float(np.median(edge[on_value]))  # the canvas' own value, not its bin's
    if value <= lo + tol:
        return None  # a black frame: an MR image's own background (the usual case, decided without labelling)
    near = np.abs(f - value) <= tol
    parts, _ = ndimage.label(near)
    border = np.unique(np.concatenate([parts[0], parts[-1], parts[:, 0], parts[:, -1]]))
    canvas = np.isin(parts, border[border > 0])
    content = f[~canvas]
    if content.size == 0 or value <= float(np.percentile(content, CANVAS_ABOVE_PERCENTILE)):
        return None  # no canvas, or one as dark as the image's own background
    if not _framed_rectangle(~canvas):
        # the light background of a negative follows the body's outline: no canvas (nor where light anatomy at the
        # image's edge joins the canvas and breaks the rectangle: then read as before, a light frame)
        return None
    return canvas, value


def _over_black(im: Any, name: str) -> Any:
    """A picture with transparency laid over black, the background of an MR image, as its grey values; unchanged
    without transparency. Converting drops the alpha channel and keeps the colour stored under transparent pixels
    (often white, or anything an editor left there), which had read as bright tissue around the spine."""
    from PIL import Image

    if "transparency" in im.info and im.mode in ("P", "L", "RGB"):  # a colour key (tRNS): one value is transparent
        im = im.convert("LA" if im.mode == "L" else "RGBA")
    if im.mode not in ("LA", "La", "RGBA", "RGBa", "PA"):
        return im
    rgba = im.convert("RGBA")
    low, high = rgba.getextrema()[3]
    if low == 255 or high == 0:
        # opaque: nothing to lay; transparent everywhere: an alpha channel left empty by an exporter, not a cut-out
        if high == 0:
            log.info("'%s' is transparent everywhere: its alpha channel is ignored", name)
        return im.convert("RGB" if im.mode.startswith(("RGB", "P")) else "L")
    log.info("'%s' has transparent pixels: laid over black, the background of an MR image", name)
    laid = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return laid.convert("RGB" if im.mode.startswith(("RGB", "P")) else "L")


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
