"""The part each series of a DICOM study plays: the main series (graded where its sequence is one the grader reads),
a T1 series read beside it, a STIR series recorded but not read, or not used (with the reason).

The roles themselves are assigned by :func:`openspine.io.dicom.series_roles` from the series' headers; this module
only holds the record and its wording, so that :func:`openspine.io.load_study`, ``openspine info`` and batch
discovery describe a study the same way without importing pydicom.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..scope import ModelScope, modality_reason

__all__ = ["ROLES", "ROLE_MAIN", "ROLE_NOT_USED", "ROLE_STIR", "ROLE_T1", "SeriesRole", "grading_withheld"]

ROLE_MAIN = "main"
ROLE_T1 = "T1"
ROLE_STIR = "STIR"
ROLE_NOT_USED = "not used"
OTHER_STUDY = "another study"  # how the reason of a series of another study than the main series' begins
# how the reason of another station of a whole-spine study begins, by where it lies against the main series
HIGHER_STATION = "another station: it images a higher part"
LOWER_STATION = "another station: it images a lower part"
ROLES: tuple[str, ...] = (ROLE_MAIN, ROLE_T1, ROLE_STIR, ROLE_NOT_USED)

# how a listing names each role (the reason follows for a series that is not used)
_ROLE_TEXT = {
    ROLE_MAIN: "main (graded)",
    ROLE_T1: "T1 (read beside the main series)",
    ROLE_STIR: "STIR (recorded, not read)",
    ROLE_NOT_USED: "not used",
}


@dataclass(frozen=True)
class SeriesRole:
    """The role of one series of a DICOM input.

    Attributes:
        index: the series' position in the list ``openspine info`` shows (also accepted by ``--series``).
        role: ``"main"``, ``"T1"``, ``"STIR"`` or ``"not used"``.
        sequence: the sequence its header names (``"T1"``, ``"T2"``, ``"STIR"``, ``"other"``) or None.
        description: its SeriesDescription ("" when absent).
        series_uid: its SeriesInstanceUID.
        reason: why it plays this role, in words.
        note: what the listing of the main series adds: that the folder holds several studies or patients, of
            which the default choice took this one; of the T1 series, whether it was taken before or after contrast
            agent where the study holds both kinds ("" when there is nothing to add).
        modality: its Modality (``"MR"``, ``"CT"`` …) or None; a main series of a modality no model reads is listed
            as not analysed (:func:`openspine.scope.modality_reason`).
        plane: its plane by the header's geometry (``"sagittal"``, ``"axial"`` …) or None; a main series that is not
            sagittal is listed as not analysed (``analyze`` refuses it, exit status 3).
        pick: what ``--series`` takes to read this series: its SeriesNumber where no other series has that number,
            else its SeriesInstanceUID.
    """

    index: int
    role: str
    sequence: str | None
    description: str
    series_uid: str
    reason: str
    note: str = ""
    modality: str | None = None
    plane: str | None = None
    pick: str = ""

    @property
    def read(self) -> bool:
        """Whether the series' pixels are read (the main series and the T1 series)."""
        return self.role in (ROLE_MAIN, ROLE_T1)

    def text(self) -> str:
        """The role in words, e.g. ``main (graded)``, ``main (not graded: STIR)`` or ``not used: not sagittal
        (axial)``. Whether the main series is graded follows the built-in grader's scope, as ``analyze`` does
        (:func:`grading_withheld`), with the note that the folder holds several studies where it does."""
        if self.role == ROLE_MAIN:
            if modality_reason(self.modality) is not None:
                main = _not_mr_text(self.modality)
            elif self.plane not in (None, "sagittal"):
                main = f"main (not analysable: {self.plane}, not sagittal)"
            else:
                main = _main_text(self.sequence)
            return f"{main}; {self.note}: choose with --series" if self.note else main
        words = _ROLE_TEXT.get(self.role, self.role)
        if self.role == ROLE_T1 and self.note:  # taken before or after contrast agent
            return f"{words}; {self.note}"
        return f"{words}: {self.reason}" if self.role == ROLE_NOT_USED else words


def _not_mr_text(modality: str | None) -> str:
    return f"main (not analysed: {(modality or '').strip().upper()}, not MR)"


def _main_text(sequence: str | None) -> str:
    scope = _grader_scope()
    if scope is None or scope.sequences is None:
        return _ROLE_TEXT[ROLE_MAIN]
    if sequence is None:  # the image's reading decides, as in analyze
        return f"main (graded if the image reads as {'/'.join(sorted(scope.sequences))})"
    if grading_withheld(sequence) is None:  # analyze checks a header's word against the image (a T1 named "T2")
        return "main (graded if the image agrees)"
    return f"main (not graded: {sequence if sequence != 'other' else 'other sequence'})"


def grading_withheld(sequence: str | None) -> str | None:
    """Why ``analyze`` withholds the grades of a main series whose header says ``sequence`` (the built-in grader's
    card scope: :meth:`openspine.scope.ModelScope.why_not_sequence`), or None where it grades it or the image will
    decide (no sequence in the header)."""
    scope = _grader_scope()
    if scope is None or sequence is None:
        return None
    return scope.why_not_sequence({"value": sequence, "source": "header"})


@lru_cache(maxsize=1)
def _grader_scope() -> ModelScope | None:
    """The scope on the built-in grader's card (the grader ``analyze`` uses by default); None where none is
    installed. The card is read (and its weights checked), no model is loaded."""
    from ..errors import ModelError
    from ..models.registry import builtin_model_dir, read_card

    try:
        return ModelScope.from_card(read_card(builtin_model_dir("grader")).data)
    except ModelError:
        return None
