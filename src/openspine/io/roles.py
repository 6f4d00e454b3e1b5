"""The part each series of a DICOM study plays: the main series (graded), a T1 series read beside it, a STIR
series recorded but not read, or not used (with the reason).

The roles themselves are assigned by :func:`openspine.io.dicom.series_roles` from the series' headers; this module
only holds the record and its wording, so that :func:`openspine.io.load_study`, ``openspine info`` and batch
discovery describe a study the same way without importing pydicom.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ROLES", "ROLE_MAIN", "ROLE_NOT_USED", "ROLE_STIR", "ROLE_T1", "SeriesRole"]

ROLE_MAIN = "main"
ROLE_T1 = "T1"
ROLE_STIR = "STIR"
ROLE_NOT_USED = "not used"
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
    """

    index: int
    role: str
    sequence: str | None
    description: str
    series_uid: str
    reason: str

    @property
    def read(self) -> bool:
        """Whether the series' pixels are read (the main series and the T1 series)."""
        return self.role in (ROLE_MAIN, ROLE_T1)

    def text(self) -> str:
        """The role in words, e.g. ``main (graded)`` or ``not used: not sagittal (axial)``."""
        words = _ROLE_TEXT.get(self.role, self.role)
        return f"{words}: {self.reason}" if self.role == ROLE_NOT_USED else words
