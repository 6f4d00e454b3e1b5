"""What a picture shows, from its pixels: imaging plane, sequence (contrast) and whether it is cervical.

:func:`recognise_image` runs the built-in ``recognizer`` model (ONNX, onnxruntime; loaded once per process and
cached) on one 2D grey image; :func:`recognise` runs it on a scan in the internal sagittal layout, averaging the
probabilities over a few central slices of a 3D volume. See the model card (``openspine/models/recognizer``) for
what it was trained on and how well it does.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._logging import get_logger
from ..errors import ImageContentError, ModelError
from ..models import LoadedModel, load_model, session_cache
from ..scan import SagittalView
from .image import MODEL_SIZE, MODEL_SPACING_MM, PLANES, SEQUENCES, model_input, without_drawn_bands

log = get_logger("recognition")

MODEL_NAME = "recognizer"
CENTRAL_SLAB_MM = 12.0  # a 3D volume: slices within ± this of the middle slice are averaged
MAX_SLICES = 5


@dataclass(frozen=True)
class ImageRecognition:
    """The recogniser's reading of one picture (probabilities sum to 1 per head)."""

    plane: str
    plane_probabilities: dict[str, float] = field(hash=False)
    sequence: str
    sequence_probabilities: dict[str, float] = field(hash=False)
    cervical_probability: float
    n_slices: int = 1

    @property
    def cervical(self) -> bool:
        return self.cervical_probability >= 0.5

    def to_dict(self) -> dict[str, Any]:
        return {
            "plane": self.plane,
            "plane_probabilities": dict(self.plane_probabilities),
            "sequence": self.sequence,
            "sequence_probabilities": dict(self.sequence_probabilities),
            "cervical_probability": self.cervical_probability,
            "n_slices": self.n_slices,
        }


@session_cache(maxsize=4)
def _model(name_or_folder: str) -> LoadedModel:
    model = load_model(name_or_folder, threads=1)
    inp = model.card.data.get("input", {})
    if int(inp.get("size", MODEL_SIZE)) != MODEL_SIZE or float(inp.get("spacing_mm", 0)) != MODEL_SPACING_MM:
        raise ModelError(
            f"model '{model.card.name}' expects {inp.get('size')} px of {inp.get('spacing_mm')} mm; this openspine "
            f"prepares {MODEL_SIZE} px of {MODEL_SPACING_MM} mm"
        )
    return model


def _run(batch: NDArray[np.float32], model: str | os.PathLike[str] | None) -> ImageRecognition:
    m = _model(str(model) if model is not None else MODEL_NAME)
    plane_p, seq_p, cerv_p = m.run({"image": batch[:, None].astype(np.float32)})
    pp = np.asarray(plane_p, dtype=np.float64).mean(axis=0)
    sp = np.asarray(seq_p, dtype=np.float64).mean(axis=0)
    cp = float(np.asarray(cerv_p, dtype=np.float64).mean())
    return ImageRecognition(
        plane=PLANES[int(np.argmax(pp))],
        plane_probabilities={k: round(float(v), 4) for k, v in zip(PLANES, pp)},
        sequence=SEQUENCES[int(np.argmax(sp))],
        sequence_probabilities={k: round(float(v), 4) for k, v in zip(SEQUENCES, sp)},
        cervical_probability=round(cp, 4),
        n_slices=int(batch.shape[0]),
    )


def recognise_images(
    images: list[NDArray[np.generic]],
    spacing_mm: tuple[float, float],
    model: str | os.PathLike[str] | None = None,
) -> ImageRecognition:
    """One reading of several 2D slices of the same series (probabilities averaged)."""
    if not images:
        raise ImageContentError("no image given to recognise")
    batch = np.stack([model_input(without_drawn_bands(im), spacing_mm) for im in images]).astype(np.float32)
    return _run(batch, model)


def recognise_image(
    image2d: NDArray[np.generic],
    spacing_mm: tuple[float, float],
    model: str | os.PathLike[str] | None = None,
) -> ImageRecognition:
    """Plane, sequence and cervical probability of one 2D grey picture with pixels of ``spacing_mm`` (row, col) mm.

    The picture is used as displayed; a sagittal one is expected with superior at the top (anterior may be on
    either side). ``model`` is a model folder; default: the built-in recogniser.
    """
    return recognise_images([np.asarray(image2d)], spacing_mm, model)


def central_slices(n_slices: int, slice_mm: float) -> list[int]:
    """The slice indices :func:`recognise` reads: the middle one, plus up to ``MAX_SLICES`` within ± 12 mm."""
    if n_slices <= 0:
        return []
    mid = (n_slices - 1) // 2
    half = int(CENTRAL_SLAB_MM / max(slice_mm, 1e-6))
    if half == 0 or n_slices == 1:
        return [mid]
    lo, hi = max(0, mid - half), min(n_slices - 1, mid + half)
    picks = np.unique(np.linspace(lo, hi, min(MAX_SLICES, hi - lo + 1)).round().astype(int))
    return [int(k) for k in picks]


# an image whose content (above a twentieth of its bright level) fills less than this share of its area lies on an
# empty canvas (a screenshot, a picture pasted into a larger one): the model grid is centred on the content instead
MIN_CONTENT_SHARE = 0.5
# a separate piece of content smaller than this share of all of it (a line of text in a corner of a screenshot) is no
# part of the picture the box is drawn around (at 5 %, the faint belly wall of one SPIDER slice was dropped)
MIN_PART_SHARE = 0.02


def content_centre(image: NDArray[np.generic]) -> tuple[float, float] | None:
    """The centre (row, col) of the box around an image's content where that box covers less than
    :data:`MIN_CONTENT_SHARE` of the image (a slice in a corner of a black canvas, which the central model grid would
    miss), else None (the image centre: a scan whose anatomy fills its field of view). Small separate pieces of
    content (:data:`MIN_PART_SHARE`: the text of a screenshot) are left out of the box: a line of text in the
    canvas' corner had stretched the box over the whole canvas. The pieces are found on a subsample of about
    128 × 128, the box at full resolution."""
    from scipy import ndimage

    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 2:
        return None
    step = (max(1, a.shape[0] // 128), max(1, a.shape[1] // 128))
    sample = a[:: step[0], :: step[1]]
    finite = sample[np.isfinite(sample)]
    if not finite.size:
        return None
    lo, hi = (float(x) for x in np.percentile(finite, [0.5, 99.5]))
    content = np.nan_to_num(sample, nan=lo) > lo + (hi - lo) / 20
    parts, n = ndimage.label(ndimage.binary_dilation(content, iterations=2))  # letters of a word join up
    if n == 0:
        return None
    sizes = np.asarray(ndimage.sum(content, parts, np.arange(1, n + 1)))
    kept = np.isin(parts, np.flatnonzero(sizes >= MIN_PART_SHARE * sizes.sum()) + 1)
    # the box at full resolution: the content pixels whose subsample cell belongs to a kept piece
    cells = kept[np.minimum(np.arange(a.shape[0]) // step[0], kept.shape[0] - 1)][
        :, np.minimum(np.arange(a.shape[1]) // step[1], kept.shape[1] - 1)
    ]
    rows, cols = np.nonzero(cells & (np.nan_to_num(a, nan=lo) > lo + (hi - lo) / 20))
    if not len(rows):
        return None
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
    if (r1 - r0 + 1) * (c1 - c0 + 1) >= MIN_CONTENT_SHARE * a.size:
        return None
    return ((r0 + r1) / 2.0, (c0 + c1) / 2.0)


# the last view read (weakly: a finished analysis frees its scan) and its model input, one per thread: analyses run in
# threads side by side (ONNX releases the GIL) must never read each other's input
_last_input = threading.local()


def view_input(view: SagittalView) -> NDArray[np.float32]:
    """The (n, 1, size, size) model input of a scan's central slices (:func:`central_slices`), as the image and the
    orientation recognisers read it. The last view's input is kept: both recognisers read the same view in turn."""
    last: tuple[weakref.ref[SagittalView], NDArray[np.float32]] | None = getattr(_last_input, "entry", None)
    if last is not None and last[0]() is view:
        return last[1]
    arr = view.scan.array
    sp = view.scan.spacing
    ks = central_slices(arr.shape[2], sp[2])
    slices = [without_drawn_bands(np.asarray(arr[:, :, k])) for k in ks]
    batch = np.stack([model_input(im, (sp[0], sp[1]), centre=content_centre(im))[None] for im in slices])
    batch = batch.astype(np.float32)
    _last_input.entry = (weakref.ref(view), batch)
    return batch


def read_central_slices(
    view: SagittalView, default: str, model: str | os.PathLike[str] | None = None
) -> NDArray[np.float64]:
    """A one-output recogniser's reading (orientation, midline: the model folder ``model``, default the built-in
    ``default``) of a scan's central slices as :func:`view_input` gives them: its first output, one row per slice.
    Loaded with one thread, as the image recogniser: a small network, and an idle thread pool would spin beside
    the detector.

    Raises:
        ModelError: the model is missing or damaged.
    """
    loaded = load_model(model if model is not None else default, threads=1)
    return np.asarray(loaded.run({"image": view_input(view)})[0], dtype=np.float64)


def recognise(view: SagittalView, model: str | os.PathLike[str] | None = None) -> ImageRecognition:
    """Recognise a scan from its central slices in the internal layout (rows S→I, cols A→P)."""
    result = _run(view_input(view)[:, 0], model)
    log.debug("recognised %s", result)
    return result
