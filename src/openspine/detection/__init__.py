"""Vertebra detection and labelling: :func:`detect` finds the vertebral bodies of a sagittal scan, labels them with
consecutive levels and derives the discs between neighbours.

Modules, in the order the steps run (see ``docs/detection.md``):

* :mod:`.preprocess` – slices chosen, resampled to the model's pixel size and normalised;
* :mod:`.detect` – the detector network (ONNX, onnxruntime): :func:`detect`, :func:`run_detection`;
* :mod:`.decode` – body instances per slice, grouped across slices; :mod:`.outline` – four endplate corners;
* :mod:`.labelling` – one consistent label sequence fitted to the network's level estimates; :mod:`.flags` – what
  makes it ambiguous (flagged, not hidden);
* :mod:`.records` – the result records, a disc between every two consecutive labelled bodies;
* :mod:`.types` – :class:`Detection`, :class:`DiscGeometry`, :class:`VertebraGeometry`: the contract with the
  grader.

Coordinates in the records follow :mod:`openspine.results`: ``*_voxel`` indexes the input array, ``*_mm`` is RAS+.
The internal geometry that the grader needs (endplate corners on the mid-sagittal slice, in the internal layout)
is in :attr:`Detection.disc_geometry` and :attr:`Detection.vertebra_geometry`.
"""

from __future__ import annotations

from .detect import BUILTIN_MODEL, DetectionRun, decode_maps, detect, run_detection, run_network
from .types import Detection, DiscGeometry, VertebraGeometry

__all__ = [
    "BUILTIN_MODEL",
    "Detection",
    "DetectionRun",
    "DiscGeometry",
    "VertebraGeometry",
    "decode_maps",
    "detect",
    "run_detection",
    "run_network",
]
