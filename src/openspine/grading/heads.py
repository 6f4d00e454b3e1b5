"""The gradings a grader model can have ("heads"), their classes, and where SPIDER keeps their labels.

A head is described by its name (a :class:`~openspine.levels.Grading` value), its class names (strings), and
whether the classes are ordered. The grade reported for a disc is the class itself when every class name is an
integer (``"1"`` … ``"5"`` for Pfirrmann) and the class index otherwise (declared names such as
``normal,mild,severe`` become grades 0, 1, 2; the card keeps the names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, ModelError
from ..levels import GradingName, grading_key
from ..models import ModelCard


@dataclass(frozen=True)
class HeadSpec:
    """One grading output of a grader model."""

    name: str
    classes: tuple[str, ...]
    ordinal: bool = False
    temperature: float = 1.0  # calibration: probabilities = softmax(logits / temperature)
    description: str = ""

    def __post_init__(self) -> None:
        if len(self.classes) < 2:
            raise ConfigError(f"grading '{self.name}' needs at least two classes, got {list(self.classes)}")
        if len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"grading '{self.name}' has repeated classes {list(self.classes)}")
        if not self.temperature > 0:
            raise ConfigError(f"grading '{self.name}': temperature must be positive, got {self.temperature}")

    @property
    def grading(self) -> GradingName:
        return grading_key(self.name)

    @property
    def integer_classes(self) -> bool:
        return all(is_int(c) for c in self.classes)

    def grade_of(self, index: int) -> int:
        """The reported grade of class ``index``."""
        return int(self.classes[index]) if self.integer_classes else int(index)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "classes": list(self.classes),
            "ordinal": self.ordinal,
            "temperature": round(float(self.temperature), 5),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeadSpec:
        try:
            return cls(
                name=str(d["name"]),
                classes=tuple(str(c) for c in d["classes"]),
                ordinal=bool(d.get("ordinal", False)),
                temperature=float(d.get("temperature", 1.0)),
                description=str(d.get("description", "")),
            )
        except KeyError as exc:
            raise ModelError(f"a grader head description lacks {exc}: {d!r}") from None


def is_int(s: str) -> bool:
    """Whether a class name is an integer (``"2"``, ``" 2 "``, ``"-1"``)."""
    try:
        int(s)
    except ValueError:
        return False
    return True


BUILTIN_HEADS: tuple[HeadSpec, ...] = (
    HeadSpec("pfirrmann", ("1", "2", "3", "4", "5"), ordinal=True, description="Pfirrmann grade I–V"),
    HeadSpec("narrowing", ("0", "1"), ordinal=True, description="disc height loss: absent / present"),
    HeadSpec("spondylolisthesis", ("0", "1"), ordinal=True, description="vertebral slip: absent / present"),
    HeadSpec("endplate_defect_upper", ("0", "1"), description="defect of the upper endplate: absent / present"),
    HeadSpec("endplate_defect_lower", ("0", "1"), description="defect of the lower endplate: absent / present"),
    HeadSpec("marrow_change", ("0", "1", "2", "3"), description="Modic type 0 (none) / 1 / 2 / 3 (nominal)"),
    HeadSpec("herniation", ("0", "1"), description="disc herniation: absent / present"),
    HeadSpec("bulging", ("0", "1"), description="disc bulging: absent / present"),
)

# How the labels of a grading are called in a note, and where 'openspine finetune' can learn it from (about
# gradings, not about any model: which gradings a model lacks, and why, comes from its card).
LABEL_NAMES: dict[str, str] = {
    "central_canal_stenosis": "canal stenosis",
    "foraminal_stenosis_left": "foraminal stenosis",
    "foraminal_stenosis_right": "foraminal stenosis",
}
FINETUNE_SOURCES: dict[str, str] = {
    "central_canal_stenosis": "the RSNA 2024 lumbar data: --rsna DIR",
    "foraminal_stenosis_left": "the RSNA 2024 lumbar data: --rsna DIR",
    "foraminal_stenosis_right": "the RSNA 2024 lumbar data: --rsna DIR",
}


def training_dataset(card: ModelCard) -> str | None:
    """The short name of the dataset a model was trained on, when its card declares one and lists the labels
    learnt from it (``training_data.dataset``, ``training_data.labels``); the name ends before any parenthesis."""
    data = card.data.get("training_data")
    if not isinstance(data, Mapping) or not isinstance(data.get("labels"), Mapping) or not data.get("dataset"):
        return None
    return str(data["dataset"]).split(" (")[0].strip() or None


def unavailable_note(name: str, card: ModelCard) -> str:
    """Why a grading is not in the outputs of the grader with this card.

    When the card names its training dataset and the labels learnt from it, a known grading absent from them is
    explained by that dataset; otherwise the note says the model has no such output.
    """
    dataset = training_dataset(card)
    learnt = card.data["training_data"]["labels"] if dataset is not None else {}
    if dataset is not None and name in LABEL_NAMES and name not in learnt:
        who = "the built-in grader" if card.builtin else f"grader model '{card.name}'"
        hint = f" (e.g. from {FINETUNE_SOURCES[name]})" if name in FINETUNE_SOURCES else ""
        return (
            f"not available from {who}: its training data ({dataset}) has no {LABEL_NAMES[name]} labels; "
            f"add it with 'openspine finetune'{hint}"
        )
    return f"not available from grader model '{card.name}': it has no '{name}' output; add it with 'openspine finetune'"
