"""Words and thresholds that the analysis and every output share, with no dependency on the result records: the
disclaimer, the score below which a body counts as uncertain, and how the source of a recognised fact is worded.

The records (:mod:`openspine.results`), the scope rules (:mod:`openspine.scope`) and the pictures and report
(:mod:`openspine.render`) all import them from here, so none of them needs another for these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

DISCLAIMER = "Research software, not a medical device: not for diagnosis or treatment decisions."

# a vertebral body whose score is below this is drawn as uncertain and counted in a flag
LOW_SCORE = 0.25


def score_text(score: float) -> str:
    """A detection score in two decimals, rounded as the CSV's four are (0.4887 reads 0.49), but down where rounding
    would carry it onto a bar it falls short of: a body scored 0.249 must not read as the 0.25 it is drawn or listed
    as below, nor 0.999 as a certain 1.00."""
    nearest = round(score, 2)
    if score < LOW_SCORE <= nearest or score < 1.0 <= nearest:
        return f"{math.floor(score * 100) / 100:.2f}"
    return f"{nearest:.2f}"


def fluid_decided(item: Mapping[str, Any]) -> bool:
    """Whether a header's word was set aside by the spinal fluid's signal against an image call that leant
    elsewhere (to the header's own word, or to neither T1 nor T2): ``best_guess`` is then the fluid's word, not the
    image's."""
    reading = item.get("image_reading") or {}
    return bool(item.get("fluid_says")) and reading.get("value") not in (None, item.get("best_guess"))


def set_aside_by(item: Mapping[str, Any]) -> str:
    """What set a header's word aside, for short texts: 'image' or, where it decided, 'spinal fluid'."""
    return "spinal fluid" if fluid_decided(item) else "image"


def against_header_text(item: Mapping[str, Any]) -> str:
    """What set a header's sequence aside (``scope.check_named_sequence``): 'the image reads as T1 (probability
    0.78; spinal fluid x1.16 of bone)', or where the fluid's signal decided it against an image call that leant to
    the header 'the spinal fluid's signal (x0.62 of bone) says T1, and the image reads T2 only with probability
    0.84'."""
    guess, reading = item.get("best_guess"), item.get("image_reading") or {}
    fluid = item.get("csf_over_body")
    if fluid_decided(item):
        p, read = float(reading["probability"]), reading["value"]
        how = f"only with probability {p:.2f}" if read == item.get("header") else f"(probability {p:.2f})"
        return f"the spinal fluid's signal (x{fluid} of bone) says {guess}, and the image reads {read} {how}"
    also = f"; spinal fluid x{fluid} of bone" if fluid else ""
    return f"the image reads as {guess} (probability {float(item.get('probability') or 0):.2f}{also})"


def describe_source(item: Mapping[str, Any] | None) -> str:
    """'from the header', 'from the image, probability 0.97', 'given by the user'."""
    if not item:
        return "unknown"
    src = item.get("source")
    if src == "user":
        return "given by the user"
    p = item.get("probability")
    said_by = item.get("header_is") or "header"  # a BIDS file name's word is no header's
    if item.get("contradicted_by") == "image":  # a header's word set aside (scope.check_named_sequence)
        return f"the {said_by} says {item.get('header')}, but {against_header_text(item)}"
    reading = item.get("image_reading")
    if item.get("contradicted_by") == "csf_over_body" and isinstance(reading, Mapping):  # scope.check_sequence_by_fluid
        sure = f", probability {float(reading['probability']):.2f}" if reading.get("probability") is not None else ""
        return (
            f"the image reads {reading.get('value')}{sure}, but the spinal fluid's signal, "
            f"x{float(item['csf_over_body']):.2f} of bone, says {item.get('best_guess')}"
        )
    text = f"from the {said_by if src == 'header' else src}" + (
        f", probability {float(p):.2f}" if p is not None else ""
    )
    if item.get("settled_by") == "csf_over_body":  # an unsure image call that the fluid's signal decided
        text += f"; settled by the spinal fluid's signal, x{float(item['csf_over_body']):.2f} of bone"
    if item.get("why"):  # a header named T2 read as another sequence: what in it says so
        text += f": {item['why']}"
    return text


# the sequence names a result uses (input.sequence.value), from the header, the image or the user
SEQUENCES: tuple[str, ...] = ("T1", "T2", "STIR", "other")
# how an image lies when it is not stored turned (``input.way_round``; the other values name a turn)
RIGHT_WAY_ROUND = "right way round"
# the one turn a picture may show by display convention (the front of the body on the right): read mirrored
FRONT_TO_BACK = "reversed front to back"

# the flag of a T1 series the analysis went without (cannot be read, another patient's, not T1, not matching), with
# the reason
T1_NOT_USED = "t1_not_used"

# the flag of DICOM files under the input left out unread that may have been the series' own (one flag for the
# study: the main series and the T1 read beside it met the same files)
DICOM_FILES_UNREADABLE = "dicom_files_unreadable"

# how the reason of an image read as a negative by its bright edges begins (grading.intensity.inverted_contrast): such
# an image names no sequence from its grey levels (the analysis)
EDGE_NEGATIVE = "the image looks inverted, a negative: "
