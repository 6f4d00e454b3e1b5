"""Know what a picture is: imaging plane, sequence and cervical field of view, from the header and the pixels.

:func:`sequence_from_header` reads the DICOM header; :func:`recognise_image` / :func:`recognise` read the pixels with
the built-in ``recognizer`` model. The analysis uses them to refuse or withhold what its models were not built for.
"""

from __future__ import annotations

from .header import SEQUENCE_VALUES, sequence_from_header, sequence_from_text, sequence_from_timing
from .image import MODEL_SIZE, MODEL_SPACING_MM, PLANES, SEQUENCES, model_input
from .model import ImageRecognition, central_slices, recognise, recognise_image, recognise_images

__all__ = [
    "MODEL_SIZE",
    "MODEL_SPACING_MM",
    "PLANES",
    "SEQUENCES",
    "SEQUENCE_VALUES",
    "ImageRecognition",
    "central_slices",
    "model_input",
    "recognise",
    "recognise_image",
    "recognise_images",
    "sequence_from_header",
    "sequence_from_text",
    "sequence_from_timing",
]
