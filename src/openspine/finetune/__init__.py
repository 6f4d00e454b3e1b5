"""Fine-tuning: teach the grader new gradings (or adapt existing ones) from your own labelled scans.

``openspine finetune --scans DIR --labels labels.csv --out MODEL_DIR`` finds the discs of every scan with the
built-in detector, trains the heads named in ``labels.csv`` on top of the built-in grader's backbone (frozen by
default), calibrates them on held-out scans and writes a model folder that ``openspine analyze --grader
MODEL_DIR`` uses. ``--rsna DIR`` reads the RSNA 2024 lumbar challenge data directly.

Needs PyTorch (``pip install 'openspine[train]'``); importing this package does not import it.
"""

from .command import build_parser, cli_main, run_finetune
from .labels import LabelTable, parse_classes, read_labels
from .options import FinetuneOptions, FinetuneResult
from .rsna import prepare_rsna

__all__ = [
    "FinetuneOptions",
    "FinetuneResult",
    "LabelTable",
    "build_parser",
    "cli_main",
    "parse_classes",
    "prepare_rsna",
    "read_labels",
    "run_finetune",
]
