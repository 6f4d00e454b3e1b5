"""Small model folders for tests (need torch): untrained, tiny, real files that load like shipped models."""

from __future__ import annotations

import json
from pathlib import Path

PAIRED_TEST_HEADS = ("marrow_change", "endplate_defect_upper", "endplate_defect_lower")


def tiny_paired_grader(folder: Path, heads: tuple[str, ...] = PAIRED_TEST_HEADS) -> Path:
    """An untrained two-channel (T2, T1) grader folder with a very small backbone, answering ``heads``."""
    import torch

    from openspine.grading.crop import CropSpec
    from openspine.grading.heads import BUILTIN_HEADS
    from openspine.grading.pair import PAIRED_CHANNELS
    from openspine.training import grader_network as engine
    from openspine.training.grader import write_model_folder

    torch.manual_seed(0)
    hs = [h for h in BUILTIN_HEADS if h.name in heads]
    cfg = engine.NetConfig(widths=(8, 8, 16, 16), reduce=4, embedding=16, dropout=0.0, in_channels=2)
    net = engine.DiscNet(cfg, CropSpec(), hs)
    net.eval()
    write_model_folder(
        folder, net, hs, {"training_data": {"note": "test model"}, "metrics": {}}, "tiny-paired", "0.0.1"
    )
    card = json.loads((folder / "card.json").read_text())
    card["input"]["channels"] = list(PAIRED_CHANNELS)
    (folder / "card.json").write_text(json.dumps(card))
    return folder
