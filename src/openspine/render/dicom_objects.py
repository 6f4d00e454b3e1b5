"""DICOM exports for DICOM input (``openspine[dicom]``, highdicom): a Segmentation (SEG) of the vertebral
bodies and discs, and a Comprehensive 3D SR with a TID 1500 measurement report of the levels and gradings.
Both reference the source series, so PACS and viewers show them with the images they came from."""

from __future__ import annotations

import copy
import io
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .._optional import import_optional
from .._version import __version__
from ..errors import OutputError
from ..levels import DiscLevel, Level, grading_name

if TYPE_CHECKING:
    from ..results import AnalysisResult
    from ..scan import SagittalView

PRIVATE_SCHEME = "99OPENSPINE"  # a private coding scheme ("99" prefix) for gradings without a standard code


def dicom_view(result: AnalysisResult) -> SagittalView:
    """The analysed view of a scan read from DICOM, or OutputError."""
    view = result.view
    if view is None or view.input.source.format != "dicom" or not view.input.source.path:
        raise OutputError("DICOM SEG/SR outputs need DICOM input; this scan was not read from DICOM")
    return view


def source_datasets(view: SagittalView) -> list[Any]:
    """The source series' headers, one per slice in the order of the analysed array (copies: the Type 2 attributes
    SEG/SR need are added to them), as kept on the scan when it was read."""
    src = view.input.source
    if len(set(src.extra.get("slice_frames") or [0])) > 1:
        raise OutputError("the source is an enhanced (multi-frame) DICOM series, which SEG/SR do not support yet")
    n_slices = view.input.shape[2]
    if len(src.dicom_headers) != n_slices:
        raise OutputError(
            f"the scan holds {len(src.dicom_headers)} source DICOM headers for {n_slices} slices; DICOM SEG/SR need "
            "the scan as openspine.load_scan read it"
        )
    datasets = [copy.deepcopy(ds) for ds in src.dicom_headers]
    for ds in datasets:  # type-2 attributes some exporters leave out; copied as empty, never invented
        for keyword in TYPE2_COPIED:
            if keyword not in ds:
                setattr(ds, keyword, "")
        if not ds.get("SliceThickness"):
            # Type 2, often absent, but the SEG's pixel measures need a value (highdicom reads it): the slice
            # spacing, from SpacingBetweenSlices or else the positions, is the thickness the segments are drawn at
            ds.SliceThickness = _format_ds(abs(float(ds.get("SpacingBetweenSlices") or 0)) or view.input.spacing[2])
    return datasets


def _format_ds(value: float) -> str:
    """A decimal string (DS) of at most 16 characters."""
    return f"{value:.6g}"


# Patient and study attributes that DICOM objects must carry (type 2: present, may be empty). SEG and SR copy
# them from the source images so they file with the right study; missing ones stay empty.
TYPE2_COPIED = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "AccessionNumber", "StudyID",
)  # fmt: skip


def _vertebra_code(level: Level | None) -> Any:
    from pydicom.sr.codedict import codes

    if level is not None:
        code = getattr(codes.SCT, f"{level.value}Vertebra", None)
        if code is not None:
            return code
        if level is Level.S1:
            return codes.SCT.Sacrum
    return codes.SCT.BoneStructureOfSpine


def _disc_code(level: DiscLevel | None) -> Any:
    from pydicom.sr.codedict import codes

    hd = import_optional("highdicom", "DICOM SEG/SR output")
    if level is not None:
        code = getattr(codes.SCT, level.value.replace("-", "") + "Disc", None)
        if code is not None:
            return code
    return hd.sr.CodedConcept("244598000", "SCT", "Intervertebral disc structure")


def _segmentation(result: AnalysisResult, view: SagittalView, sources: list[Any]) -> bytes:
    hd = import_optional("highdicom", "DICOM SEG output")
    from pydicom.sr.codedict import codes

    from .labelmap import UNKNOWN_DISC_BASE, UNKNOWN_LEVEL_BASE, label_map

    labels = label_map(view, result)  # input grid: [row, column, slice]
    values = [int(v) for v in np.unique(labels) if v != 0]
    if not values:
        raise OutputError("no structure with a usable outline was detected, so there is no segmentation to export")
    algorithm = hd.AlgorithmIdentificationSequence(
        name="openspine", family=codes.cid7162.ArtificialIntelligence, version=__version__
    )
    descriptions = []
    numbers = np.zeros(max(values) + 1, dtype=np.uint16)  # label value → segment number
    for number, value in enumerate(values, start=1):
        if value >= UNKNOWN_LEVEL_BASE:
            name, prop = f"vertebral body {value - UNKNOWN_LEVEL_BASE} (level unknown)", _vertebra_code(None)
        elif value > UNKNOWN_DISC_BASE:
            name, prop = f"disc {value - UNKNOWN_DISC_BASE} (level unknown)", _disc_code(None)
        elif value > 100:
            disc = next(d for d in DiscLevel if d.label_value == value)
            name, prop = f"{disc.value} disc", _disc_code(disc)
        else:
            level = Level.from_label_value(value)
            name, prop = f"{level.value} vertebral body", _vertebra_code(level)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name,
                segmented_property_category=codes.SCT.AnatomicalStructure,
                segmented_property_type=prop,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
            )
        )
        numbers[value] = number
    # label-map style (one plane of segment numbers per slice): a stack of one boolean volume per segment took
    # gigabytes on a 400-slice series
    pixel_array = np.ascontiguousarray(numbers[labels].transpose(2, 0, 1))  # (slice, row, column)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=9001,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="openspine",
        manufacturer_model_name="openspine",
        software_versions=__version__,
        device_serial_number="0",
        series_description="openspine vertebrae and discs",
    )
    return _to_bytes(seg)


def _structured_report(result: AnalysisResult, sources: list[Any]) -> bytes:
    hd = import_optional("highdicom", "DICOM SR output")
    from pydicom.sr.codedict import codes

    def private(value: str, meaning: str) -> Any:
        return hd.sr.CodedConcept(value=value, scheme_designator=PRIVATE_SCHEME, meaning=meaning)

    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="openspine", manufacturer_name="openspine", model_name=__version__
        ),
    )

    def comment(text: str) -> Any:
        return hd.sr.TextContentItem(
            name=codes.DCM.Comment, value=text, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
        )

    def commented(group: Any, notes: list[str]) -> Any:
        """``group`` with each note as a TEXT "Comment" item: why a label or grade is withheld, which a PACS reader
        had seen as a silent gap (user test)."""
        for note in dict.fromkeys(n for n in notes if n):
            group[0].ContentSequence.append(comment(note))
        return group

    groups = []
    for v in result.vertebrae:
        label = v.label.value if v.label else "unknown"
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"vertebra {label}"),
                finding_sites=[hd.sr.FindingSite(anatomic_location=_vertebra_code(v.label))],
                qualitative_evaluations=[
                    hd.sr.QualitativeEvaluation(name=private("level", "Vertebral level"), value=private(label, label))
                ],
                measurements=[
                    hd.sr.Measurement(
                        name=private("score", "Detection confidence"), value=float(v.score), unit=codes.UCUM.NoUnits
                    )
                ]
                if math.isfinite(float(v.score))
                else None,
            )
        )
        commented(groups[-1], [v.note or ""])
    for d in result.discs:
        level = d.level.value if d.level else "unknown"
        evaluations, measurements = [], []
        why_not: dict[str, list[str]] = {}  # a note → the gradings it applies to (one reason withholds most)
        for key, g in d.grades.items():
            if not g.available or g.grade is None:
                why_not.setdefault(g.note or "", []).append(grading_name(key))
                continue
            grading = grading_name(key)
            name = private(grading, grading.replace("_", " "))
            evaluations.append(
                hd.sr.QualitativeEvaluation(name=name, value=private(f"{grading}={g.grade}", f"{grading} {g.grade}"))
            )
            p = float((g.probabilities or {}).get(str(g.grade), 0.0))
            if not math.isfinite(p):
                continue
            measurements.append(
                hd.sr.Measurement(
                    name=private(f"{grading}_p", f"probability of {grading} {g.grade}"),
                    value=p,
                    unit=codes.UCUM.NoUnits,
                )
            )
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"disc {level}"),
                finding_sites=[hd.sr.FindingSite(anatomic_location=_disc_code(d.level))],
                qualitative_evaluations=evaluations or None,
                measurements=measurements or None,
            )
        )
        commented(groups[-1], [d.note or "", *(f"{', '.join(g)}: {n}" for n, g in why_not.items() if n)])
    if not groups:
        raise OutputError("nothing was detected, so there are no measurements to report")
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.LN.MRISpineReport,
        imaging_measurements=groups or None,
        referenced_images=sources,
    )
    # the result's flags, as result.json, the report and the overlay give them: TEXT items of the report's
    # "Qualitative Evaluations" container (TID 1500), as the groups' reasons are TEXT evaluations of theirs (TID 1501)
    if result.flags:
        container = hd.sr.ContainerContentItem(
            name=hd.sr.CodedConcept(value="126010", scheme_designator="DCM", meaning="Qualitative Evaluations"),
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
        container.ContentSequence = [comment(flag) for flag in result.flags]
        report[0].ContentSequence.append(container)
    sr = hd.sr.Comprehensive3DSR(
        evidence=sources,
        content=report,
        series_instance_uid=hd.UID(),
        series_number=9002,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="openspine",
        series_description="openspine levels and gradings",
        # UTF-8: the reasons and flags say "T11 … S1"; without a character set pydicom wrote '?' for '…' (user test)
        specific_character_set="ISO_IR 192",
    )
    sr.ContributingEquipmentSequence = _contributing_models(result)
    return _to_bytes(sr)


def _contributing_models(result: AnalysisResult) -> list[Any]:
    """One ContributingEquipmentSequence item per model that made the result (name, version, sha256), with the
    result's licence notices (e.g. SpineNet's, whose licence covers its outputs) in each description: the SR then
    says what made it and under which terms, as result.json and the report do."""
    from pydicom.dataset import Dataset

    notices = [f for f in result.flags if "licence" in f.lower()]
    items = []
    for m in result.models:
        item = Dataset()
        item.Manufacturer = "openspine"
        item.ManufacturerModelName = m.name[:64]
        item.SoftwareVersions = m.version[:64]
        item.ContributionDescription = "; ".join([f"model {m.name} {m.version}, sha256 {m.sha256}", *notices])[:1024]
        purpose = Dataset()
        purpose.CodeValue, purpose.CodingSchemeDesignator = "109103", "DCM"
        purpose.CodeMeaning = "Modifying Equipment"
        item.PurposeOfReferenceCodeSequence = [purpose]
        items.append(item)
    return items


def _to_bytes(ds: Any) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def segmentation_bytes(result: AnalysisResult) -> bytes:
    """vertebrae_seg.dcm: a DICOM SEG of the vertebral bodies and discs, referencing the source series."""
    import_optional("highdicom", "DICOM SEG output")
    view = dicom_view(result)
    return _segmentation(result, view, source_datasets(view))


def structured_report_bytes(result: AnalysisResult) -> bytes:
    """measurements_sr.dcm: a Comprehensive 3D SR (TID 1500) of the levels and gradings."""
    import_optional("highdicom", "DICOM SR output")
    return _structured_report(result, source_datasets(dicom_view(result)))
