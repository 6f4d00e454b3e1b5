"""Whether two series given separately are of one patient and one study, as far as their files say.

A T1 series given beside the main one (``--t1``) is matched by level; the levels of two lumbar spines are much
alike, so that match cannot tell another patient's T1 from the patient's own (each SPIDER T2 slice beside the
next patient's T1: 26 of 26 val and 107 of 109 train pairs match, ``python scripts/match_series_survey.py --data
../shared/data --split val --other-patients``). What the files name can:
DICOM's PatientID and StudyInstanceUID, and the BIDS ``sub-``/``ses-`` entities of a file name. Where a file names
none of them, nothing ties the two series together beyond the user's word, and the result says so.
"""

from __future__ import annotations

import os

from ..io.roles import OTHER_STUDY
from ..io.sidecar import bids_entities
from ..scan import ScanSource

__all__ = ["OTHER_PATIENT", "why_other_subject"]

OTHER_PATIENT = "another patient"  # how the reason for a series of another patient begins


def _dicom_tag(source: ScanSource, keyword: str) -> str | None:
    if not source.dicom_headers:
        return None
    value = source.dicom_headers[0].get(keyword)
    text = str(value).strip() if value is not None else ""
    return text or None


def _bids_entity(source: ScanSource, entity: str) -> str | None:
    """The BIDS ``subject`` or ``session`` the file's name (or, failing that, its folders) gives, or None."""
    if not source.path:
        return None
    # the absolute path: a file given as 'T1w.nii.gz' from inside sub-02/anat/ is sub-02's as much as by its full path
    return bids_entities(os.path.abspath(source.path)).get(entity)


def why_other_subject(main: ScanSource, other: ScanSource) -> str | None:
    """Why ``other`` is not of the main series' patient or study, by what both files name; None where nothing says
    so (which includes files that name nothing: see :func:`ties`).

    DICOM: a different PatientID (another patient), else a different StudyInstanceUID (another study: the patient
    may have changed between the two). BIDS file names: a different ``sub-`` (another subject), else a different
    ``ses-`` (another session). The identifiers themselves are not repeated: the reason goes into result.json."""
    a, b = _dicom_tag(main, "PatientID"), _dicom_tag(other, "PatientID")
    if a and b and a != b:
        return f"{OTHER_PATIENT} (its PatientID differs from the main series')"
    if main.study_uid and other.study_uid and main.study_uid != other.study_uid:
        return f"{OTHER_STUDY} (its StudyInstanceUID differs from the main series')"
    sub_a, sub_b = _bids_entity(main, "subject"), _bids_entity(other, "subject")
    if sub_a and sub_b and sub_a != sub_b:
        return f"{OTHER_PATIENT} (BIDS subject sub-{sub_b}, the main series' is sub-{sub_a})"
    ses_a, ses_b = _bids_entity(main, "session"), _bids_entity(other, "session")
    if sub_a == sub_b and ses_a and ses_b and ses_a != ses_b:
        return f"{OTHER_STUDY} (BIDS session ses-{ses_b}, the main series' is ses-{ses_a})"
    return None


def ties(main: ScanSource, other: ScanSource) -> str:
    """What in the files says the two series are of one patient and study, in words (for the report and
    result.json): that they name different ones (:func:`why_other_subject`), the DICOM study, the BIDS subject, or
    nothing (the user's word alone)."""
    foreign = why_other_subject(main, other)
    if foreign is not None:
        return f"not the same: {foreign}"
    if main.study_uid and main.study_uid == other.study_uid:
        return "one DICOM study (StudyInstanceUID)"
    sub = _bids_entity(main, "subject")
    if sub and sub == _bids_entity(other, "subject"):
        return f"one BIDS subject (sub-{sub})"
    return "nothing in the files (given as the same patient's: not checked)"
