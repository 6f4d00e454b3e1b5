"""What the survey scripts share: their command line (the shared data folder and the split to survey)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from openspine.training.datasets.volumes import read_index


def survey_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser with ``--data`` (the shared data folder) and ``--split``, described by the script's first doc line;
    the script adds its own options. Warnings of the analyses surveyed are silenced: the survey counts them."""
    logging.disable(logging.WARNING)
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder (with index.csv)")
    ap.add_argument("--split", default="val", choices=("train", "val"))
    return ap


def labelled_volumes(data: Path, split: str) -> list[dict[str, str]]:
    """The ``index.csv`` rows of the split's FastCleverSeg volumes whose masks carry known levels."""
    return [
        r
        for r in read_index(data)
        if r["split"] == split and r["dataset"] == "fastcleverseg" and r["levels_known"] == "true"
    ]


def split_scans(data: Path, split: str) -> list[tuple[str, Path]]:
    """Every scan of the split as (data set, image path): the ``index.csv`` items (``spider``, ``fastcleverseg``,
    ``sct``) and the SPIDER T1 slices of ``spider/t1.csv`` (``spider-t1``)."""
    import csv

    scans = [(r["dataset"], data / r["path"] / r["image"]) for r in read_index(data) if r["split"] == split]
    with (data / "spider" / "t1.csv").open() as f:
        scans += [("spider-t1", data / r["path"] / r["image"]) for r in csv.DictReader(f) if r["split"] == split]
    return scans
