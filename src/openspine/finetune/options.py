"""The options and the result of a fine-tuning run (no torch: ``openspine.finetune`` imports them eagerly)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
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

    def __post_init__(self) -> None:
        """Refuse numbers outside their range before any work (a bad command line: exit status 2)."""
        at_least = {"epochs": 1, "batch_size": 1, "augment_copies": 0, "threads": 1}
        for name, low in at_least.items():
            value = getattr(self, name)
            if value is not None and value < low:
                option = "--" + name.replace("_", "-")
                raise UsageError(f"{option} must be a whole number of at least {low}, got {value}")
        if self.lr is not None and not (0 < self.lr < float("inf")):
            raise UsageError(f"--lr must be a positive number (e.g. 1e-3), got {self.lr}")
        if not 0 <= self.val_fraction < 1:
            raise UsageError(
                f"--val-fraction must be at least 0 and below 1 (0 only with --no-validation), got {self.val_fraction}"
            )
        if self.base is not None:
            from ..models import model_folder

            model_folder(self.base, "--base")  # a mistyped folder: one line now, not after detecting every scan

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
    caveats: tuple[str, ...] = ()  # why the validation figures may be optimistic or say little (also in the card)
    missed_outside: int = 0  # of ``missed``: at a level the detector never labels (C4-C5 on a lumbar scan)
    detector_levels: str | None = None  # the levels the detector labels ("T11 … S1"; None: not known)
