"""The learning side's layers: imports go one way (inference ← training ← evaluation / finetune ← commands)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import openspine

ROOT = Path(openspine.__file__).resolve().parent
LEARNING = ("openspine.training", "openspine.evaluation", "openspine.finetune", "openspine.train_grader_cli")
ABOVE_TRAINING = (
    "openspine.evaluation",
    "openspine.finetune",
    "openspine.train_grader_cli",
    "openspine.cli",
    "openspine.commands",
    "openspine.batch",
)


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every openspine module ``path`` imports, at module level or inside a function."""
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out |= {target} if node.module else {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m == "openspine" or m.startswith("openspine.")}


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


GRAPH = {_module(p): _imports(p) for p in sorted(ROOT.rglob("*.py"))}


def _violations(sources: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{m} imports {t}"
        for m, targets in GRAPH.items()
        if _under(m, sources)
        for t in sorted(targets)
        if _under(t, forbidden)
    ]


def test_the_graph_is_read():
    assert "openspine.training.metrics" in GRAPH["openspine.evaluation.grading"]


@pytest.mark.parametrize(
    ("sources", "forbidden"),
    [
        (("openspine.training",), ABOVE_TRAINING),
        (("openspine.evaluation",), ("openspine.finetune", "openspine.train_grader_cli", "openspine.cli")),
        (("openspine.finetune",), ("openspine.evaluation", "openspine.train_grader_cli", "openspine.cli")),
    ],
)
def test_the_learning_side_imports_one_way(sources: tuple[str, ...], forbidden: tuple[str, ...]):
    assert _violations(sources, forbidden) == []


def test_the_inference_package_holds_no_learning_code():
    outside = tuple(sorted({m for m in GRAPH if m != "openspine" and not _under(m, LEARNING)}))
    assert _violations(outside, LEARNING) == []
