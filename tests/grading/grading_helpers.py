"""Synthetic spines of known disc geometry and a tiny untrained grader, for tests that must not need real data."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from openspine.detection import Detection, DiscGeometry
from openspine.levels import DiscLevel
from openspine.results import Disc, SliceOutline
from openspine.scan import Scan

# internal layout (rows S→I, cols A→P, slices L→R) with 0.8 × 0.6 mm pixels and 4 mm slices
AFFINE = np.array([[0.0, 0.0, 4.0, 0.0], [0.0, -0.6, 0.0, 0.0], [-0.8, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
SPACING = (0.8, 0.6, 4.0)
LEVELS = (DiscLevel.L1_L2, DiscLevel.L2_L3, DiscLevel.L3_L4, DiscLevel.L4_L5, DiscLevel.L5_S1)


def synthetic_spine(
    disc_values: list[float], tilt_deg: float = 8.0, n_slices: int = 1, seed: int = 0
) -> tuple[np.ndarray, dict[DiscLevel, DiscGeometry]]:
    """A sagittal image (rows, cols, slices) with six bodies and five discs of the given intensities (body = 100).

    Returns the array and each disc's endplate geometry in internal voxel (row, col) coordinates.
    """
    rng = np.random.default_rng(seed)
    shape = (400, 260)
    sr, sc = SPACING[0], SPACING[1]
    img = np.full(shape, 15.0) + rng.normal(0, 2, shape)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    xy = np.stack([cols * sc, rows * sr], axis=-1)
    geoms: dict[DiscLevel, DiscGeometry] = {}
    y = 40.0
    x0 = shape[1] * sc / 2
    body_h, disc_h, half = 24.0, 9.0, 19.0
    for i in range(6):
        t = math.radians(tilt_deg * (i - 2.5) / 2.5)
        u = np.array([math.cos(t), math.sin(t)])
        v = np.array([-u[1], u[0]])
        c_body = np.array([x0, y + body_h / 2])
        d = xy - c_body
        a, b = d @ u, d @ v
        img[(abs(a) < half) & (abs(b) < body_h / 2)] = 100.0
        if i < 5:
            c_disc = c_body + (body_h / 2 + disc_h / 2) * v
            d = xy - c_disc
            a, b = d @ u, d @ v
            img[(abs(a) < half) & (abs(b) <= disc_h / 2)] = disc_values[i]

            def rc(p: np.ndarray) -> tuple[float, float]:
                return float(p[1] / sr), float(p[0] / sc)

            geoms[LEVELS[i]] = DiscGeometry(
                upper_anterior=rc(c_disc - half * u - disc_h / 2 * v),
                upper_posterior=rc(c_disc + half * u - disc_h / 2 * v),
                lower_anterior=rc(c_disc - half * u + disc_h / 2 * v),
                lower_posterior=rc(c_disc + half * u + disc_h / 2 * v),
                slice_index=n_slices // 2,
            )
        y += body_h + disc_h
    arr = np.repeat(img[:, :, None], n_slices, axis=2).astype(np.float32)
    return arr, geoms


def spine_scan(disc_values: list[float], **kw: Any) -> tuple[Scan, dict[DiscLevel, DiscGeometry]]:
    arr, geoms = synthetic_spine(disc_values, **kw)
    return Scan(arr, AFFINE), geoms


def fake_detection(view: Any, geoms: dict[DiscLevel, DiscGeometry], extra_levels: tuple[Any, ...] = ()) -> Detection:
    """A detection without internal geometry whose discs carry outlines (input voxel coordinates) built from
    ``geoms``."""
    discs = []
    for level, g in geoms.items():
        k = g.slice_index
        internal = np.array(
            [[*g.upper_anterior, k], [*g.upper_posterior, k], [*g.lower_posterior, k], [*g.lower_anterior, k]], float
        )
        vox = view.to_input_voxel(internal)
        mm = view.to_world(internal)
        c = vox.mean(axis=0)
        outline = SliceOutline(
            slice_index=k,
            corners_voxel=tuple(tuple(float(x) for x in p) for p in vox),  # type: ignore[arg-type]
            corners_mm=tuple(tuple(float(x) for x in p) for p in mm),  # type: ignore[arg-type]
        )
        discs.append(
            Disc(level=level, centroid_voxel=tuple(c), centroid_mm=tuple(mm.mean(axis=0)), outlines=(outline,))
        )
    for lv in extra_levels:
        discs.append(Disc(level=lv, centroid_voxel=(0.0, 0.0, 0.0), centroid_mm=(0.0, 0.0, 0.0)))
    return Detection(vertebrae=(), discs=tuple(discs), flags=(), models=())


def tiny_grader(folder: Path, heads: Any = None, pretrain_epochs: int = 0) -> Path:
    """A grader model folder with a very small backbone (needs torch).

    Untrained by default; with ``pretrain_epochs`` its Pfirrmann head is first trained on synthetic discs whose
    grade follows their brightness, so its backbone features mean something (as a real base model's do).
    """
    import torch

    from openspine.grading.crop import CropSpec
    from openspine.grading.heads import BUILTIN_HEADS
    from openspine.training import grader_network as engine
    from openspine.training.datasets.discs import DiscSample
    from openspine.training.grader import write_model_folder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network: one thread is fastest, also on a busy machine
    torch.manual_seed(0)
    spec = CropSpec(height=32, width=64)
    heads = list(heads or BUILTIN_HEADS)
    cfg = engine.NetConfig(widths=(8, 8, 16, 16), blocks=(1, 1, 1, 1), reduce=4, embedding=16, dropout=0.0)
    net = engine.DiscNet(cfg, spec, heads)
    if pretrain_epochs:
        rng = np.random.default_rng(1)
        samples = []
        for i in range(12):
            grades = rng.integers(1, 6, 5)
            arr, geoms = synthetic_spine([float(380 - 70 * g) for g in grades], seed=100 + i)
            for lv, g in zip(LEVELS, grades):
                samples.append(DiscSample(f"p{i}", lv, arr, SPACING, geoms[lv], {"pfirrmann": int(g) - 1}))
        pf = [h for h in heads if h.name == "pfirrmann"]
        engine.train(net, samples, pf, engine.TrainConfig(epochs=pretrain_epochs, batch_size=16, lr=3e-3))
    net.eval()
    extra = {"training_data": {"note": "test model"}, "metrics": {}}
    try:
        return write_model_folder(folder, net, heads, extra, "tiny-grader", "0.0.1")
    finally:
        torch.set_num_threads(threads)


def add_random_stacker(folder: Path, heads: tuple[str, ...] = ("pfirrmann",), seed: int = 0) -> Path:
    """Give a grader folder a stacker with random coefficients for ``heads`` (as the built-in grader has one)."""
    import json

    from openspine.grading.features import FEATURE_NAMES
    from openspine.grading.stacker import HeadStacker, Stacker

    rng = np.random.default_rng(seed)
    card = json.loads((folder / "card.json").read_text())
    n_classes = {h["name"]: len(h["classes"]) for h in card["outputs"]["heads"]}
    st = {}
    for name in heads:
        n_in = n_classes[name] + len(FEATURE_NAMES)
        st[name] = HeadStacker(
            mean=rng.normal(size=n_in),
            scale=rng.uniform(1.0, 5.0, n_in),
            coef=rng.normal(size=(n_in, n_classes[name])),
            intercept=rng.normal(size=n_classes[name]),
            log_prior=np.log(rng.dirichlet(np.ones(n_classes[name]))),
        )
    card["outputs"]["stacker"] = Stacker(heads=st).to_dict()
    (folder / "card.json").write_text(json.dumps(card, indent=2))
    return folder


def only_disc_withheld(clean: Any, drawn: Any, level: str, note: str) -> Any:
    """Assert that of the graded discs of ``clean`` only ``level`` lost its Pfirrmann grade in ``drawn`` (a note
    holding ``note``) and the others kept theirs; returns that withheld grade."""
    withheld = None
    for before, after in zip(clean.discs, drawn.discs):
        if before.level is None or not before.grades:
            continue
        g = after.grades["pfirrmann"]
        if before.level.value == level:
            assert not g.available and g.note is not None and note in g.note
            withheld = g
        else:
            assert g.available and g.grade == before.grades["pfirrmann"].grade
    assert withheld is not None, f"{level} was not graded in the clean picture"
    return withheld
