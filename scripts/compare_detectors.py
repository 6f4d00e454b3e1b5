"""Whether a retrained detector may replace the built-in one: both measured on one split, the rule applied.

    python scripts/compare_detectors.py runs/det-s2 --data ../shared/data --out runs/compare-s2.json

Both detectors run ``openspine evaluate detection`` (standard figures and the cropped-and-mirrored cases, seed 0,
6 crops) and ``openspine evaluate grading`` (the built-in grader on the discs each detector finds). The candidate
passes only when every line of the rule holds (fixed before the first candidate was measured):

1. labels: the share of robustness cases with every label right rises, and the right-or-flagged share does not fall;
2. detection: the volumes' detection rate and level accuracy, the IVD disc detection and the SPIDER T2 and T1
   lumbar sequences do not fall; the median centroid error grows by at most 0.5 mm;
3. grading: the mean balanced accuracy over the grader's heads falls by at most 1 point.

The SPIDER robustness cases are scored against each detector's own confident whole-slice labelling (SPIDER has no
positions), the volume cases against the masks, so the two case sets differ; the figures on the cases both score are
printed beside the rule (not part of it). Report on val once per candidate; never choose among many on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from openspine.evaluation import detection as ev_detection
from openspine.evaluation import grading as ev_grading

NOT_LOWER = (
    "detection_rate",
    "level_accuracy",
    "disc_detection_rate",
    "spider_lumbar_sequence_complete",
    "spider_t1_lumbar_sequence_complete",
)
MAX_CENTROID_GROWTH_MM = 0.5
MAX_GRADING_LOSS = 0.01


def measure(data: Path, split: str, model: str | None) -> dict[str, Any]:
    """Detection (with the robustness cases) and grading figures of one detector (None: the built-in one)."""
    det = ev_detection.evaluate(data, split, model, variants=6, seed=0)
    grading = ev_grading.evaluate(data, split, n_boot=200, detector=model)
    heads = {n: g["balanced_accuracy"]["value"] for n, g in grading["gradings"].items() if g.get("balanced_accuracy")}
    return {
        "overall": det["overall"],
        "robustness": det["robustness"]["overall"]["all"],
        "robustness_cases": det["robustness"]["cases"],
        "grading_balanced_accuracy": heads,
        "grading_coverage": grading["coverage"],
    }


def verdict(base: dict[str, Any], cand: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(rule, held, figures) for every line of the rule."""
    rb, rc = base["robustness"], cand["robustness"]
    ob, oc = base["overall"], cand["overall"]
    lines = [
        ("every label right rises", rc["every_label_right"] > rb["every_label_right"],
         f"{rb['every_label_right']:.4f} → {rc['every_label_right']:.4f}"),
        ("right or flagged does not fall", rc["right_or_flagged"] >= rb["right_or_flagged"],
         f"{rb['right_or_flagged']:.4f} → {rc['right_or_flagged']:.4f}"),
    ]  # fmt: skip
    for key in NOT_LOWER:
        if ob.get(key) is not None and oc.get(key) is not None:
            lines.append((f"{key} does not fall", oc[key] >= ob[key], f"{ob[key]} → {oc[key]}"))
    grow = oc["centroid_error_mm_median"] - ob["centroid_error_mm_median"]
    lines.append(("median centroid error grows ≤ 0.5 mm", grow <= MAX_CENTROID_GROWTH_MM,
                  f"{ob['centroid_error_mm_median']} → {oc['centroid_error_mm_median']} mm"))  # fmt: skip
    gb, gc = base["grading_balanced_accuracy"], cand["grading_balanced_accuracy"]
    shared = sorted(set(gb) & set(gc))
    mean_b = sum(gb[h] for h in shared) / len(shared)
    mean_c = sum(gc[h] for h in shared) / len(shared)
    lines.append(("mean grading balanced accuracy falls ≤ 1 point", mean_c >= mean_b - MAX_GRADING_LOSS,
                  f"{mean_b:.4f} → {mean_c:.4f} over {len(shared)} heads"))  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("candidate", help="the retrained detector's model folder")
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--split", default="val")
    p.add_argument("--out", type=Path, default=None, help="write both measurements and the verdict as JSON here")
    args = p.parse_args(argv)
    base = measure(args.data, args.split, None)
    cand = measure(args.data, args.split, args.candidate)
    lines = verdict(base, cand)
    for rule, held, figures in lines:
        print(f"{'pass' if held else 'FAIL'}  {rule}: {figures}")
    for head in sorted(base["grading_balanced_accuracy"]):
        b, c = base["grading_balanced_accuracy"][head], cand["grading_balanced_accuracy"].get(head)
        print(f"      grading {head}: {b:.4f} → {c if c is None else round(c, 4)}")
    # not a rule line (the rule was fixed before the first candidate): the like-for-like view beside it
    like = ev_detection.shared_cases(base["robustness_cases"], cand["robustness_cases"])
    for group, f in like.items():
        print(
            f"      on the {f['cases']} {group} cases both score: every label right {f['right'][0]} → "
            f"{f['right'][1]}, right or flagged {f['right_or_flagged'][0]} → {f['right_or_flagged'][1]}"
        )
    passed = all(held for _, held, _ in lines)
    print(f"candidate {'may replace' if passed else 'does not replace'} the built-in detector")
    if args.out is not None:
        record = {"built_in": base, "candidate": cand, "rule": [list(x) for x in lines], "passed": passed,
                  "shared_cases": like}  # fmt: skip
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
