"""The grader's stacker: per head, a multinomial logistic regression over the network's logits and the measured
disc features (:mod:`openspine.grading.features`).

The network sees a 48 × 96 pixel crop and learns from 780 discs; the features put the disc's height, nucleus
signal and slip into numbers it need not learn. Each head's stacker is kept only where it beat the network alone in
cross-validation on the training patients (``openspine train grader``).

The regression is fitted with class-balanced weights, so its argmax is the decision that maximises balanced
accuracy; its output plus the log of the training class frequencies (``log_prior``) estimates the real posterior.
Hence a stacked head reports probabilities ``softmax((balanced + log_prior) / temperature)`` and the grade
``argmax(balanced)`` – the class whose probability is highest *relative to its training frequency*. On the train
patients' cross-validation this kept the balanced accuracy of the balanced argmax and gave better calibrated
probabilities than the balanced output itself (Pfirrmann ECE 0.050 against 0.085).

Stored in the grader card under ``outputs.stacker``; a grader without one (e.g. a fine-tuned model) uses the
network's logits unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError
from .features import FEATURE_NAMES, FEATURES_VERSION


@dataclass(frozen=True)
class HeadStacker:
    """``balanced = standardise([logits, features]) @ coef + intercept`` for one head; probabilities come from
    ``balanced + log_prior``, the grade from ``argmax(balanced)``."""

    mean: NDArray[np.float64]  # (K + F,)
    scale: NDArray[np.float64]  # (K + F,)
    coef: NDArray[np.float64]  # (K + F, K)
    intercept: NDArray[np.float64]  # (K,)
    log_prior: NDArray[np.float64]  # (K,) log of the training class frequencies

    def balanced(self, logits: NDArray[np.floating], features: NDArray[np.floating]) -> NDArray[np.float64]:
        """The class-balanced scores (their argmax is the grade)."""
        x = np.hstack([np.asarray(logits, np.float64), np.asarray(features, np.float64)])
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept  # type: ignore[no-any-return]

    def apply(self, logits: NDArray[np.floating], features: NDArray[np.floating]) -> NDArray[np.float64]:
        """Logits for the probabilities (balanced scores + log prior)."""
        return self.balanced(logits, features) + self.log_prior

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": [round(float(v), 7) for v in self.mean],
            "scale": [round(float(v), 7) for v in self.scale],
            "coef": [[round(float(v), 7) for v in row] for row in self.coef],
            "intercept": [round(float(v), 7) for v in self.intercept],
            "log_prior": [round(float(v), 7) for v in self.log_prior],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], n_classes: int) -> HeadStacker:
        mean, scale = np.asarray(d["mean"], float), np.asarray(d["scale"], float)
        coef, intercept = np.asarray(d["coef"], float), np.asarray(d["intercept"], float)
        log_prior = np.asarray(d["log_prior"], float)
        n_in = n_classes + len(FEATURE_NAMES)
        if mean.shape != (n_in,) or scale.shape != (n_in,) or coef.shape != (n_in, n_classes):
            raise ValueError(f"expected {n_in} inputs and {n_classes} classes, got coef {coef.shape}")
        if intercept.shape != (n_classes,) or log_prior.shape != (n_classes,) or not (scale > 0).all():
            raise ValueError("intercept or log_prior has the wrong length, or a scale is not positive")
        return cls(mean=mean, scale=scale, coef=coef, intercept=intercept, log_prior=log_prior)


@dataclass(frozen=True)
class Stacker:
    heads: Mapping[str, HeadStacker]

    def apply(
        self, logits: Mapping[str, NDArray[np.floating]], features: NDArray[np.floating]
    ) -> dict[str, NDArray[np.float64]]:
        """New logits of every head (heads without a stacker pass through)."""
        return {
            name: (self.heads[name].apply(z, features) if name in self.heads else np.asarray(z, np.float64))
            for name, z in logits.items()
        }

    def decision_offsets(self) -> dict[str, NDArray[np.float64]]:
        """Per stacked head, what to add to its logits before the argmax that picks the grade (−log prior)."""
        return {name: -h.log_prior for name, h in self.heads.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "features_version": FEATURES_VERSION,
            "features": list(FEATURE_NAMES),
            "heads": {name: h.to_dict() for name, h in self.heads.items()},
        }

    @classmethod
    def from_card(cls, d: Mapping[str, Any] | None, n_classes: Mapping[str, int], model: str) -> Stacker | None:
        """The stacker of a card's ``outputs.stacker`` (``None`` when the card has none).

        Raises:
            ModelError: the card's stacker was made with other features or does not fit the heads.
        """
        if not d:
            return None
        if d.get("features_version") != FEATURES_VERSION or list(d.get("features", [])) != list(FEATURE_NAMES):
            raise ModelError(
                f"grader '{model}': its stacker uses features {d.get('features_version')!r}, this openspine "
                f"computes {FEATURES_VERSION!r}; use the openspine version the model was made with"
            )
        heads: dict[str, HeadStacker] = {}
        for name, h in dict(d.get("heads", {})).items():
            if name not in n_classes:
                raise ModelError(f"grader '{model}': the stacker has a head '{name}' that the model does not have")
            try:
                heads[name] = HeadStacker.from_dict(h, n_classes[name])
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelError(f"grader '{model}': the stacker of head '{name}' is damaged ({exc})") from None
        return cls(heads=heads)
