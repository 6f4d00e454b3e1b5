"""The options and the result of a fine-tuning run (no torch: ``openspine.finetune`` imports them eagerly)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..grading.heads import HeadSpec


@dataclass
class FinetuneOptions:
    """Options of one fine-tuning run (saved in the new model's card)."""

    base: str | None = None  # base grader folder; None = built-in
    freeze_backbone: bool = True
    fresh_heads: bool = False  # re-initialise heads that the base model already has
    epochs: int = 40
    lr: float | None = None  # default: 1e-2 frozen (heads only), 1e-3 unfrozen
    batch_size: int = 32
    val_fraction: float = 0.2
    seed: int = 0
    augment_copies: int = 8  # frozen backbone: augmented views per disc whose embeddings train the heads
    class_weight_power: float = 0.5
    name: str = "grader-finetuned"
    version: str = "1.0.0"
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("extra")
        return d


@dataclass
class FinetuneResult:
    folder: Path
    heads: list[HeadSpec]
    metrics: dict[str, Any]
    calibration: dict[str, Any]
    n_train: int
    n_val: int
    missed: list[str]
    failed: dict[str, str]
    frozen_check: str
