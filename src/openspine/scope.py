"""What a model may answer: the scope its card declares, what the scan shows, and what is withheld outside it.

A model card's ``scope`` lists the sequences, planes, regions and levels the model was trained and validated on::

    "scope": {"sequences": ["T2"], "planes": ["sagittal"], "regions": ["thoracic", "lumbar"],
              "levels": ["T9-T10", …, "L5-S1"], "basis": "what the lists rest on"}

A card may also bound the pixel size (``scope.max_pixel_spacing_mm``): an image whose in-plane pixels are coarser
holds less detail than any the model learnt from, and its answers are withheld.

A grader's card may also give ``scope.heads``: per head (grading) its own ``sequences`` and ``levels`` (a fine-tuned
head answers only on the sequences and levels it was trained on, while the base model's heads keep theirs); the
top-level lists are then the union, and a head's grade outside its own scope is withheld.
A missing key (or a card without ``scope``, e.g. a user's own model) restricts nothing. Outside the scope the
analysis withholds the answer and says why: a label becomes ``None`` with a note on the body, a grade becomes
unavailable with a note, and a flag names what was withheld. These functions are pure (no model, no files).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from .levels import DiscLevel, Level
from .results import Disc, Vertebra
from .vocabulary import (  # shared with the outputs; scope.LOW_SCORE stays valid
    FRONT_TO_BACK,
    LOW_SCORE,
    RIGHT_WAY_ROUND,
    against_header_text,
    describe_source,
    score_text,
)

REGION_ORDER = ("cervical", "thoracic", "lumbar", "sacral")
# below this probability the image's own sequence call is not used (the sequence stays unknown)
MIN_IMAGE_SEQUENCE_PROBABILITY = 0.8
# a picture is refused when the image says it is not sagittal with at least this probability
MIN_NOT_SAGITTAL_PROBABILITY = 0.5
# at or above this probability the image shows the cervical spine (the detector has never seen one)
MIN_CERVICAL_PROBABILITY = 0.5
# a scan whose labelling is unsure is refused when the orientation recogniser reads a turn with this probability
MIN_TURN_PROBABILITY = 0.9
# below it, a turn that is still the likeliest reading flags the labels (and withholds grades) where the labelling is
# unsure: an upside-down thoraco-lumbar volume read 0.57-0.68 and was labelled upside down with no word (user test).
# `python scripts/orientation_survey.py report runs/orientation-val.pkl`, val, where the labelling is unsure: turned
# views caught 437 of 441 at 0.5 (415 at 0.9; SCT volumes 7 of 7, 0 at 0.9); 3 of 187 views the right way round
# flagged, all crops of SPIDER slices
MIN_TURN_DOUBT_PROBABILITY = 0.5
# a scan with geometry is refused when the image reads as another plane with this probability, where its labelling
# is unsure, or with the second where it is sure (a header naming the wrong axes: docs/reading-scans.md)
MIN_PLANE_CONFLICT_PROBABILITY = 0.5
MIN_PLANE_CONFLICT_PROBABILITY_SURE = 0.9
# pixel sizes within this share above a card's bound are inside it (read-back rounding, not coarser pixels)
PIXEL_TOLERANCE = 0.005
# why a vertebra's label is withheld (None: it is kept)
LabelReason = Callable[[Level], str | None]


def never_evaluated(card: Mapping[str, Any]) -> bool:
    """Whether a card records no evaluation because its training skipped it (empty metrics beside a training command
    with ``--no-evaluate`` or ``--holdout``: cards written before ``metrics.validated`` was kept)."""
    command = str((card.get("training") or {}).get("command", ""))
    return not card.get("metrics") and ("--no-evaluate" in command or "--holdout" in command)


@dataclass(frozen=True)
class ModelScope:
    """The sequences, planes, regions and levels one model was trained and validated on (None = not declared)."""

    model: str
    sequences: frozenset[str] | None = None
    planes: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    levels: tuple[str, ...] | None = None  # level names in anatomical order (vertebrae or discs)
    heads: Mapping[str, ModelScope] | None = None  # a grader's per-head scope (``scope.heads``), where its card has one
    max_pixel_mm: float | None = None  # the coarsest in-plane pixel spacing it answers for (mm)
    # how a reason names the scope: a fine-tuned head's is what it was trained and validated on
    learnt: str = "trained on"
    # sequences and levels a fine-tuned head was trained on but not validated on, where it does not answer either
    not_validated: frozenset[str] = frozenset()
    vouched: bool = True  # its card vouches for a validation (not --no-validation, nor a base never evaluated)

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> ModelScope:
        s = card.get("scope") or {}
        name = str(card.get("name", "model"))
        # a fine-tuned model's kept heads are its base model's: a reason names that model, not the fine-tuned one
        kept = set((card.get("finetuning") or {}).get("kept_base_heads") or ())
        base = (card.get("base_model") or {}).get("name")
        base_name = f"base model {base}" if base else "base model"
        trained = set((card.get("finetuning") or {}).get("trained_heads") or ())
        metrics = card.get("metrics") or {}
        validated = metrics.get("validated", True) is not False and not never_evaluated(card)
        unvouched_kept = set(metrics.get("kept_heads_not_validated") or ())
        heads = {
            str(h): replace(
                cls._from_dict(base_name if h in kept else name, hs),
                learnt="trained and validated on" if h in trained and validated else "trained on",
                vouched=h not in unvouched_kept if h in kept else validated,
            )
            for h, hs in (s.get("heads") or {}).items()
        } or None
        top = cls._from_dict(name, s)
        # what some head was trained on but not validated on: the model-wide reason says so too (it had said
        # "trained on T2 only" of a head trained on T1 and T2, validated on T2)
        unchecked = top.not_validated.union(*(h.not_validated for h in (heads or {}).values()))
        return replace(top, heads=heads, vouched=validated, not_validated=unchecked)

    @classmethod
    def _from_dict(cls, model: str, s: Mapping[str, Any]) -> ModelScope:
        def names(key: str) -> frozenset[str] | None:
            return frozenset(str(x) for x in s[key]) if s.get(key) is not None else None

        levels = tuple(str(x) for x in s["levels"]) if s.get("levels") is not None else None
        pixel = s.get("max_pixel_spacing_mm")
        max_pixel = float(pixel) if isinstance(pixel, (int, float)) and not isinstance(pixel, bool) else None
        unchecked = names("not_validated") or frozenset()
        return cls(
            model, names("sequences"), names("planes"), names("regions"), levels, max_pixel_mm=max_pixel,
            not_validated=unchecked,
        )  # fmt: skip

    def head_reason(
        self, head: str, sequence: Mapping[str, Any] | None, level: Level | DiscLevel, pixel_mm: float | None = None
    ) -> str | None:
        """Why one head's grade is withheld at this level on a scan of this sequence and in-plane pixel size (None:
        it may answer)."""
        own = (self.heads or {}).get(head)
        if own is None:
            return None
        coarse = own.why_not_pixels(pixel_mm) if pixel_mm is not None else None
        return own.why_not_sequence(sequence) or coarse or own.why_not_level(level)

    def levels_text(self) -> str:
        if self.levels is None:
            return "any"
        if not self.levels:  # a fine-tuned head validated nowhere it was trained
            return "none"
        return self.levels[0] if len(self.levels) == 1 else f"{self.levels[0]} … {self.levels[-1]}"

    def why_not_sequence(self, sequence: Mapping[str, Any] | None) -> str | None:
        """Why a scan of this sequence is outside the scope (None: inside, or nothing at all is known).

        An uncertain image call counts against the scope when its best guess lies outside it: the model cannot
        back an answer on a scan that looks more like another sequence (``--sequence`` settles it).
        """
        seq = sequence or {}
        value, guess = seq.get("value"), seq.get("best_guess")
        if self.sequences is None:
            return None
        trained = "/".join(sorted(self.sequences))
        if value is not None and value not in self.sequences and value in self.not_validated:
            return (
                f"the {self.model} was trained on {value} scans too but validated on {trained} only; this scan is "
                f"{value} ({describe_source(seq)})"
            )
        if value is not None and value not in self.sequences:
            return f"the {self.model} was {self.learnt} {trained} only; this scan is {value} ({describe_source(seq)})"
        if value is None and seq.get("not_read_from"):  # its grey levels are no MR contrast: no guess is quoted
            return (
                f"no sequence is read from the image ({seq['not_read_from']}), and the {self.model} answers only on "
                f"{trained}"
            )
        if value is None and guess is not None and seq.get("contradicted_by") == "image":
            return (
                f"the {seq.get('header_is') or 'header'} says {seq.get('header')} but {against_header_text(seq)}, "
                f"and the {self.model} answers only on a sequence both agree is {trained}; give --sequence if you "
                "know it"
            )
        if value is None and guess is not None and seq.get("contradicted_by") == "csf_over_body":
            return (
                f"the sequence is uncertain: {describe_source(seq)}, and the {self.model} answers only on "
                f"{trained}; give --sequence if you know it{_size_hint(seq)}"
            )
        if value is None and guess is not None and guess not in self.sequences:
            return (
                f"the {self.model} was {self.learnt} {trained} only; the sequence is uncertain and the image looks "
                f"more like {guess} ({describe_source(seq)}); give --sequence if you know it"
            )
        if value is None and guess is not None:
            # an unsure call is no sequence the model was trained on, whichever it leans to: a T1 picture whose call
            # leant T2 at 0.5-0.8 after a gamma or an arrow drawn on it had been graded
            return (
                f"the sequence is uncertain: the image looks more like {guess} but not surely "
                f"({describe_source(seq)}), and the {self.model} answers only on {trained}; give --sequence if you "
                f"know it{_size_hint(seq)}"
            )
        return None

    def why_not_pixels(self, pixel_mm: float) -> str | None:
        """Why an image with in-plane pixels of ``pixel_mm`` (the larger of the two) is outside the scope (None:
        inside, or no bound declared)."""
        # a tilted plane's pixel size reads back from its affine a hair above the stored value (1.25000001 mm)
        if self.max_pixel_mm is None or pixel_mm <= self.max_pixel_mm * (1 + PIXEL_TOLERANCE):
            return None
        return (
            f"the image's pixels ({pixel_mm:.2f} mm) are coarser than the {self.max_pixel_mm:g} mm the {self.model} "
            "answers for (its card's scope): the image holds less detail than the scans it learnt from"
        )

    def why_not_level(self, level: Level | DiscLevel) -> str | None:
        if self.levels is None or level.value in self.levels:
            return None
        if level.value in self.not_validated:
            where = f"validated at {self.levels_text()} only" if self.levels else "validated at no level"
            return f"{level.value}: the {self.model} was trained there but not validated ({where})"
        learnt = "trained and validated on" if self.vouched else "trained on"
        return f"outside the levels the {self.model} was {learnt} ({self.levels_text()})"


# --- what the scan shows ----------------------------------------------------------------------------------------
def decide_sequence(user: str | None, header: str | None, image: Mapping[str, float] | None) -> dict[str, Any]:
    """The scan's sequence: the user's word, else the header's, else the image's when it is clear enough.

    ``image`` holds the recogniser's class probabilities (``{"T1": 0.02, "T2": 0.97, "other": 0.01}``).
    """
    if user and header and header != user:  # kept, and said (a sidecar's T1 overridden had gone unsaid; user test)
        return {"value": user, "source": "user", "header_disagrees": {"value": header}}
    if user:
        return {"value": user, "source": "user"}
    if header:
        return {"value": header, "source": "header"}
    if image:
        best = max(image, key=lambda k: image[k])
        p = float(image[best])
        if p >= MIN_IMAGE_SEQUENCE_PROBABILITY:
            return {"value": best, "source": "image", "probability": round(p, 4)}
        return {"value": None, "source": "image", "probability": round(p, 4), "best_guess": best}  # not sure
    return {"value": None, "source": None}


# the measured fluid-over-bone signal (grading.features.csf_over_body) that settles T1 against T2. On the SPIDER
# train slices (`python scripts/fluid_signal.py --split train`): T1 2nd-98th percentile 0.43-1.30, T2 1.03-3.85;
# no train slice lies on the wrong side of either threshold, and the band between them is left to the image call
CSF_T1_BELOW = 0.85
CSF_T2_ABOVE = 1.45


# the fluid-over-bone signal above which an image's contrast is none the grader saw: on the shared train T2 scans it
# is at most 4.17 (119 SPIDER slices and 14 FastCleverSeg and SCT volumes; `python scripts/fluid_signal.py --data
# ../shared/data --split train --volumes`), a fifth more than that is the bar. A display gamma of 2 on a val T2
# picture made it 6.0 and moved five of six Pfirrmann grades, unflagged; a STIR, its marrow dark, reads so too
CSF_T2_SEEN_MAX = 4.17
CSF_UNSEEN_ABOVE = 5.0


def fluid_too_bright_reason(csf_over_body: float | None) -> str | None:
    """Why no disc is graded where the spinal fluid is brighter over bone than on any T2 scan the grader learnt
    from (:data:`CSF_UNSEEN_ABOVE`): the image's grey levels were changed (a display gamma, a narrow window), it is
    another sequence whose bone is dark (a STIR, a fat-suppressed T2), or it shows a region the grader never saw (an
    upper thoracic window read 8.2); None within the range."""
    if csf_over_body is None or csf_over_body <= CSF_UNSEEN_ABOVE:
        return None
    return (
        f"the spinal fluid is {csf_over_body:.1f} times as bright as the vertebral bodies, more than on any T2 scan "
        f"the grader was trained on (at most {CSF_T2_SEEN_MAX:.1f}): the image's contrast may have been changed (a "
        "display gamma, a narrow window), it is another sequence (a STIR, a fat-suppressed T2), or it shows a part of "
        "the spine the grader never saw"
    )


def fluid_says(csf_over_body: float | None) -> str | None:
    """``"T1"`` or ``"T2"`` where the measured fluid-over-bone signal is clear, else None."""
    if csf_over_body is None:
        return None
    return "T1" if csf_over_body < CSF_T1_BELOW else "T2" if csf_over_body > CSF_T2_ABOVE else None


def check_sequence_by_fluid(
    sequence: Mapping[str, Any], csf_over_body: float | None, image: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """A second witness for an image call: spinal fluid is bright on T2 and dark on T1.

    Only an image call is checked here (a header or the user is checked against the image by
    :func:`check_named_sequence`). A clear measurement settles a call unsure between T1 and T2 (``image``, the
    recogniser's probabilities, gives ``other`` the least: fluid is bright on a water-fat GRE or a STIR too, so it
    cannot tell T2 from those; a tilted water-fat volume read "T2 0.57" had been settled as T2 and graded); one
    that contradicts a sure T1/T2 call makes it unsure, with the measurement as the best guess.
    """
    seq = dict(sequence)
    if seq.get("source") != "image" or csf_over_body is None:
        return seq
    seq["csf_over_body"] = round(float(csf_over_body), 3)
    measured = fluid_says(csf_over_body)
    value = seq.get("value")
    if measured is None or value == "other":
        return seq
    if value is None:
        if image and float(image.get("other", 0.0)) >= min(float(image.get("T1", 0.0)), float(image.get("T2", 0.0))):
            return seq  # unsure whether it is T1, T2 or neither: the fluid cannot settle that
        seq.update(value=measured, settled_by="csf_over_body")
        seq.pop("best_guess", None)
    elif value != measured:
        # the image's own reading kept apart: its probability had been quoted for the fluid's guess ("looks more
        # like T2 but not surely, probability 0.93" where the image read T1 at 0.93; user test)
        image_reading = {"value": value, "probability": seq.pop("probability", None)}
        seq.update(value=None, best_guess=measured, contradicted_by="csf_over_body", image_reading=image_reading)
    return seq


# a T1 or T2 named by the header is set aside when the image reads as the other one with at least this probability
# and the spinal fluid's measured signal does not side with the header (a series description copied from another
# protocol, a header rewritten by hand), or as neither ("other": a water-fat GRE exported as "T2_TSE_SAG"; the fluid
# cannot tell T2 from other): the sequence is then unknown with the image's call as the best guess (which decides
# whether a model of one sequence answers), and the flag says why
MIN_IMAGE_CONFLICT_PROBABILITY = 0.9
# ... or, where it is its likeliest class, with at least this probability (a T1 slice under a T2 header, tilted 15°,
# reads T1 at 0.78-0.88 with fluid between the bars and had been graded). Chosen on the train scans turned 0, ±15
# and 25° (`python scripts/scope_survey.py --data ../shared/data --split train --header truth|swapped --tilt DEG`):
# no T2 scan under its right word reads T1 above 0.56 (one T1 slice under its right word, turned 25°, reads T2 at
# 0.74 and is set aside), while 23 of the 27 T1 slices graded under a T2 word read T1 at 0.74-0.89, or T2 with fluid
# that says T1 (below); the other 4 read T1 at 0.50-0.68, or at 0.78 with fluid that says T2, and are still graded
MIN_IMAGE_LEAN_PROBABILITY = 0.7
_T1_T2_OTHER = {"T1": "T2", "T2": "T1"}
# the recogniser's classes (T1, T2, other) that contradict a sequence the user names: a STIR image reads T2 or
# other, so only a T1 reading contradicts it
_CONTRADICTS_USER = {"T1": ("T2", "other"), "T2": ("T1", "other"), "other": ("T1", "T2"), "STIR": ("T1",)}


def check_named_sequence(
    sequence: Mapping[str, Any], image: Mapping[str, float] | None, csf_over_body: float | None
) -> dict[str, Any]:
    """A T1 or T2 named by the header, or any sequence named by the user, checked against the image recogniser and
    the spinal fluid.

    A header's word is set aside (``value`` None, the contradicting reading as ``best_guess``, ``contradicted_by``
    ``"image"``, the header's word kept as ``header``) by :func:`_image_against_header`; where it stands, the image's
    reading is kept as ``image_reading``. The user's word stands (they may know better), with the image's reading
    recorded beside it (``image_disagrees``) where the image reads clearly as a sequence that contradicts it
    (:func:`_user_against_image`).
    """
    seq = dict(sequence)
    named, source = seq.get("value"), seq.get("source")
    if source == "user" and named in _CONTRADICTS_USER and image:
        return _user_against_image(seq, str(named), image, csf_over_body)
    if source == "header" and image:  # kept for audit, whichever way the check goes
        best, p_best = _likeliest(image)
        seq["image_reading"] = {"value": best, "probability": round(p_best, 4)}
        if csf_over_body is not None:
            seq["csf_over_body"] = round(float(csf_over_body), 3)
    if source != "header" or named not in _T1_T2_OTHER or not image:
        return seq
    against = _image_against_header(str(named), image, csf_over_body)
    if against is None:
        return seq
    seq.update(value=None, header=named, best_guess=against, contradicted_by="image")
    seq["probability"] = round(float(image.get(against, 0.0)), 4)
    if against != "other" and fluid_says(csf_over_body) == against:
        seq["fluid_says"] = against  # the fluid is a witness: said beside the image's reading
    return seq


def _image_against_header(named: str, image: Mapping[str, float], csf_over_body: float | None) -> str | None:
    """The sequence the image reads as against a header that names T1 or T2, or None where the header stands.

    The image reads as neither (``other``: a water-fat GRE exported as "T2_TSE_SAG"; the fluid cannot tell T2 from
    other) with at least :data:`MIN_IMAGE_CONFLICT_PROBABILITY`, or as its likeliest class with at least
    :data:`MIN_IMAGE_LEAN_PROBABILITY` (under a T1 header, unless the fluid is dark as on T1). The image reads as
    the other of T1 and T2 with at least the first bar, or as its likeliest class with at least the second, and the
    spinal fluid's signal (:func:`fluid_says`) does not side with the header. Or the fluid says the other one while
    the image is not sure of the header's word (below :data:`MIN_IMAGE_CONFLICT_PROBABILITY`): without a header
    the fluid makes such a call unsure (:func:`check_sequence_by_fluid`), and under one it had been graded (a T1
    slice read T2 at 0.84, fluid at 0.62 of bone).
    """
    best, p_best = _likeliest(image)
    other, fluid = _T1_T2_OTHER[named], fluid_says(csf_over_body)
    if float(image.get("other", 0.0)) >= MIN_IMAGE_CONFLICT_PROBABILITY:
        return "other"
    # a lean to other under a T1 header stands aside for dark fluid: fluid is bright on a water-fat GRE or a STIR
    if best == "other" and p_best >= MIN_IMAGE_LEAN_PROBABILITY and not (named == "T1" and fluid == "T1"):
        return "other"
    p = float(image.get(other, 0.0))
    leans = p >= MIN_IMAGE_CONFLICT_PROBABILITY or (best == other and p >= MIN_IMAGE_LEAN_PROBABILITY)
    if leans and fluid != named:
        return other
    if fluid == other and float(image.get(named, 0.0)) < MIN_IMAGE_CONFLICT_PROBABILITY:
        # bright fluid against a T1 header says "not T1", not T2 rather than other, where the image leans to other
        return "other" if other == "T2" and best == "other" else other
    return None


def _user_against_image(
    seq: dict[str, Any], named: str, image: Mapping[str, float], csf_over_body: float | None
) -> dict[str, Any]:
    """The user's sequence stands (they may know better); where the image reads clearly as a sequence that
    contradicts it (a water-fat GRE forced to T2, a T2 forced to T1), that reading is recorded beside it
    (``image_disagrees``, said by the ``sequence_note`` flag)."""
    read, p = _likeliest(image)
    if read not in _CONTRADICTS_USER[named] or p < MIN_IMAGE_CONFLICT_PROBABILITY:
        return seq
    if read in _T1_T2_OTHER and fluid_says(csf_over_body) == named:  # the fluid tells T1 from T2, not T2 from other
        return seq
    reading: dict[str, Any] = {"value": read, "probability": round(p, 4)}
    if csf_over_body is not None:
        reading["csf_over_body"] = round(float(csf_over_body), 3)
    seq["image_disagrees"] = reading
    return seq


def why_not_second_series(sequence: Mapping[str, Any], role: str) -> str | None:
    """Why a series read beside the main one as ``role`` (e.g. "T1") may not be graded from, or None when it may:
    its recognised sequence must be ``role`` (a grader that reads T1 and T2 together must not get two T2 crops)."""
    value, source = sequence.get("value"), sequence.get("source")
    if value == role:
        return None
    if value is None and sequence.get("contradicted_by") == "image":  # the header and the image disagree
        said_by = sequence.get("header_is") or "header"
        against = against_header_text(sequence)
        return f"its {said_by} says {sequence.get('header')} but {against}, so it is not read as {role}"
    if value is None:
        guess = sequence.get("best_guess")
        return f"its sequence is not clear from the image (best guess {guess or 'none'}), so it is not read as {role}"
    return f"it reads as {value} ({source}), not {role}"


def decide_plane(fmt: str, image: Mapping[str, float] | None) -> tuple[dict[str, Any], str | None, str | None]:
    """The plane of the analysed image, and (out-of-scope reason, flag).

    A picture (PNG/JPEG) has no geometry: its plane comes from the image, and a picture that looks axial or coronal
    is out of scope. Other formats take the plane from their geometry (they were resliced to sagittal); when the
    image disagrees strongly it is only flagged, since the geometry is the better witness.
    """
    best, p = _likeliest(image)
    if fmt == "image":
        plane: dict[str, Any] = {"value": best, "source": "image", "probability": round(p, 4)}
        if best is not None and best != "sagittal" and p >= MIN_NOT_SAGITTAL_PROBABILITY:
            why = (
                f"the picture looks {best} (probability {p:.2f}), not sagittal: openspine analyses sagittal spine "
                "images (a picture of something else, or one given the wrong pixel size, can read so too; so does a "
                "sagittal picture turned a quarter turn: give it head up)"
            )
            return plane, why, None
        return plane, None, None
    plane = {"value": "sagittal", "source": "geometry"}
    conflict = plane_conflict(image, sure_labelling=True)  # as clear as a sure labelling needs: flagged here
    return plane, None, plane_suspect_flag(*conflict) if conflict is not None else None


def _likeliest(probabilities: Mapping[str, float] | None) -> tuple[str | None, float]:
    """The most probable class of a recogniser's reading and its probability; (None, 0.0) for no reading."""
    if not probabilities:
        return None, 0.0
    best = max(probabilities, key=lambda k: probabilities[k])
    return best, float(probabilities[best])


# an image of fewer distinct intensities is a mask, a label map or a thresholded picture: the shared real scans hold
# 117 or more in a sample of their voxels (8-bit SPIDER slices included), their label maps 6-15. A real slice exported
# with 5 bits (32 grey levels) still passes; fewer levels than that are too coarse to grade discs from anyway
MIN_DISTINCT_VALUES = 32
_VALUES_SAMPLE = 1 << 18  # at most this many voxels counted, evenly spaced through the image


def _even_sample(array: Any, size: int) -> Any:
    """About ``size`` voxels evenly spaced along every axis of ``array`` (a view: no copy of the image)."""
    import numpy as np

    arr = np.asarray(array)
    step = max(1, int((arr.size / size) ** (1 / max(arr.ndim, 1))))
    return arr[(slice(None, None, step),) * arr.ndim]


def few_values_reason(array: Any) -> str | None:
    """Why an image of fewer than :data:`MIN_DISTINCT_VALUES` distinct intensities is not analysed, or None. Counted
    on an even sample of its voxels."""
    import numpy as np

    for size in (4096, _VALUES_SAMPLE):  # a sparse sample through the whole image settles almost every real one
        n = np.unique(_even_sample(array, size)).size
        if n >= MIN_DISTINCT_VALUES:
            return None
    return (
        f"the image holds only {n} distinct intensities: a mask, a label map, a thresholded picture or one exported "
        "with too few grey levels; give the scan itself (an MR image, 8 bits or more)"
    )


# Panels of a figure or a screenshot (T1 | T2) stand apart by a band of one exact value, the figure's background, from
# top to bottom; an MR image's air is noise (or clipped to black, but not between two large parts of anatomy): on
# 2 972 real sagittal slices of the shared data (SPIDER pictures, every slice of every volume) no such band was found.
# A panel is at least this share of the picture's width, and this share of its pixels differ from the band (text in
# a viewer's side bar does not make a panel)
MIN_PANEL_WIDTH_SHARE = 0.2
MIN_PANEL_CONTENT_SHARE = 0.2
# narrower: a line of one value drawn over a slice top to bottom (a cross-reference line, a ruler: 1-3 pixels, 2 for a
# 1-pixel line in a screenshot at twice the resolution), across which the anatomy goes on (code review)
MIN_PANEL_GAP_PX = 4
PANELS_FLAG = "picture_panels"


def panel_ranges(image: Any) -> list[tuple[int, int]]:
    """The column ranges ``[start, stop)`` of the panels that lie side by side in one 2D image (rows along the
    spine): parts set apart by bands of :data:`MIN_PANEL_GAP_PX` or more columns that hold one exact value from top to
    bottom (a figure of several views), each :data:`MIN_PANEL_WIDTH_SHARE` of the width or wider and
    :data:`MIN_PANEL_CONTENT_SHARE` of it differing from the band; [] for an ordinary image (or one panel). A JPEG's
    ringing can blur a narrow band: then [] as well."""
    import numpy as np

    a = np.asarray(image)
    if a.ndim != 2 or a.shape[1] < 2 * MIN_PANEL_GAP_PX + 2:
        return []
    uniform = a.min(axis=0) == a.max(axis=0)
    content = np.flatnonzero(~uniform)
    if content.size == 0:
        return []
    pieces = np.split(content, np.flatnonzero(np.diff(content) > MIN_PANEL_GAP_PX) + 1)
    if len(pieces) < 2:
        return []
    panels = []
    for piece in pieces:
        lo, hi = int(piece[0]), int(piece[-1]) + 1
        bands = [c for c in (lo - 1, hi) if 0 <= c < a.shape[1] and uniform[c]]
        if hi - lo < MIN_PANEL_WIDTH_SHARE * a.shape[1] or not bands:
            continue
        if np.mean(a[:, lo:hi] != a[0, bands[0]]) >= MIN_PANEL_CONTENT_SHARE:
            panels.append((lo, hi))
    return panels if len(panels) >= 2 else []


def picture_panels(image: Any) -> int:
    """How many panels lie side by side in one 2D image (:func:`panel_ranges`); 1 for an ordinary image."""
    return len(panel_ranges(image)) or 1


def panel_of(col: float, ranges: Sequence[tuple[int, int]]) -> int | None:
    """The index of the panel of ``ranges`` that column ``col`` lies in, or None (in a band)."""
    return next((i for i, (lo, hi) in enumerate(ranges) if lo - 0.5 <= col < hi - 0.5), None)


# two bodies in two panels at about one height are one spine's twins (a figure of one patient's series, or one slice
# twice): a spine that a stripe of one value crosses has its neighbours on either side a whole level apart, at least
# 17.5 mm (the cervical pitch; lumbar bodies lie 23-58 mm apart)
SAME_HEIGHT_MM = 12.0


def bodies_in_panels_side_by_side(
    centres: Sequence[tuple[float, float]], ranges: Sequence[tuple[int, int]], row_mm: float
) -> bool:
    """Whether two of the bodies (``centres``: (row, col) in pixels of ``row_mm`` mm along the spine) lie in two
    panels of ``ranges`` at about one height (:data:`SAME_HEIGHT_MM`): a spine in each panel side by side."""
    placed = [(row * row_mm, panel) for row, col in centres if (panel := panel_of(col, ranges)) is not None]
    return any(p != q and abs(a - b) < SAME_HEIGHT_MM for i, (a, p) in enumerate(placed) for b, q in placed[i + 1 :])


def panels_reason(n: int) -> str:
    """Why a picture of ``n`` panels side by side is not analysed."""
    return (
        f"the picture shows {n} panels side by side, set apart by a band of one colour from top to bottom (a figure or "
        "a screenshot of several views): openspine reads one sagittal image of one spine; crop the picture to one panel"
    )


# every model was trained on MR images (the cards' ``scope.modalities``); a DICOM series of another modality is
# refused, one that declares none, "OT" (other) or "SC" (secondary capture: a screenshot of an MR image may be one) is
# left to the image
MODALITIES_ANALYSED = ("MR",)
_UNDECLARED_MODALITIES = frozenset({"", "OT", "SC"})
_MODALITY_NAMES = {
    "CT": "a CT",
    "CR": "a radiograph",
    "DX": "a radiograph",
    "RG": "a radiograph",
    "MG": "a mammogram",
    "RF": "a fluoroscopy image",
    "XA": "an X-ray angiogram",
    "US": "an ultrasound image",
    "PT": "a PET image",
    "NM": "a nuclear medicine image",
}
# a CT in Hounsfield units holds air at -1000 (and padding outside its field of view at -1024 to -3024); an MR
# magnitude image does not, unless stored with an offset of about -1000 (a z-scored or mean-centred NIfTI stays well
# above). An image with at least this share of its voxels at or below AIR_HU is taken for a CT (none of the 324
# shared MR scans has a value below 0)
AIR_HU = -900.0
MIN_AIR_SHARE = 0.02
# ... and bone: a CT of the spine holds values above this (cortical bone is several hundred HU and more), whereas an
# 8-bit MR image stored with an offset of -1000 (its background at -1000 too) stays below -700
BONE_HU = 200.0
# an MR phase (or real-part) image is symmetric about 0: at least this share of its voxels on either side of 0, its
# median near 0 (within this fraction of its largest magnitude), and its lowest value at least this fraction of its
# highest in magnitude. A magnitude image rescaled to [-1, 1] has its range symmetric, but most of its voxels below 0;
# a mean-centred or z-scored one is lopsided: its dark background lies closer to 0 than its bright fat and fluid. None
# of the 324 shared scans, rescaled to [-1, 1] or centred on their mean, reads as either (`python
# scripts/body_geometry_survey.py --data ../shared/data --rescaled`; a bar of 0.7 for the range took one mean-centred
# T1 slice for a phase image)
MIN_PHASE_SIDE_SHARE = 0.4
MAX_PHASE_MEDIAN = 0.1
MIN_PHASE_SYMMETRY = 0.9


def modality_reason(modality: str | None) -> str | None:
    """Why a DICOM series of ``modality`` (its header's Modality) is not analysed, or None (MR, or none declared)."""
    code = (modality or "").strip().upper()
    if code in MODALITIES_ANALYSED or code in _UNDECLARED_MODALITIES:
        return None
    what = _MODALITY_NAMES.get(code, f"modality {code}")
    return (
        f"the series is {what} (DICOM Modality {code}), not MR: openspine's models were trained on MR images only; "
        "give the study's sagittal MR series"
    )


def signed_values_reason(array: Any, declared_mr: bool = False) -> str | None:
    """Why an image whose values are those of a CT in Hounsfield units (:data:`AIR_HU`, :data:`BONE_HU`) or of an MR
    phase image (:data:`MIN_PHASE_SIDE_SHARE`, :data:`MAX_PHASE_MEDIAN`, :data:`MIN_PHASE_SYMMETRY`) is not analysed:
    every model was trained on MR magnitude images. None for any other image. Counted on an even sample of its
    voxels. ``declared_mr``: the header says MR (a DICOM series' Modality), so values like a CT's are an MR stored
    with an offset (a 12-bit image less 1000 holds its background at -1000 and its fat far above 200), which the
    models read as any magnitude image (they scale by percentiles); a phase image is MR too and is still refused."""
    import numpy as np

    raw = np.asarray(array)
    if np.issubdtype(raw.dtype, np.unsignedinteger):  # no value below 0: most scans, answered at once
        return None
    sample = _even_sample(raw, _VALUES_SAMPLE)
    lo = float(sample.min())
    if lo >= 0:
        return None
    sample = np.asarray(sample, dtype=np.float64)
    n = max(sample.size, 1)
    air = float(np.count_nonzero(sample <= AIR_HU)) / n
    hi = float(sample.max())
    negative = float(np.count_nonzero(sample < 0)) / n
    positive = float(np.count_nonzero(sample > 0)) / n
    centred = abs(float(np.median(sample))) <= MAX_PHASE_MEDIAN * max(-lo, hi)
    sides = min(negative, positive) >= MIN_PHASE_SIDE_SHARE and centred
    if air >= MIN_AIR_SHARE and hi >= BONE_HU and not declared_mr:
        seen = f"{100 * air:.0f} % of its voxels are at {AIR_HU:g} or lower (air in a CT is -1000)"
    elif sides and hi > 0 and -lo >= MIN_PHASE_SYMMETRY * hi:
        seen = f"its values are symmetric about 0 ({lo:g} to {hi:g}, {100 * negative:.0f} % negative)"
    else:
        return None
    return (
        f"{seen}: this looks like a CT in Hounsfield units or an MR phase image, not the MR magnitude image "
        "openspine's models were trained on; give the sagittal MR (magnitude) series"
    )


def not_mr_magnitude_reason(scan: Any) -> str | None:
    """Why ``scan`` (a :class:`~openspine.scan.Scan`) is not the MR magnitude image every model was trained on: its
    header names another modality (:func:`modality_reason`) or its values are those of a CT or a phase image
    (:func:`signed_values_reason`); None otherwise."""
    declared_mr = (scan.source.modality or "").strip().upper() in MODALITIES_ANALYSED
    return modality_reason(scan.source.modality) or signed_values_reason(scan.array, declared_mr)


# a picture with this share of the pixels around its spine in colour carries drawings there (outlines, an overlay,
# measurements) that grey conversion turns into intensities the grader would read as anatomy; coloured text in the
# corners of a screenshot lies outside
MAX_COLOUR_SHARE = 0.005
SPINE_MARGIN_MM = 25.0  # around the vertebral bodies' centres: the discs and canal the grader reads


def drawn_in_colour_reason(
    colour_mask: Any, centres: Sequence[tuple[float, float]], spacing_mm: tuple[float, float]
) -> str | None:
    """Why a picture's colour keeps it from being graded, or None: at least :data:`MAX_COLOUR_SHARE` of the pixels
    in the box around the bodies' ``centres`` (row, col pixels; ± :data:`SPINE_MARGIN_MM`) are in colour."""
    if colour_mask is None or not centres:
        return None
    import numpy as np

    rows, cols = np.asarray([c[0] for c in centres]), np.asarray([c[1] for c in centres])
    dr, dc = SPINE_MARGIN_MM / spacing_mm[0], SPINE_MARGIN_MM / spacing_mm[1]
    r0, r1 = max(0, int(rows.min() - dr)), int(np.ceil(rows.max() + dr)) + 1
    c0, c1 = max(0, int(cols.min() - dc)), int(np.ceil(cols.max() + dc)) + 1
    box = np.asarray(colour_mask)[r0:r1, c0:c1]
    share = float(box.mean()) if box.size else 0.0
    if share < MAX_COLOUR_SHARE:
        return None
    return (
        f"{100 * share:.1f} % of the pixels around the spine are in colour (drawings, an overlay, annotations), which "
        "would be read as anatomy; grey MR has none: give the picture without them"
    )


# the midline recogniser (openspine.recognition.midline) was trained on slices this far or farther to one side of the
# midline as off it, and on slices this near or nearer as at it
OFF_MIDLINE_MM = 14.0
AT_MIDLINE_MM = 5.0
# a single sagittal slice that it reads as off the midline this likely or more is not graded (``python
# scripts/midline_survey.py --data ../shared/data --split val``: docs/grading.md, Limits)
OFF_MIDLINE_PROBABILITY = 0.5
# a picture whose pixel size is estimated (--pixel-spacing auto) is read by the midline recogniser at the estimate and
# 1.15 times smaller and larger, the probabilities averaged: the estimate's error runs to 15 % and more, and a val
# slice 25 mm off the midline read 0.44 at 1.12 times its size (0.97 at it). Chosen on train against the highest of
# the three (``python scripts/midline_survey.py --data ../shared/data --split train --scales``, runs of each rule):
# the highest called 2 of 229 mid-sagittal SPIDER slices off (1 at one size) and 29 under a head-to-feet coil
# shading (10); the average 0 and 8; every cut 14 mm or more off the midline is called off by each
ESTIMATE_SCALES = (1 / 1.15, 1.0, 1.15)
# ... nor a slab of slices spanning less than this from left to right: too thin to be sure it holds the midline (a
# slab of three slices 18 mm to one side had been graded); a wider volume's middle slice is found from its bodies
THIN_SLAB_MM = 20.0


def off_midline_reason(probability: float | None) -> str | None:
    """Why a single sagittal slice (or a thin slab, :data:`THIN_SLAB_MM`) is not graded: the midline recogniser
    (:mod:`openspine.recognition.midline`) reads it as cut off the middle of the spine with at least
    :data:`OFF_MIDLINE_PROBABILITY`; None otherwise (or not read). Such a slice cuts the pedicles, facet joints and
    foramina, and the discs' sides: the grader was trained on the middle of the discs and the spinal canal."""
    if probability is None or probability < OFF_MIDLINE_PROBABILITY:
        return None
    return (
        f"the slice looks cut {OFF_MIDLINE_MM:g} mm or more to one side of the midline (probability "
        f"{probability:.2f}), through the pedicles and foramina rather than the middle of the discs and the spinal "
        "canal, where the grader was trained: give the mid-sagittal slice"
    )


def plane_conflict(image: Mapping[str, float] | None, sure_labelling: bool = False) -> tuple[str, float] | None:
    """The plane the image reads as (and its probability) when it is not sagittal with at least
    :data:`MIN_PLANE_CONFLICT_PROBABILITY` (:data:`MIN_PLANE_CONFLICT_PROBABILITY_SURE` where the detector's
    labelling is sure); None otherwise. For a scan whose geometry says sagittal."""
    best, p = _likeliest(image)
    bar = MIN_PLANE_CONFLICT_PROBABILITY_SURE if sure_labelling else MIN_PLANE_CONFLICT_PROBABILITY
    return (best, p) if best is not None and best != "sagittal" and p >= bar else None


def plane_suspect_flag(plane: str, probability: float) -> str:
    """The flag of a scan whose geometry says sagittal and whose image looks ``plane``."""
    return f"plane_suspect: the geometry says sagittal but the image looks {plane} (p {probability:.2f})"


def plane_conflict_reason(plane: str, probability: float, sure_labelling: bool = False) -> str:
    """Why a scan whose header says sagittal but whose image looks ``plane`` is not analysed, and what to do."""
    labelling = "the spine's labelling is unsure as it stands" if not sure_labelling else "the image is clear about it"
    return (
        f"the image looks {plane} (probability {probability:.2f}) although its orientation header makes it sagittal, "
        f"and {labelling}: the header may name the wrong axes or the wrong voxel size (an image resampled to "
        "another shape), or the image shows no spine. Check the file's orientation and spacing (NIfTI affine, "
        "DICOM ImageOrientationPatient and PixelSpacing), or give --trust-orientation (Python: "
        "check_orientation=False)"
    )


def field_of_view(labels: Iterable[Level | None], cervical_probability: float | None) -> dict[str, Any]:
    """The regions in view: cervical from the image (the detector cannot tell), the others from the labels."""
    regions = {lv.region for lv in labels if lv is not None}
    source = "detection"
    if cervical_probability is not None:
        source = "image+detection"
        if cervical_probability >= MIN_CERVICAL_PROBABILITY:
            regions.add("cervical")
    ordered = [r for r in REGION_ORDER if r in regions]
    out: dict[str, Any] = {"value": "+".join(ordered) if ordered else "none", "regions": ordered, "source": source}
    if cervical_probability is not None:
        out["cervical_probability"] = round(float(cervical_probability), 4)
    return out


# --- withholding ------------------------------------------------------------------------------------------------
class GroupedFlags:
    """Flags that name every structure sharing one kind and reason, in first-seen order:
    ``not graded: L3-L4, L4-L5 (not detected)``, ``labels_withheld: T9, T10 (outside …)``."""

    def __init__(self) -> None:
        self._names: dict[tuple[str, str], list[str]] = {}

    def add(self, kind: str, name: str, reason: str) -> None:
        self._names.setdefault((kind, reason), []).append(name)

    def lines(self) -> tuple[str, ...]:
        return tuple(f"{kind}: {', '.join(names)} ({reason})" for (kind, reason), names in self._names.items())


LABEL_WITHHELD_NOTE = "label withheld: "  # a body's note where its label is withheld, then the label and why


def withhold_labels(
    vertebrae: Sequence[Vertebra], discs: Sequence[Disc], reason_of: LabelReason
) -> tuple[list[Vertebra], list[Disc], list[str]]:
    """Remove the labels that ``reason_of(level) -> str | None`` objects to; a disc loses its level when either
    neighbour loses its label. Returns the new records and one flag per withheld reason."""
    new_v: list[Vertebra] = []
    withheld = GroupedFlags()
    gone: set[str] = set()
    for v in vertebrae:
        why = reason_of(v.label) if v.label is not None else None
        if why is None or v.label is None:
            new_v.append(v)
            continue
        withheld.add("labels_withheld", v.label.value, why)
        gone.add(v.label.value)
        new_v.append(replace(v, label=None, note=f"{LABEL_WITHHELD_NOTE}{v.label.value} ({why})"))

    def loses_level(d: Disc) -> bool:
        return d.level is not None and bool({d.level.upper_vertebra.value, d.level.lower_vertebra.value} & gone)

    new_d = [replace(d, level=None) if loses_level(d) else d for d in discs]
    return new_v, new_d, list(withheld.lines())


def detector_label_reason(scope: ModelScope, cervical: bool) -> LabelReason:
    """``reason_of(level)`` for :func:`withhold_labels`: every label when the image shows the cervical spine (which
    the detector never saw: its count would be guesswork), else the levels outside the card's scope."""

    def reason_of(level: Level) -> str | None:
        return (cervical_reason(scope) if cervical else None) or scope.why_not_level(level)

    return reason_of


def cervical_reason(scope: ModelScope, probability: float | None = None) -> str | None:
    """Why no label is given on an image of the cervical spine, when the model's card lacks that region (None:
    the card covers it, or declares no regions); ``probability``: the recogniser's, said where given."""
    if scope.regions is None or "cervical" in scope.regions:
        return None
    trained = "/".join(r for r in REGION_ORDER if r in scope.regions)
    seen = "" if probability is None else f" (probability {probability:.2f})"
    return f"the image shows the cervical spine{seen}; the detector was trained on {trained} scans only"


NO_BODY = "no vertebral body detected"


# an image smaller than this (mm, each side) at its voxel size holds no two vertebral bodies: a size in the wrong unit
SMALL_IMAGE_MM = 60.0


def no_body_reason(
    card: Mapping[str, Any], cervical_probability: float | None, extent_mm: tuple[float, float] | None = None
) -> str:
    """Why a scan in which the detector finds no body is out of scope: the image recogniser's cervical reading, where
    it sees the cervical spine and the detector's card lacks it (a cervical crop is a spine, just not one the detector
    knows), else that the image does not look like a sagittal spine; where its sagittal plane (``extent_mm``) is
    smaller than :data:`SMALL_IMAGE_MM` each way, that its voxel size may be wrong (0.007 mm pixels had been told
    only that the image did not look like a spine; user test)."""
    cervical = cervical_probability is not None and cervical_probability >= MIN_CERVICAL_PROBABILITY
    why = cervical_reason(ModelScope.from_card(card), cervical_probability) if cervical else None
    if why is not None:
        return f"{NO_BODY}: {why}"
    small = extent_mm is not None and max(extent_mm) < SMALL_IMAGE_MM
    size = (
        f"; at its voxel size it is only {extent_mm[0]:.0f} × {extent_mm[1]:.0f} mm: if it is a spine image, check "
        "its voxel size (the header, or --pixel-spacing)"
        if small and extent_mm is not None
        else ""
    )
    return f"{NO_BODY}: this does not look like a sagittal spine image{size}"


def withhold_every_label(
    vertebrae: Sequence[Vertebra], discs: Sequence[Disc], why: str
) -> tuple[list[Vertebra], list[Disc], list[str]]:
    """Every label and disc level removed for one reason (a field of view the detector never saw). Unlike
    :func:`withhold_labels` the notes and the flag do not name the labels the detector guessed: there they are not
    a level one might be off by, but the count of another region (a cervical spine read as T12 … S1)."""
    new_v = [replace(v, label=None, note=f"label withheld ({why})") for v in vertebrae]
    new_d = [replace(d, level=None) for d in discs]
    flags = [f"labels_withheld: every body ({len(new_v)}) and disc ({len(new_d)}) ({why})"] if new_v else []
    return new_v, new_d, flags


# fewer bodies than this are too little of a spine to count levels from: the detector was trained and evaluated on
# views with at least three (every cropped evaluation view keeps three labelled structures whole)
MIN_BODIES_TO_LABEL = 3


def too_few_bodies_reason(n_bodies: int) -> str | None:
    """Why no label is given to a detection of ``n_bodies`` (None: enough, or none at all, which is refused
    elsewhere). On the real views of the shared data (2 343 train and val views, whole, mirrored and cropped) only
    one detection had fewer than three bodies, and its label was wrong; the upper thoracic spine, which the detector
    never saw, gave two bodies read as L5 and S1."""
    if not 0 < n_bodies < MIN_BODIES_TO_LABEL:
        return None
    return (
        f"only {n_bodies} vertebral {'body was' if n_bodies == 1 else 'bodies were'} found: too little of a spine "
        f"to count levels from (at least {MIN_BODIES_TO_LABEL} are needed)"
    )


# consecutive labelled bodies lie this far apart, centre to centre (median over the scan), on a spine the detector
# knows: 22.6 to 57.7 mm over the 317 shared scans it labels (train and val, T2 and T1; `python
# scripts/body_geometry_survey.py --data ../shared/data`). Outside a fifth more than that range either way the bodies
# are not lumbar or lower thoracic ones at their true size: the cervical or upper thoracic spine (16 to 27 mm), or a
# voxel or pixel size that is wrong
MIN_BODY_SPACING_MM = 18.0
MAX_BODY_SPACING_MM = 75.0
BODY_SPACING_SEEN_MM = (22.6, 57.7)


def body_spacing_mm(vertebrae: Sequence[Vertebra]) -> float | None:
    """The median distance (mm) between the centres of consecutive labelled bodies (labels one level apart), or
    None where no two such bodies are found."""
    import numpy as np

    gaps = [
        float(np.linalg.norm(np.subtract(a.centroid_mm, b.centroid_mm)))
        for a, b in pairwise(vertebrae)
        if a.label is not None and b.label is not None and b.label.ordinal - a.label.ordinal == 1
    ]
    return float(np.median(gaps)) if gaps else None


def body_spacing_reason(vertebrae: Sequence[Vertebra]) -> str | None:
    """Why no label is given to bodies that lie closer together or farther apart than the lumbar and lower thoracic
    bodies the detector was trained and validated on (:data:`MIN_BODY_SPACING_MM`, :data:`MAX_BODY_SPACING_MM`), or
    None. An upper thoracic crop had been labelled L4, L5, S1 and graded, its bodies 16 mm apart."""
    gap = body_spacing_mm(vertebrae)
    if gap is None or MIN_BODY_SPACING_MM <= gap <= MAX_BODY_SPACING_MM:
        return None
    if gap < MIN_BODY_SPACING_MM:
        what = "closer together than lumbar or lower thoracic bodies lie (the cervical or upper thoracic spine?)"
        size = "too small"
    else:
        what = "farther apart than lumbar or lower thoracic bodies lie"
        size = "too large"
    return (
        f"the vertebral bodies lie {gap:.0f} mm apart (centre to centre), {what}: in the scans the detector was "
        f"trained and validated on they lie {BODY_SPACING_SEEN_MM[0]:.0f}-{BODY_SPACING_SEEN_MM[1]:.0f} mm apart "
        f"(labels are given at {MIN_BODY_SPACING_MM:.0f}-{MAX_BODY_SPACING_MM:.0f} mm); or the voxel or pixel size "
        f"given is {size}"
    )


# the seen range is widened by this share before a spacing counts as unseen: its ends are single scans, measured to
# the rounding of the figures above
UNSEEN_SPACING_MARGIN = 0.02
# what the unseen-size reasons name as the scale that may be wrong, and what they conclude
SIZE_GIVEN = "the voxel or pixel size given"
SIZE_ESTIMATED = "the pixel size estimated from the bodies (--pixel-spacing gives the picture's own)"
LABELS_MAY_BE_WRONG = "so the labels may be wrong (a level off or more)"


# why a picture whose labels are flagged gets no grade at a pixel size estimated from its bodies
FLAGGED_AT_AN_ESTIMATED_SIZE = (
    "the labels are flagged and the pixel size was estimated from the bodies, which makes any spine's bodies "
    "lumbar-sized (a neck reads alike), so their size cannot back lumbar levels; --pixel-spacing gives the "
    "picture's own"
)


def unseen_spacing_reason(vertebrae: Sequence[Vertebra], size_said: str = SIZE_GIVEN) -> str | None:
    """Why labels are flagged, and no grade given under them, where the bodies lie closer together or farther apart
    than on any shared scan the detector was trained and validated on (:data:`BODY_SPACING_SEEN_MM`), though not so
    far outside that no label is given (:func:`body_spacing_reason`); None inside that range. The network reads the
    level from the anatomy at the scale it was trained on: given a pixel size 10-40 % too small, SPIDER val slices
    and val volumes had been labelled one level off from top to bottom, with no flag (user test, 14 of 55 views at
    a pixel size 0.6 times the true one), and the grader's crops are cut at the wrong scale too. ``size_said`` names
    the scale (:data:`SIZE_GIVEN`, or :data:`SIZE_ESTIMATED` for a picture's estimate); the reason stops before what
    follows from it (:data:`LABELS_MAY_BE_WRONG`)."""
    gap = body_spacing_mm(vertebrae)
    lo, hi = BODY_SPACING_SEEN_MM
    if gap is None or lo * (1 - UNSEEN_SPACING_MARGIN) <= gap <= hi * (1 + UNSEEN_SPACING_MARGIN):
        return None
    below = gap < lo
    shown = (math.floor if below else math.ceil)(gap * 10.0) / 10.0  # never rounded into the range
    how, size, whose = ("closer together", "too small", "a child's") if below else ("farther apart", "too large", "")
    return (
        f"the vertebral bodies lie {shown:.1f} mm apart (centre to centre), {how} than on any scan the detector was "
        f"trained and validated on ({lo:g}-{hi:g} mm): {size_said} may be {size}"
        + (f" (or the spine {whose})" if whose else "")
    )


# the bodies labelled lumbar are this deep front to back (median of their outlines' upper and lower edges on their
# mid slice) on a spine the detector knows: 15.7 mm and more over the 317 shared scans it labels (train and val, T2
# and T1; `python scripts/body_geometry_survey.py --data ../shared/data`), about 30 mm typically. A fifth below the
# smallest, they are no lumbar bodies at their true size: windows of the upper thoracic and lower cervical spine
# read as L2 ... S1 (9-16 mm; `python scripts/thoracic_view_survey.py --data ../shared/data --upper-windows`), or a
# voxel or pixel size that is too small
MIN_LUMBAR_BODY_DEPTH_MM = 13.0
LUMBAR_BODY_DEPTH_SEEN_MM = 15.7
# whether a body is cut by the front or back edge of the image (analysis.front_or_back_cut): its depth is not seen
BodyCut = Callable[[Vertebra], bool]


def lumbar_body_depth_mm(vertebrae: Sequence[Vertebra], cut: BodyCut | None = None) -> float | None:
    """The median front-to-back depth (mm) of the bodies labelled L1 … L5: the mean length of the upper and lower
    edges of each one's outline on its mid slice (or its first outline). None where no such body has an outline.
    Bodies for which ``cut`` says True (their outline reaches the front or back edge of the image: a field of view
    cut through them shows only part of their depth) are left out."""
    import numpy as np

    depths = []
    for v in vertebrae:
        if v.label is None or v.label.region != "lumbar" or not v.outlines or (cut is not None and cut(v)):
            continue
        outline = next((o for o in v.outlines if o.slice_index == v.mid_slice), v.outlines[0])
        c = np.asarray(outline.corners_mm, dtype=float)  # anterior/posterior-superior, posterior/anterior-inferior
        depths.append(0.5 * float(np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3])))
    return float(np.median(depths)) if depths else None


def body_depth_reason(vertebrae: Sequence[Vertebra], cut: BodyCut | None = None) -> str | None:
    """Why no label is given to bodies labelled lumbar that are too small to be lumbar ones
    (:data:`MIN_LUMBAR_BODY_DEPTH_MM`), or None: windows of the upper thoracic spine, which the detector never saw,
    had been labelled L2 … S1 and graded, some without any flag."""
    depth = lumbar_body_depth_mm(vertebrae, cut)
    if depth is None or depth >= MIN_LUMBAR_BODY_DEPTH_MM:
        return None
    shown = math.floor(depth * 10.0) / 10.0  # rounded down: 12.96 mm must not read as the 13 mm bound
    return (
        f"the bodies labelled lumbar are {shown:.1f} mm deep (front to back), smaller than lumbar bodies are (the "
        f"scans the detector was trained and validated on: {LUMBAR_BODY_DEPTH_SEEN_MM:g} mm and more; labels are "
        f"given from {MIN_LUMBAR_BODY_DEPTH_MM:g} mm): the upper thoracic or cervical spine?, or the voxel or pixel "
        "size given is too small"
    )


def unseen_depth_reason(
    vertebrae: Sequence[Vertebra], size_said: str = SIZE_GIVEN, cut: BodyCut | None = None
) -> str | None:
    """Why labels are flagged, and no grade given under them, where the bodies labelled lumbar are shallower than on
    any shared scan the detector was trained and validated on (:data:`LUMBAR_BODY_DEPTH_SEEN_MM`, less
    :data:`UNSEEN_SPACING_MARGIN`); None otherwise. Windows of the upper thoracic spine resampled to 3 mm slices and
    1.2-1.6 mm pixels, their bodies 13.1-14.1 mm deep, had been labelled L3 ... S1 with no flag (the detector missed
    a body between, which brought the spacing back into its seen range). Below :data:`MIN_LUMBAR_BODY_DEPTH_MM` no
    label is given at all (:func:`body_depth_reason`, on the detector's labels); measured on the labels a card lets
    through, such bodies are flagged here too. ``size_said`` as for :func:`unseen_spacing_reason`; ``cut`` as for
    :func:`lumbar_body_depth_mm`."""
    depth = lumbar_body_depth_mm(vertebrae, cut)
    if depth is None or depth >= LUMBAR_BODY_DEPTH_SEEN_MM * (1 - UNSEEN_SPACING_MARGIN):
        return None
    shown = math.floor(depth * 10.0) / 10.0  # never rounded into the seen range
    return (
        f"the bodies labelled lumbar are {shown:.1f} mm deep (front to back), shallower than on any scan the detector "
        f"was trained and validated on ({LUMBAR_BODY_DEPTH_SEEN_MM:g} mm and more): the view may show the upper "
        f"thoracic spine, or {size_said} may be too small (or the spine a child's)"
    )


def unseen_size_reasons(
    vertebrae: Sequence[Vertebra], size_said: str = SIZE_GIVEN, cut: BodyCut | None = None
) -> list[str]:
    """The reasons of :func:`unseen_spacing_reason` and :func:`unseen_depth_reason` that apply."""
    reasons = (unseen_spacing_reason(vertebrae, size_said), unseen_depth_reason(vertebrae, size_said, cut))
    return [why for why in reasons if why]


def labels_in_scope(
    vertebrae: Sequence[Vertebra],
    discs: Sequence[Disc],
    card: Mapping[str, Any],
    cervical_probability: float | None,
    size_said: str = SIZE_GIVEN,
    cut: BodyCut | None = None,
) -> tuple[list[Vertebra], list[Disc], list[str], str | None]:
    """The detector's labels that its ``card`` can back, given the recogniser's cervical probability (None: not
    read), the flags that say what was withheld, and the reason when nothing could be labelled (a cervical field of
    view the card lacks: then the detector's own labelling flags, which speak of its guessed labels, mean nothing
    and no disc can be graded). A ``cervical_field_of_view`` flag comes first when the image shows the cervical
    spine."""
    cervical = cervical_probability is not None and cervical_probability >= MIN_CERVICAL_PROBABILITY
    model_scope = ModelScope.from_card(card)
    nothing = (
        (cervical_reason(model_scope) if cervical else None)
        or too_few_bodies_reason(len(vertebrae))
        or unsure_spine_reason(vertebrae)
        or body_spacing_reason(vertebrae)
        or body_depth_reason(vertebrae, cut)
    )
    if nothing is not None:
        new_v, new_d, flags = withhold_every_label(vertebrae, discs, nothing)
    else:
        new_v, new_d, flags = withhold_labels(vertebrae, discs, detector_label_reason(model_scope, False))
        # the labels given, as the seen ranges were measured
        flags += [
            f"labelling_ambiguous: {why}, {LABELS_MAY_BE_WRONG}" for why in unseen_size_reasons(new_v, size_said, cut)
        ]
    if cervical:
        flags.insert(
            0, f"cervical_field_of_view: the image shows the cervical spine (probability {cervical_probability:.2f})"
        )
    return new_v, new_d, flags, nothing


def low_score_flag(vertebrae: Sequence[Vertebra]) -> str | None:
    low = [(i, v) for i, v in enumerate(vertebrae, 1) if v.score < LOW_SCORE]
    if not low:
        return None
    # an unlabelled body by its place from the top, as the grading's flags name an unlabelled disc ('?' had said
    # nothing outside the overlay's legend), and the label withheld from it, which labels_withheld names (user test)
    names = ", ".join(
        f"{v.label.value if v.label else f'unlabelled body #{i}'} ({_withheld_label_words(v)}{score_text(v.score)})"
        for i, v in low
    )
    return f"low_confidence: {len(low)} of {len(vertebrae)} bodies scored below {LOW_SCORE}: {names}"


def _withheld_label_words(v: Vertebra) -> str:
    """'label T10 withheld, ' for a body whose label the scope withheld (its note, :func:`withhold_labels`), else
    ''."""
    note = v.note or ""
    if not note.startswith(LABEL_WITHHELD_NOTE):
        return ""
    return f"label {note[len(LABEL_WITHHELD_NOTE) :].split(' (')[0]} withheld, "


def unsure_spine_reason(vertebrae: Sequence[Vertebra]) -> str | None:
    """Why a detection is too unsure to label or grade: every body scored below :data:`LOW_SCORE`. Patterns that are
    no spine (a checkerboard, a page of text, a ladder of rectangles) gave such detections, labelled and graded, and
    so did an upper thoracic view (a region the detector never saw: T2–T5 labelled T11 … L2); of the 604 shared real
    scans with bodies two did, neither of them graded (a T1 slice, a cervical crop). None when a body is sure enough,
    or there is none."""
    if not vertebrae or any(v.score >= LOW_SCORE for v in vertebrae):
        return None
    best = max(v.score for v in vertebrae)
    return (
        f"every vertebral body scored below {LOW_SCORE} (best {score_text(best)}): too unsure that this is a spine the "
        "detector knows to label or grade"
    )


def lowest_sure_level(vertebrae: Iterable[Vertebra]) -> Level | None:
    """The level of the lowest labelled body the detector is sure of (score ≥ :data:`LOW_SCORE`); where it is sure of
    none, of the lowest labelled body. None where no body is labelled."""
    labelled = [v for v in vertebrae if v.label is not None]
    sure = [v for v in labelled if v.score >= LOW_SCORE] or labelled
    return max((v.label for v in sure if v.label is not None), key=lambda lv: lv.ordinal, default=None)


def unanchored_levels_reason(sacrum_seen: bool | None, vertebrae: Sequence[Vertebra]) -> str | None:
    """Why no disc is graded where no sacrum anchors the level labels (``sacrum_seen`` False) and the view ends above
    L5: a thoracic or thoraco-lumbar station, a view cut high. Its labels rest on the bodies' appearance alone, far
    from the lumbosacral junction where that reading is surest, and a grade under a level one off is a wrong row in a
    cohort table read by level. A view that reaches L5 (the sacrum just out of view, or only its top in view) is
    graded, flagged (not so a picture read at an estimated pixel size: ``analysis._flagged_at_an_estimated_size``):
    on the cut val views of ``openspine evaluate detection`` its labels were all right in 14 of 16
    cases, against 34 of 46 for views that end above L5. The view reaches L5 only through a body the detector is sure
    of (:func:`lowest_sure_level`): crops of an upper thoracic view had been labelled L2 … L5 and graded, their L4 and
    L5 scored 0.00. Likewise a sacrum anchors the labels only where the body labelled S1 is one the detector is sure
    of: a window of the same view had its S1 (0.00) taken by the level fit alone, L4 and L5 at 0.01 and 0.03, and
    was graded. In the cut and mirrored views of ``openspine evaluate detection`` a labelled S1 scored 0.25 or more
    in 322 of 323 val and 1 410 of 1 417 train cases; of the 8 others, 6 reach L5 through a sure body and 2 are T1
    slices (one labelled wrong). None where a sure sacrum was seen, it is not known, or the view reaches L5."""
    if sacrum_seen is None:
        return None
    s1 = [v for v in vertebrae if v.label == Level.S1]
    if sacrum_seen and (not s1 or any(v.score >= LOW_SCORE for v in s1)):
        return None
    lowest = lowest_sure_level(vertebrae)
    if lowest is None or lowest.ordinal >= Level.L5.ordinal:
        return None
    doubted = [v for v in vertebrae if v.label is not None and v.label.ordinal > lowest.ordinal]
    scores = ", ".join(f"{v.label.value} ({score_text(v.score)})" for v in doubted if v.label)
    where = (
        f"the lowest body scored {LOW_SCORE} or more is labelled {lowest.value}; {scores} below it scored less"
        if doubted
        else f"lowest body labelled {lowest.value}"
    )
    no_sacrum = (
        "no sacrum in view to count the levels from"
        if not sacrum_seen
        else f"the body labelled S1 scored under {LOW_SCORE}: no sacrum to count the levels from"
    )
    ends = "does not surely reach L5" if doubted else "ends above L5"
    return (
        f"{no_sacrum} and the view {ends} ({where}): the labels rest on the bodies' appearance alone and may be a "
        "level off or more, so no grade is given under them"
    )


MISSED_BODY = "vertebra_not_detected"  # the flag of a body missed between two labelled ones (detection.flags)


def missed_body_reason(flags: Iterable[str]) -> str | None:
    """Why no disc is graded where a body was missed between two labelled ones (flag ``vertebra_not_detected``):
    the levels are counted across the gap, and the labels above it hold only where exactly one body is missing
    there. A picture with a metal implant's void over two bodies had two bodies found on the void's rim, every body
    above labelled one level too high, and four discs graded under the wrong levels (user test). In the cut and
    mirrored train views of ``openspine evaluate detection`` the flag was raised in 2 of 1 918 cases, both labelled
    wrong. None where no body was missed."""
    gaps = [f.split(": ", 1)[1] for f in flags if f.startswith(f"{MISSED_BODY}: ")]
    if not gaps:
        return None
    return (
        f"a vertebral body was missed ({'; '.join(gaps)}): the levels are counted across the gap, so the labels may "
        "be a level off, and no grade is given under them"
    )


# the labelling flags of a level fit that no sacrum anchors (the body labelled S1 placed by the fit alone) and of a
# fit whose runner-up, one level off, lies close (detection.flags writes them; their margin follows the second)
S1_BY_FIT = "labelling_ambiguous: the sacrum was not identified"
FIT_MARGIN = "labelling_ambiguous: the level fit is uncertain (margin "
# a fit margin below this is a near tie between two labellings a level apart. In the cut and mirrored train views of
# `openspine evaluate detection` with a labelled S1, both such cases were labelled wrong (margins 0.01 and 0.02; the
# next, 0.06, right), and a held-out-style cut of a train volume (its S2 taken for S1, margin 0.01) had been graded
NEAR_TIE_MARGIN = 0.05


def unsure_fit_reason(flags: Iterable[str]) -> str | None:
    """Why no disc is graded where the labels rest on a level fit that no sacrum anchors (flag ``labelling_ambiguous:
    the sacrum was not identified …``) or on a near tie with the labelling one level off (margin below
    :data:`NEAR_TIE_MARGIN`): a view cut at the thoraco-lumbar junction had its S2 labelled S1 by the fit alone, every
    body one level off, and five discs graded under the wrong levels (user test). In the cut and mirrored train views
    of ``openspine evaluate detection`` with a sacrum seen, 4 of 1 918 cases carried either, 2 of them labelled wrong
    (T1 slices); of the T2 slices as stored one (spider-188, labelled right) loses its grades. None otherwise."""
    for f in flags:
        if f.startswith(S1_BY_FIT):
            return (
                "the sacrum was not identified and the body labelled S1 was placed by the level fit alone: the labels "
                "may be a level off, so no grade is given under them"
            )
        if f.startswith(FIT_MARGIN):
            margin = _leading_number(f[len(FIT_MARGIN) :])
            if margin is not None and margin < NEAR_TIE_MARGIN:
                return (
                    f"the level fit is a near tie (margin {margin:.2f} levels) with the labelling one level off: the "
                    "labels may be a level off, so no grade is given under them"
                )
    return None


def _leading_number(text: str) -> float | None:
    head = text.split(" ", 1)[0]
    try:
        return float(head)
    except ValueError:
        return None


# what an unsure sequence call adds for a picture read at the pixel size its user gave (``pixel_size_given_mm`` in
# the sequence's record): the recogniser reads the image at that size, and a wrong one makes its call less sure (a val
# T2 picture given 0.5 mm, true 0.73: T2 at 0.75, at its own size 0.98; user test), so --sequence alone would grade
# it at the wrong scale
CHECK_PICTURE_SIZE = (
    "or check the pixel size given, {size:.3f} mm: read at a wrong size, an image is recognised less surely"
)


def _size_hint(sequence: Mapping[str, Any]) -> str:
    """' (or check the pixel size given, …)' after "give --sequence if you know it", where the sequence's record
    holds the pixel size a user gave a picture; '' otherwise."""
    size = sequence.get("pixel_size_given_mm")
    return f" ({CHECK_PICTURE_SIZE.format(size=float(size))})" if size is not None else ""


def uncertain_sequence_flag(sequence: Mapping[str, Any]) -> str | None:
    """A flag when the sequence rests on an unsure image call."""
    if sequence.get("contradicted_by") == "image":
        return (
            f"sequence_conflict: the {sequence.get('header_is') or 'header'} says {sequence.get('header')} but "
            f"{against_header_text(sequence)}; the sequence is taken as unknown, so no model that reads one sequence "
            "only answers (no grade from the T2 grader); give --sequence if you know it"
        )
    disagrees, header = sequence.get("image_disagrees"), sequence.get("header_disagrees")
    if disagrees or header:
        said = [f"the {header.get('named_by') or 'header'} says {header['value']}"] if header else []
        if disagrees:
            said.append(f"the image reads as {disagrees['value']} (probability {float(disagrees['probability']):.2f})")
        return f"sequence_note: read as {sequence.get('value')} as asked (--sequence), though {' and '.join(said)}"
    if sequence.get("value") is None and sequence.get("best_guess"):
        if sequence.get("not_read_from"):  # a negative, a picture in colour: its grey levels are no MR contrast
            why = (
                f"not read from the image, whose grey levels are no MR contrast ({sequence['not_read_from']}; as "
                f"it stands it looks most like {sequence['best_guess']})"
            )
        elif sequence.get("contradicted_by"):
            why = describe_source(sequence)  # both witnesses: the image's reading and the fluid's
        else:
            why = (
                f"the image looks most like {sequence['best_guess']} "
                f"(probability {float(sequence.get('probability') or 0):.2f})"
            )
        return f"sequence_uncertain: {why}; give --sequence if you know it{_size_hint(sequence)}"
    return _header_doubt_note(sequence)


# a header's word that stands while the image leans to another sequence with at least this probability is said (not
# set aside: below MIN_IMAGE_LEAN_PROBABILITY the train scans under their right word read so too, turned 25°)
HEADER_DOUBT_PROBABILITY = 0.5


def _header_doubt_note(sequence: Mapping[str, Any]) -> str | None:
    """A note where a header's word stands although the image leans to another sequence (at least
    :data:`HEADER_DOUBT_PROBABILITY`, below the bars that set it aside): a T1 slice under a T2 header, read T1 at
    0.67 with fluid between the bars, had been graded without a word."""
    reading, named = sequence.get("image_reading") or {}, sequence.get("value")
    if sequence.get("source") != "header" or reading.get("value") not in _CONTRADICTS_USER.get(str(named), ()):
        return None  # a STIR image reads T2 or other: only a T1 reading contradicts that header
    p = float(reading.get("probability") or 0)
    if p < HEADER_DOUBT_PROBABILITY:
        return None
    fluid = f"; spinal fluid x{sequence['csf_over_body']} of bone" if sequence.get("csf_over_body") else ""
    said_by = sequence.get("header_is") or "header"
    return (
        f"sequence_note: read as {named} as the {said_by} says, though the image leans to {reading['value']} "
        f"(probability {p:.2f}{fluid}); give --sequence if the {said_by} is wrong"
    )


def wrong_way_round(probabilities: Mapping[str, float], at_least: float = MIN_TURN_PROBABILITY) -> str | None:
    """How the orientation recogniser says the image lies (a turn's name), when it is not the right way round with
    at least ``at_least`` (:data:`MIN_TURN_PROBABILITY`: refused; :data:`MIN_TURN_DOUBT_PROBABILITY`: flagged); None
    otherwise."""
    best, p = _likeliest(probabilities)
    return None if best is None or best == RIGHT_WAY_ROUND or p < at_least else best


def maybe_wrong_way_round_flag(turn: str, probability: float, picture: bool) -> str:
    """The flag of a scan whose labelling is unsure and that may lie ``turn`` (the likeliest reading, below
    :data:`MIN_TURN_PROBABILITY`): its labels may run the wrong way, so no disc is graded under them."""
    what, fix = (
        ("picture", "turn it head up, front of the body on the left")
        if picture
        else ("image", "check the file's orientation (NIfTI affine, DICOM ImageOrientationPatient)")
    )
    # reversed front to back, the labels still run head to feet: what is in doubt is which side is the front
    risk = "front and back may be swapped" if turn == FRONT_TO_BACK else "the labels may be wrong"
    return (
        f"orientation_suspect: the {what} may be {turn} (probability {probability:.2f}) and the spine's labelling is "
        f"unsure as it stands, so {risk} and no disc is graded; {fix}, or give --trust-orientation if it is right"
    )


# bodies further apart than this across the spine (mm, antero-posterior) belong to different columns of bodies
SIDE_BY_SIDE_GAP_MM = 60.0
# two bodies make a column: in a montage the detector may find only two of one spine, and the one label sequence
# then zigzags between the spines; on 2 592 real train and val views no such pair stood beside a spine
MIN_COLUMN_BODIES = 2


def body_columns(centres_mm: Sequence[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Bodies' (along the spine, across it) positions in mm split into columns side by side: a new column starts
    where the gap across the spine exceeds :data:`SIDE_BY_SIDE_GAP_MM`. Each column is ordered along the spine."""
    columns: list[list[tuple[float, float]]] = []
    for c in sorted(centres_mm, key=lambda c: c[1]):
        if columns and c[1] - columns[-1][-1][1] <= SIDE_BY_SIDE_GAP_MM:
            columns[-1].append(c)
        else:
            columns.append([c])
    return [sorted(col) for col in columns]


def spines_side_by_side(centres_mm: Sequence[tuple[float, float]]) -> int:
    """How many columns of vertebral bodies lie side by side: ``centres_mm`` are the bodies' (along the spine,
    across it) positions in mm on the sagittal view. Bodies are split into columns where the gap between their
    across-positions exceeds :data:`SIDE_BY_SIDE_GAP_MM`; a column counts with at least :data:`MIN_COLUMN_BODIES`
    bodies, and columns count together only where their heights overlap (two images of a spine side by side, as in
    a montage or a screenshot of two viewports). One spine, however curved, gives 1 (0 with too few bodies)."""
    columns = body_columns(centres_mm)
    spans = [(min(r for r, _ in col), max(r for r, _ in col)) for col in columns if len(col) >= MIN_COLUMN_BODIES]
    if len(spans) < 2:
        return len(spans)
    overlapping = [a for a in spans if any(b is not a and a[0] < b[1] and b[0] < a[1] for b in spans)]
    return len(overlapping) if overlapping else 1


def side_by_side_reason(n: int, picture: bool) -> str:
    """Why an image with ``n`` spines side by side is not analysed."""
    what = "picture" if picture else "image"
    return (
        f"the {what} shows {n} spines side by side (a montage or a screenshot of several views, or a motion "
        f"artefact's ghost of the spine?): openspine reads one sagittal image of one spine; crop the {what} to one "
        "of them"
    )


# the network's level estimates rise down one spine: on every shared real scan (the items of index.csv and the SPIDER
# T1 slices) they never fell by more than 0.97 levels from one body to the next
# (python scripts/body_geometry_survey.py --data ../shared/data)
STACKED_DROP_LEVELS = 3.0
MIN_STACKED_RUN = 3  # bodies above and below such a fall
# where two pictures meet, the upper picture's sacrum and the lower picture's top margin lie between two
# bodies: a gap of at least this many times the usual spacing. A continuous spine has none there, so a whole-spine
# view whose cervical bodies read as lumbar (the detector never saw a cervical spine) is not taken for two spines.
STACKED_GAP_RATIO = 1.5


def spines_stacked(estimates: Sequence[float], centres_mm: Sequence[tuple[float, float]]) -> int | None:
    """Where a second spine starts below a first one (two images one above the other, as in a montage): the index of
    the first body of the lower run, where the level estimates (top to bottom) fall by at least
    :data:`STACKED_DROP_LEVELS` from one body to the next, across a gap of at least :data:`STACKED_GAP_RATIO` times
    the median distance between the other neighbours (``centres_mm``: the bodies' in-plane positions), and each run
    has at least :data:`MIN_STACKED_RUN` bodies (a false body at either end is no second spine). None for one
    spine."""
    import numpy as np

    p = [float(e) for e in estimates]
    c = np.asarray(centres_mm, dtype=float).reshape(-1, 2)
    gaps = np.linalg.norm(np.diff(c, axis=0), axis=1)
    for i in range(MIN_STACKED_RUN, len(p) - MIN_STACKED_RUN + 1):
        usual = float(np.median(np.delete(gaps, i - 1)))
        if p[i - 1] - p[i] >= STACKED_DROP_LEVELS and gaps[i - 1] >= STACKED_GAP_RATIO * usual:
            return i
    return None


def stacked_reason(above: float, below: float, picture: bool) -> str:
    """Why an image with two spines one above the other is not analysed (``above``, ``below``: the level estimates,
    as ordinals, of the two bodies where the count starts again)."""
    what = "picture" if picture else "image"

    def name(o: float) -> str:
        return Level.from_ordinal(min(max(round(o), 1), Level.S1.ordinal)).value

    return (
        f"the {what} shows two spines one above the other (a montage or a screenshot of several views?): going down, "
        f"the bodies' levels start again, from about {name(above)} to about {name(below)}; openspine reads one "
        f"sagittal image of one spine; crop the {what} to one of them"
    )


def picture_mirrored_flag(probability: float) -> str:
    """The flag of a picture read mirrored because it shows the front of the body on the right."""
    return (
        f"picture_mirrored: the picture shows the front of the body on the right (probability {probability:.2f}); "
        "it was read mirrored, coordinates stay the picture's own pixels (--trust-orientation reads it as shown)"
    )


def wrong_way_round_reason(turn: str, probability: float, picture: bool) -> str:
    """Why a scan stored the wrong way round (``turn``: how it looks, with the recogniser's ``probability``) is not
    analysed, and what to do about it."""
    unsure = f"(probability {probability:.2f}), and the spine's labelling is unsure as it stands"
    if picture:
        return (
            f"the picture looks {turn} {unsure}. A picture is read head up with the front of the body on the left; "
            "turn it so, or give --trust-orientation (Python: check_orientation=False)"
        )
    return (
        f"the image looks {turn} relative to its orientation header {unsure}. Check the file's orientation (NIfTI "
        "affine, DICOM ImageOrientationPatient), or give --trust-orientation (Python: check_orientation=False)"
    )
