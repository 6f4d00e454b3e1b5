"""Discs between two bodies the network barely sees: how many the grader would grade, and how often its Pfirrmann
grade agrees with the radiologists' there.

Every SPIDER T2 slice of the split is analysed as stored with the rule that leaves such a disc ungraded switched
off (:func:`openspine.grading.grade._sure_neighbours`; ``openspine evaluate grading`` grades them too), and each
Pfirrmann-graded disc is sorted by its two neighbouring bodies' scores: both below 0.25 (the discs the rule leaves
ungraded), one below, neither. Printed per kind: discs, and discs whose Pfirrmann grade is the radiologists'
(``spider/gradings.csv``; train is in-sample for the grader).

    python scripts/unsure_neighbours_survey.py --data ../shared/data --split train
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from _survey import split_scans, survey_parser  # scripts/_survey.py

import openspine
from openspine.levels import Grading
from openspine.vocabulary import LOW_SCORE


def survey(data: Path, split: str) -> Counter[tuple[str, str]]:
    with open(data / "spider" / "gradings.csv", newline="") as f:
        truth = {(r["Patient"], r["level"]): int(r["Pfirrman grade"]) for r in csv.DictReader(f)}
    import importlib

    # the module, not the function of that name that openspine.grading exports
    grade_module = importlib.import_module("openspine.grading.grade")
    grade_module._sure_neighbours = lambda detection, level: None  # the rule off
    tally: Counter[tuple[str, str]] = Counter()
    for dataset, image in split_scans(data, split):
        if dataset != "spider":
            continue
        result = openspine.analyze(image)
        scores = {v.label: float(v.score) for v in result.vertebrae if v.label is not None}
        for d in result.discs:
            g = d.grades.get(Grading.PFIRRMANN)
            if d.level is None or g is None or not g.available or g.grade is None:
                continue
            low = sum(scores.get(lv, 1.0) < LOW_SCORE for lv in (d.level.upper_vertebra, d.level.lower_vertebra))
            kind = ("neither below", "one below", "both below")[low]
            tally[(kind, "discs")] += 1
            tally[(kind, "as the radiologists")] += truth.get((image.parent.name, d.level.value)) == g.grade
    return tally


def main() -> int:
    args = survey_parser(__doc__).parse_args()
    tally = survey(args.data, args.split)
    for kind in ("neither below", "one below", "both below"):
        print(
            f"{args.split}, neighbours {kind} {LOW_SCORE}: "
            + ", ".join(f"{k[1]} {v}" for k, v in tally.items() if k[0] == kind)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
