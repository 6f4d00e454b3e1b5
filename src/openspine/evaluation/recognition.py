"""``openspine evaluate recognition``: how well the recogniser tells plane, sequence and cervical field of view.

On the chosen split (``val`` for reporting; the recogniser never saw it):

* **sequence** – the SPIDER T1 and T2 mid-sagittal slices, from the image alone (target ≥ 98 %); also the slices cut
  from the volumes of known sequence (FastCleverSeg VB2 / IVD and SCT = T2, VB3 water-fat = other);
* **plane** – slices cut in all three planes at five central positions (30 … 70 % of the axis) from every volume of
  the split (FastCleverSeg, SCT), plus the SPIDER slices (sagittal);
* **cervical** – the share of the split's lumbar / thoraco-lumbar pictures called cervical (should be ~0). Every
  cervical item of the data set is in ``train``; ``--lopo ID=MODEL_DIR`` adds a leave-one-patient-out figure: the
  cervical crops of ``ID`` read by a model trained without it (``openspine train recognizer --exclude ID``);
* **augmented** – the same pictures again, once cropped to a random part of the field of view and once mirrored
  (anterior ↔ posterior; left ↔ right for axial / coronal), seeded.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._command_parser import command_parser
from .._logging import get_logger
from ..errors import ConfigError, ScanReadError
from ..recognition.image import PLANES, widened
from ..recognition.model import ImageRecognition, recognise_image
from .detection import read_ids

log = get_logger("evaluation.recognition")

CERVICAL_ITEMS = ("sct-example-t2", "sct-testing-t2", "sct-testing-t1")  # all in train
POSITIONS = (0.3, 0.4, 0.5, 0.6, 0.7)  # where volumes are cut, as a fraction of the through-plane axis
TARGETS = {"spider_sequence_accuracy": (">=", 0.98), "lumbar_called_cervical": ("<=", 0.02)}

_EPILOG = """examples:
  openspine evaluate recognition --data ../shared/data --split val
  openspine evaluate recognition --data ../shared/data --split val --model runs/recognizer --card
  openspine evaluate recognition --data ../shared/data --split val --lopo sct-example-t2=runs/no-neck \\
      --lopo sct-testing-t2=runs/no-crops

--card writes the figures into the model folder's card.json (val split only; the weights are unchanged).
"""


@dataclass
class Picture2D:
    """One evaluation picture and what it truly is (None: not known / not scored)."""

    id: str
    image: NDArray[Any]
    spacing: tuple[float, float]
    plane: str
    sequence: str | None
    cervical: bool | None
    source: str  # "spider", "volume", "cervical"


@dataclass
class Tally:
    correct: int = 0
    total: int = 0
    wrong: list[str] = field(default_factory=list)

    def add(self, ok: bool, what: str) -> None:
        self.total += 1
        self.correct += int(ok)
        if not ok:
            self.wrong.append(what)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        acc = self.accuracy
        return {
            "correct": self.correct,
            "total": self.total,
            "accuracy": None if acc is None else round(acc, 4),
            "wrong": self.wrong[:20],
        }

    def text(self) -> str:
        acc = self.accuracy
        return f"{self.correct}/{self.total}" + ("" if acc is None else f" ({100 * acc:.1f} %)")


# --- pictures --------------------------------------------------------------------------------------------------------
def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise ScanReadError(f"'{path.parent}' is not the shared data folder: it has no {path.name}")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def volume_cuts(
    vol: NDArray[Any], spacing: tuple[float, float, float], positions: tuple[float, ...] = POSITIONS
) -> list[tuple[str, float, NDArray[Any], tuple[float, float]]]:
    """(plane, position, slice, pixel mm) of a volume in the internal layout, cut at ``positions`` of each axis."""
    from ..training.datasets.pictures import cut_array, slice_axis

    out = []
    for plane in PLANES:
        n = vol.shape[slice_axis(plane)]
        for f in positions:
            k = int(np.clip(round(f * (n - 1)), 0, n - 1))
            img, sp, _ = cut_array(vol, spacing, plane, k)
            out.append((plane, f, img, (float(sp[0]), float(sp[1]))))
    return out


def split_pictures(data: Path, split: str) -> list[Picture2D]:
    """The SPIDER slices (T2 and T1) and the volume cuts of ``split``."""
    from ..training.datasets.pictures import load_internal_volume, load_slice, sequence_label

    data = Path(data)
    pics: list[Picture2D] = []
    for row in _rows(data / "index.csv"):
        if row["split"] != split:
            continue
        folder = data / row["path"]
        if row["dataset"] == "spider":
            img, sp = load_slice(folder / row["image"])
            pics.append(Picture2D(row["id"], img, sp, "sagittal", "T2", False, "spider"))
            continue
        vol, sp3 = load_internal_volume(folder / row["image"].split(";")[0])
        code = sequence_label(row)
        seq = None if code < 0 else ("T1", "T2", "other")[code]
        cervical: bool | None = False
        if row["dataset"] == "sct" and "lumbar" not in row["id"]:
            cervical = None  # a cervical item in this split: scored in the cervical section only
            seq = "T1" if row["id"].endswith("t1") else "T2"
        for plane, f, img2, sp2 in volume_cuts(vol, sp3):
            pics.append(Picture2D(f"{row['id']}:{plane}@{f:.1f}", img2, sp2, plane, seq, cervical, "volume"))
    t1 = data / "spider" / "t1.csv"
    if t1.is_file():
        for row in _rows(t1):
            if row["split"] == split:
                img, sp = load_slice(data / row["path"] / row["image"])
                pics.append(Picture2D(row["id"], img, sp, "sagittal", "T1", False, "spider"))
    return pics


def cervical_pictures(data: Path, item_id: str) -> list[Picture2D]:
    """Crops of one cervical SCT item with their truth: sagittal slices near the middle, axial cuts; for the whole
    neck (``sct-example-t2``) crops above C7 (cervical) and wholly below it (not cervical)."""
    from ..training.datasets.pictures import c7_row, load_internal_volume

    data = Path(data)
    folder = data / "sct" / item_id
    if not (folder / "image.nii.gz").is_file():
        raise ScanReadError(f"no SCT item '{item_id}' in '{data}'")
    vol, sp = load_internal_volume(folder / "image.nii.gz")
    seq = "T1" if item_id.endswith("t1") else "T2"
    mid = vol.shape[2] // 2
    ks = sorted({int(np.clip(mid + d, 0, vol.shape[2] - 1)) for d in (-6, -3, 0, 3, 6)})
    pics: list[Picture2D] = []
    if item_id == "sct-example-t2":
        c7 = int(c7_row(folder))
        n = vol.shape[0]
        for ap in (0.5, 1.0):  # the stored A→P size (1 mm) looks stretched; ~0.5 mm fits the anatomy
            for k in ks:
                s = vol[:, :, k]
                tag = f"{item_id}:sag{k}:ap{ap}"
                pics.append(Picture2D(f"{tag}:top-to-C7", s[:c7], (sp[0], ap), "sagittal", seq, True, "cervical"))
                pics.append(Picture2D(f"{tag}:full", s, (sp[0], ap), "sagittal", seq, True, "cervical"))
                pics.append(
                    Picture2D(f"{tag}:below-C7", s[min(n - 40, c7 + 10) :], (sp[0], ap), "sagittal", seq, False,
                              "cervical")
                )  # fmt: skip
            for r in (int(0.3 * c7), int(0.6 * c7), int(0.9 * c7)):
                pics.append(Picture2D(f"{item_id}:ax{r}:ap{ap}", vol[r], (ap, sp[2]), "axial", seq, True, "cervical"))
    else:
        for k in ks:
            pics.append(Picture2D(f"{item_id}:sag{k}", vol[:, :, k], (sp[0], sp[1]), "sagittal", seq, True, "cervical"))
        for f in (0.3, 0.5, 0.7):
            r = int(f * (vol.shape[0] - 1))
            pics.append(Picture2D(f"{item_id}:ax{r}", vol[r], (sp[1], sp[2]), "axial", seq, True, "cervical"))
    return pics


# Axial and coronal cuts of the shared volumes are narrow strips (their left-right extent is 40-77 mm), while real
# axial and coronal pictures are about as wide as they are tall: a recogniser can learn the strip, not the anatomy.
# The widened view reflects a picture's content sideways to this width, so that the width says nothing.
WIDEN_MM = 260.0


def augmented(pic: Picture2D, rng: np.random.Generator, how: str) -> Picture2D:
    """A cropped (random 45–90 % of the height, 50–100 % of the width), mirrored or widened (:func:`widened`) copy
    of ``pic``."""
    img = pic.image
    if how == "crop":
        h, w = img.shape
        hh, ww = max(8, int(h * rng.uniform(0.45, 0.9))), max(8, int(w * rng.uniform(0.5, 1.0)))
        r0, c0 = int(rng.integers(0, h - hh + 1)), int(rng.integers(0, w - ww + 1))
        img = img[r0 : r0 + hh, c0 : c0 + ww]
    elif how == "mirror":
        img = img[:, ::-1] if pic.plane != "axial" else img[::-1, ::-1]
    elif how == "widen":  # the picture's content reflected sideways until it is WIDEN_MM wide (see WIDEN_MM)
        img = widened(img, round(WIDEN_MM / pic.spacing[1]))
    else:
        raise ConfigError(f"unknown augmentation '{how}'")
    return Picture2D(f"{pic.id}:{how}", np.ascontiguousarray(img), pic.spacing, pic.plane, pic.sequence,
                     pic.cervical, pic.source)  # fmt: skip


# --- scoring ---------------------------------------------------------------------------------------------------------
@dataclass
class Scores:
    spider_sequence: Tally = field(default_factory=Tally)
    spider_sequence_t1: Tally = field(default_factory=Tally)
    spider_sequence_t2: Tally = field(default_factory=Tally)
    volume_sequence: Tally = field(default_factory=Tally)
    plane: dict[str, Tally] = field(default_factory=dict)
    lumbar_called_cervical: Tally = field(default_factory=Tally)  # "correct" = called cervical (a false positive)

    def add(self, pic: Picture2D, r: ImageRecognition) -> None:
        if pic.sequence is not None:
            if pic.source == "spider":
                self.spider_sequence.add(r.sequence == pic.sequence, f"{pic.id}: {r.sequence}")
                t = self.spider_sequence_t1 if pic.sequence == "T1" else self.spider_sequence_t2
                t.add(r.sequence == pic.sequence, f"{pic.id}: {r.sequence}")
            else:
                self.volume_sequence.add(r.sequence == pic.sequence, f"{pic.id}: {r.sequence}")
        t = self.plane.setdefault(pic.plane, Tally())
        t.add(r.plane == pic.plane, f"{pic.id}: {r.plane}")
        if pic.cervical is False:
            self.lumbar_called_cervical.add(r.cervical, f"{pic.id}: p={r.cervical_probability:.2f}")

    def plane_total(self) -> Tally:
        out = Tally()
        for t in self.plane.values():
            out.correct += t.correct
            out.total += t.total
            out.wrong += t.wrong
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "sequence_spider": self.spider_sequence.to_dict(),
            "sequence_spider_t1": self.spider_sequence_t1.to_dict(),
            "sequence_spider_t2": self.spider_sequence_t2.to_dict(),
            "sequence_volume_cuts": self.volume_sequence.to_dict(),
            "plane": self.plane_total().to_dict(),
            "plane_by_truth": {k: v.to_dict() for k, v in self.plane.items()},
            "lumbar_called_cervical": self.lumbar_called_cervical.to_dict(),
        }

    def lines(self, title: str) -> list[str]:
        out = [f"{title}:"]
        out.append(
            f"  sequence, SPIDER slices   {self.spider_sequence.text()}   T1 {self.spider_sequence_t1.text()}, "
            f"T2 {self.spider_sequence_t2.text()}"
        )
        out.append(f"  sequence, volume cuts     {self.volume_sequence.text()}")
        by = ", ".join(f"{k} {v.text()}" for k, v in self.plane.items())
        out.append(f"  plane                     {self.plane_total().text()}   ({by})")
        out.append(f"  lumbar called cervical    {self.lumbar_called_cervical.text()}")
        return out


def _item_of(picture_id: str) -> str:
    """The index item of a picture: ``fcs-vb2-01:axial@0.5`` → ``fcs-vb2-01``, ``spider-7-t1`` → ``spider-7``."""
    item = picture_id.split(":")[0]
    return item[: -len("-t1")] if item.startswith("spider-") and item.endswith("-t1") else item


def _score(pics: list[Picture2D], run: Callable[[Picture2D], ImageRecognition]) -> Scores:
    s = Scores()
    for p in pics:
        s.add(p, run(p))
    return s


def evaluate_recognition(
    data: str | Path,
    split: str = "val",
    model: str | Path | None = None,
    lopo: dict[str, str] | None = None,
    seed: int = 0,
    ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """All figures of the module doc as a JSON-ready dict (``model``: a model folder; default built-in). ``ids``
    limits the pictures to these items (e.g. a fold of train left out of training; a SPIDER T1 slice follows its
    patient's item)."""
    data = Path(data)
    if split not in ("train", "val"):
        raise ConfigError(f"--split must be 'train' or 'val', got '{split}'")
    t0 = time.perf_counter()
    pics = split_pictures(data, split)
    if ids is not None:
        pics = [p for p in pics if _item_of(p.id) in set(ids)]
    if not pics:
        raise ScanReadError(f"no {split} pictures in '{data}'" + (" among the given ids" if ids is not None else ""))
    times: list[float] = []

    def run(p: Picture2D, m: str | Path | None = model) -> ImageRecognition:
        t = time.perf_counter()
        r = recognise_image(p.image, p.spacing, m)
        times.append(time.perf_counter() - t)
        return r

    base = _score(pics, run)
    rng = np.random.default_rng(seed)
    crop = _score([augmented(p, rng, "crop") for p in pics], run)
    mirror = _score([augmented(p, rng, "mirror") for p in pics], run)
    widen = _score([augmented(p, rng, "widen") for p in pics], run)
    result: dict[str, Any] = {
        "split": split,
        "model": str(model) if model is not None else "built-in recognizer",
        "pictures": {
            "spider": sum(p.source == "spider" for p in pics),
            "volume_cuts": sum(p.source == "volume" for p in pics),
        },
        "as_stored": base.to_dict(),
        "cropped": crop.to_dict(),
        "mirrored": mirror.to_dict(),
        "widened": widen.to_dict(),
        "lines": base.lines(f"{split}, as stored")
        + crop.lines(f"{split}, cropped (random 45-90 % of the height)")
        + mirror.lines(f"{split}, mirrored (anterior<->posterior)")
        + widen.lines(f"{split}, widened to {WIDEN_MM:.0f} mm (content reflected sideways)"),
    }

    def cervical(item_id: str, folder: str | Path | None) -> tuple[Tally, Tally]:
        pos, neg = Tally(), Tally()
        for p in cervical_pictures(data, item_id):
            r = run(p, folder)
            t = pos if p.cervical else neg
            t.add(r.cervical == bool(p.cervical), f"{p.id}: p={r.cervical_probability:.2f}")
        return pos, neg

    fit: dict[str, Any] = {}
    for item_id in CERVICAL_ITEMS:
        if (data / "sct" / item_id / "image.nii.gz").is_file():
            pos, neg = cervical(item_id, model)
            fit[item_id] = {"cervical_called_cervical": pos.to_dict(), "below_c7_called_not": neg.to_dict()}
            below = f"; crops below C7 called not cervical {neg.text()}" if neg.total else ""
            result["lines"].append(
                f"cervical, training fit (seen in training, not a validation), {item_id}: cervical crops called "
                f"cervical {pos.text()}{below}"
            )
    result["cervical_training_fit"] = fit
    if lopo:
        cerv: dict[str, Any] = {}
        for item_id, folder in lopo.items():
            pos, neg = cervical(item_id, folder)
            cerv[item_id] = {
                "model": folder,
                "trained_by": _training_command(folder),
                "cervical_called_cervical": pos.to_dict(),
                "below_c7_called_not": neg.to_dict(),
            }
            below = f"; crops below C7 called not cervical {neg.text()}" if neg.total else ""
            result["lines"].append(
                f"cervical, leave-one-patient-out, {item_id} (model {folder}): cervical crops called cervical "
                f"{pos.text()}{below}"
            )
        result["cervical_leave_one_patient_out"] = cerv
    ms = np.asarray(times) * 1000.0
    result["inference_ms"] = {"median": round(float(np.median(ms)), 1), "p95": round(float(np.percentile(ms, 95)), 1)}
    result["lines"].append(
        f"inference per picture: median {result['inference_ms']['median']} ms, 95th percentile "
        f"{result['inference_ms']['p95']} ms; evaluated in {time.perf_counter() - t0:.0f} s"
    )
    seq = base.spider_sequence.accuracy or 0.0
    fp = base.lumbar_called_cervical.accuracy or 0.0
    result["targets"] = {
        "spider_sequence_accuracy": {"value": round(seq, 4), "target": ">= 0.98", "met": seq >= 0.98},
        "lumbar_called_cervical": {"value": round(fp, 4), "target": "<= 0.02", "met": fp <= 0.02},
    }
    return result


def _training_command(folder: str | Path) -> str | None:
    """The command that trained the model in ``folder``, from its card (None where it does not say)."""
    card = Path(folder) / "card.json"
    if not card.is_file():
        return None
    command = json.loads(card.read_text(encoding="utf-8")).get("training", {}).get("command")
    return str(command) if command else None


def _write_card(model: Path, result: dict[str, Any]) -> None:
    card_path = model / "card.json"
    if not card_path.is_file():
        raise ConfigError(f"--card needs a model folder with card.json; '{model}' has none")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    metrics = {k: v for k, v in result.items() if k != "lines"}
    metrics["summary"] = result["lines"]
    card["metrics"] = metrics
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


# --- command line ----------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "openspine evaluate recognition",
        "Plane, sequence and cervical figures of the picture recogniser on the shared data set.",
        _EPILOG,
    )
    p.add_argument("--data", type=Path, required=True, help="the shared data folder (with index.csv)")
    p.add_argument("--split", default="val", choices=("train", "val"))
    p.add_argument("--model", type=Path, default=None, help="model folder (default: the built-in recognizer)")
    p.add_argument("--lopo", nargs="+", action="extend", default=[], metavar="ID=MODEL_DIR",
                   help="cervical item and the model trained without it (repeatable)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the augmented copies")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    p.add_argument("--card", action="store_true", help="write the figures into the model's card.json (val only)")
    p.add_argument("--ids", type=Path, default=None, help="a text file of item ids (one per line): evaluate only these")
    return p


def cli_main(argv: list[str], quiet: bool = False) -> int:
    """``openspine evaluate recognition ARGS``."""
    args = build_parser().parse_args(argv)
    lopo: dict[str, str] = {}
    for item in args.lopo:
        if "=" not in item:
            raise ConfigError(f"--lopo takes ID=MODEL_DIR, got '{item}'")
        k, v = item.split("=", 1)
        lopo[k] = v
    if args.card and args.split != "val":
        raise ConfigError("--card records val figures only; use --split val")
    if args.card and args.ids is not None:
        raise ConfigError("--card records the whole val split; leave out --ids")
    ids = read_ids(args.ids) if args.ids is not None else None
    if args.out is not None:
        from ..writers import check_output_file

        check_output_file(args.out)
    if args.model is not None:
        from ..models import resolve_model

        resolve_model(args.model, "recognizer")  # a missing folder or another kind of model: one line, before work
    result = evaluate_recognition(args.data, args.split, args.model, lopo, args.seed, ids)
    if not quiet:
        print("\n".join(result["lines"]))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({k: v for k, v in result.items()}, indent=2) + "\n", encoding="utf-8")
    if args.card:
        from ..models import builtin_model_dir

        _write_card(args.model if args.model is not None else builtin_model_dir("recognizer"), result)
    return 0
