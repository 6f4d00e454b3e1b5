"""SpineNet alone against SpineNet through openspine (``--engine spinenet``): model load and one scan, same weights.

Needs SpineNet's package (docs/spinenet.md#install) and a weights folder (its own, or random weights of its
classes written by ``--make-random DIR``: the networks then detect nothing, so only detection is timed).

    python scripts/benchmark_spinenet.py --make-random /tmp/spinenet-random
    python scripts/benchmark_spinenet.py --weights /tmp/spinenet-random --slices 15   # default scan: fcs-vb2-13
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("benchmark_spinenet")


def make_random(root: Path) -> None:
    import torch
    from spinenet.models import AppearanceModel, ContextModel, GradingModel, VFRResNetDetector

    torch.manual_seed(0)
    for sub, name, cls, key, epoch in (
        ("detect-vfr", "ckpt435.pt", VFRResNetDetector, "net", "epoch"),
        ("appearance", "ckpt187.pt", AppearanceModel, "net", "epoch"),
        ("context", "ckpt16.pt", ContextModel, "net", "epoch"),
        ("grading", "ckpt1.pt", GradingModel, "model_weights", "epoch_no"),
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
        torch.save({key: cls().state_dict(), epoch: 0, "loss": 0.0}, root / sub / name)
    log.info("random-weight checkpoints written under %s", root)


def spinenet_alone(weights: Path) -> Any:
    """SpineNet(...) as its README builds it, its networks loading from ``weights`` (SpineNet's own loader)."""
    import spinenet
    from spinenet.models import AppearanceModel, ContextModel, GradingModel, VFRResNetDetector

    saved = {}
    for cls, sub in (
        (VFRResNetDetector, "detect-vfr"),
        (AppearanceModel, "appearance"),
        (ContextModel, "context"),
        (GradingModel, "grading"),
    ):
        saved[cls] = cls.load_weights
        cls.load_weights = (lambda orig, d: lambda self, path, verbose=True: orig(self, str(d), False))(
            saved[cls], weights / sub
        )
    try:
        return spinenet.SpineNet(device="cpu", verbose=False)
    finally:
        for cls, orig in saved.items():
            cls.load_weights = orig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--make-random", type=Path, default=None, metavar="DIR")
    ap.add_argument("--weights", type=Path, default=None, metavar="DIR")
    ap.add_argument("--scan", type=Path, default=Path("../shared/data/fastcleverseg/fcs-vb2-13/image.nii.gz"))
    ap.add_argument("--slices", type=int, default=15, help="central sagittal slices kept (0: all)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, alternated")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.make_random:
        make_random(args.make_random)
        return
    import nibabel as nib

    import openspine
    from openspine.engines import spinenet as engine

    # one scan, stored as SpineNet takes it (rows S→I, columns A→P, slices): what a SpineNet user hands it
    img = nib.as_closest_canonical(nib.load(args.scan))
    scan = openspine.Scan(np.asanyarray(img.dataobj), img.affine)
    view = scan.to_sagittal()
    if args.slices:
        k0 = max(0, view.scan.shape[2] // 2 - args.slices // 2)
        arr = view.scan.array[:, :, k0 : k0 + args.slices]
        aff = view.scan.affine.copy()
        aff[:3, 3] = aff[:3, :3] @ [0, 0, k0] + aff[:3, 3]
        view = openspine.Scan(arr, aff).to_sagittal()
    volume, spacing = engine.spinenet_volume(view)
    path = Path(tempfile.mkdtemp()) / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(view.scan.array), view.scan.affine), path)
    log.info("scan %s: %s voxels, spacing %s mm", args.scan, volume.shape, spacing)

    def alone_run(net: Any) -> int:
        try:
            verts = net.detect_vb(volume, list(spacing))
        except ValueError as exc:  # SpineNet's labelling fails when nothing was detected (random weights)
            if "non-empty list" not in str(exc):
                raise
            return 0
        if len(verts) >= 2:
            net.grade_ivds(net.get_ivds_from_vert_dicts(verts, volume, pixel_spacing=list(spacing)))
        return len(verts)

    t = time.perf_counter()
    net = spinenet_alone(args.weights)
    load_alone = time.perf_counter() - t
    t = time.perf_counter()
    loaded = engine.SpineNetEngine.load(args.weights)
    load_ours = time.perf_counter() - t
    network = {"s": 0.0}
    started: list[float] = []
    for model in (net.detection_model, loaded.net.detection_model):
        model.register_forward_pre_hook(lambda m, i: started.append(time.perf_counter()))
        model.register_forward_hook(
            lambda m, i, o: network.__setitem__("s", network["s"] + time.perf_counter() - started.pop())
        )
    alone: list[tuple[float, float, float]] = []  # wall s, detection network wall s, CPU s of this process
    ours: list[tuple[float, float, float]] = []
    for _ in range(args.repeat):  # alternated: the machine's other load hits both alike
        for runs, run in (
            (alone, lambda: alone_run(net)),
            (ours, lambda: len(engine.analyze(path, engine=loaded).vertebrae)),
        ):
            network["s"] = 0.0
            t, cpu = time.perf_counter(), time.process_time()
            n = run()
            runs.append((time.perf_counter() - t, network["s"], time.process_time() - cpu))
    for name, load, runs in (("SpineNet alone", load_alone, alone), ("through openspine", load_ours, ours)):
        total, net_s, _ = min(runs)  # the fastest run: the least disturbed by the machine's other load
        log.info(
            "%-18s model load %5.1f s; scan (fastest) %6.1f s (detection network %6.1f s, the rest %5.1f s) "
            "over %d runs: %s",
            name,
            load,
            total,
            net_s,
            total - net_s,
            len(runs),
            ", ".join(f"{r[0]:.1f} s ({r[2]:.0f} CPU s)" for r in runs),
        )
    log.info("(%d bodies detected; model load through openspine includes the checkpoints' sha256)", n)


if __name__ == "__main__":
    main()
