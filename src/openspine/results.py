"""Typed, frozen result records and their JSON / CSV / DataFrame forms.

Coordinates are given twice: ``*_voxel`` indexes the input array exactly as the file stores it (for NIfTI:
nibabel's array order; for DICOM: (row, column, slice) with slices sorted along the slice normal) and
``*_mm`` is the RAS+ world position in millimetres.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .levels import DiscLevel, GradingName, Level, grading_key, grading_name
from .vocabulary import DISCLAIMER

if TYPE_CHECKING:
    from .scan import SagittalView, Scan

# 1.5.0: models[].card_sha256; 1.4.0: input.midline; 1.3.0: a disc's "note" (why it was not graded)
SCHEMA_VERSION = "1.5.0"

Vec3 = tuple[float, float, float]


def _spacing(v: Iterable[float]) -> Vec3:
    """Voxel sizes to 0.001 mm, as :func:`vec3`, except those that would round to 0 (six significant digits)."""
    a, b, c = (round(float(x), 3) if abs(float(x)) >= 0.0005 else float(f"{float(x):.6g}") for x in v)
    return (a, b, c)


def _vec(v: Iterable[float]) -> Vec3:
    a, b, c = (round(float(x), 3) for x in v)
    return (a, b, c)


@dataclass(frozen=True)
class SliceOutline:
    """A vertebral body (or disc) seen on one sagittal slice: four corners, in the order
    anterior-superior, posterior-superior, posterior-inferior, anterior-inferior."""

    slice_index: int  # the slice along the input array's axis closest to left-right (see Vertebra.mid_slice)
    corners_voxel: tuple[Vec3, Vec3, Vec3, Vec3]
    corners_mm: tuple[Vec3, Vec3, Vec3, Vec3]

    def to_dict(self) -> dict[str, Any]:
        return {
            "slice_index": self.slice_index,
            "corners_voxel": [list(c) for c in self.corners_voxel],
            "corners_mm": [list(c) for c in self.corners_mm],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SliceOutline:
        return cls(int(d["slice_index"]), _corners(d["corners_voxel"]), _corners(d["corners_mm"]))


@dataclass(frozen=True)
class Vertebra:
    """One vertebral body.

    Attributes:
        label: its level (``Level.L4``; prints as ``L4``), or None where the label is withheld (``note`` says why).
        score: the detector's confidence, 0–1; below 0.25 the body is drawn dashed and named in ``low_confidence``.
        centroid_voxel: its centre as an index of the input array, in the file's own axis order.
        centroid_mm: its centre in RAS+ world millimetres.
        outlines: its four corners on each sagittal slice where it was found.
        mid_slice: the slice of its largest cross-section, as an index along the input array's axis closest to
            left-right (for a resliced oblique volume, of the input voxel nearest the body's centre); the overlay
            draws every body on one slice, the scan's, which may differ.
        note: why the label is withheld, or another caveat on this body (e.g. cut by the side of the volume).
    """

    label: Level | None
    score: float
    centroid_voxel: Vec3
    centroid_mm: Vec3
    outlines: tuple[SliceOutline, ...] = ()
    mid_slice: int | None = None
    note: str | None = None  # why the label is withheld, or another caveat on this body

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label.value if self.label else None,
            "score": round(float(self.score), 4),
            "centroid_voxel": list(self.centroid_voxel),
            "centroid_mm": list(self.centroid_mm),
            "mid_slice": self.mid_slice,
            "outlines": [o.to_dict() for o in self.outlines],
        }
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Vertebra:
        return cls(
            label=Level(d["label"]) if d.get("label") else None,
            score=float(d["score"]),
            centroid_voxel=_vec(d["centroid_voxel"]),
            centroid_mm=_vec(d["centroid_mm"]),
            outlines=tuple(SliceOutline.from_dict(o) for o in d.get("outlines") or ()),
            mid_slice=d.get("mid_slice"),
            note=d.get("note"),
        )


@dataclass(frozen=True)
class Grade:
    """One grading of one disc.

    ``grade`` is the most probable class of ``probabilities`` (which carry the training data's class frequencies);
    ``balanced_grade`` is the class-balanced decision of a head that has one (the class whose probability rose most
    above its training frequency: it finds rare findings more often, at the cost of more false positives), else
    ``None``. ``available`` is False when the grading was not made (not in the model, or withheld); ``note`` says why.
    ``series`` names the series the grade was read from: the main series' sequence (e.g. ``("T2",)``), and the
    second series' where the grader read both (``("T2", "T1")``).
    """

    grade: int | None
    probabilities: Mapping[str, float] | None = None
    available: bool = True
    note: str | None = None
    balanced_grade: int | None = None
    series: tuple[str, ...] | None = None  # the series it was read from, e.g. ("T2",) or ("T2", "T1")

    @property
    def probability(self) -> float | None:
        """The probability of ``grade`` (None when not graded)."""
        if self.grade is None or self.probabilities is None:
            return None
        return float(self.probabilities.get(str(self.grade), 0.0))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "grade": self.grade,
            "balanced_grade": self.balanced_grade,
            "probabilities": {k: round(float(v), 4) for k, v in self.probabilities.items()}
            if self.probabilities is not None
            else None,
            "available": self.available,
        }
        if self.series:
            out["series"] = list(self.series)
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Grade:
        given = d.get("probabilities")
        return cls(
            grade=d.get("grade"),
            probabilities=dict(given) if given is not None else None,
            available=bool(d.get("available", True)),
            note=d.get("note"),
            balanced_grade=d.get("balanced_grade"),
            series=tuple(d["series"]) if d.get("series") else None,
        )


# the note of a disc whose level lies outside the levels asked for (``grade_levels``): left out, not withheld
NOT_ASKED = "not graded: outside the levels asked for"


@dataclass(frozen=True)
class Disc:
    """One intervertebral disc.

    Attributes:
        level: its level (``DiscLevel.L4_L5``; prints as ``L4-L5``), or None between unlabelled bodies.
        centroid_voxel: its centre as an index of the input array, in the file's own axis order.
        centroid_mm: its centre in RAS+ world millimetres.
        outlines: its four corners on each sagittal slice where it was found.
        grades: each grading (``Grading.PFIRRMANN`` or a fine-tuned grading's name) → :class:`Grade`; empty where
            the disc was not graded (``note`` says why).
        note: why a disc without grades was not graded: outside the levels asked for (``grade_levels``), its level
            unknown (between unlabelled bodies), or grading not run for the whole scan (the reason).
    """

    level: DiscLevel | None
    centroid_voxel: Vec3
    centroid_mm: Vec3
    outlines: tuple[SliceOutline, ...] = ()
    grades: Mapping[GradingName, Grade] = field(default_factory=dict)  # built-in Grading or a user's name
    note: str | None = None  # why a disc without grades was not graded

    @property
    def graded(self) -> bool:
        """Whether any grading of the disc was made (a grade given, not withheld)."""
        return any(g.available and g.grade is not None for g in self.grades.values())

    @property
    def asked(self) -> bool:
        """Whether the disc was to be graded: False for a level left out of the levels asked (``grade_levels``)."""
        return not (self.note or "").startswith(NOT_ASKED)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "level": self.level.value if self.level else None,
            "centroid_voxel": list(self.centroid_voxel),
            "centroid_mm": list(self.centroid_mm),
            "outlines": [o.to_dict() for o in self.outlines],
            "grades": {grading_name(g): r.to_dict() for g, r in self.grades.items()},
        }
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Disc:
        return cls(
            level=DiscLevel(d["level"]) if d.get("level") else None,
            centroid_voxel=_vec(d["centroid_voxel"]),
            centroid_mm=_vec(d["centroid_mm"]),
            outlines=tuple(SliceOutline.from_dict(o) for o in d.get("outlines") or ()),
            grades={grading_key(g): Grade.from_dict(r) for g, r in (d.get("grades") or {}).items()},
            note=d.get("note"),
        )


@dataclass(frozen=True)
class ModelInfo:
    """A model that made the result: its card's name and version, the sha256 of its weights file and of its card
    (``card_sha256``: a card edited by hand, its calibration or scope, changes results under the same weights)."""

    name: str
    version: str
    sha256: str
    card_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "version": self.version, "sha256": self.sha256}
        return out | ({"card_sha256": self.card_sha256} if self.card_sha256 else {})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelInfo:
        card = d.get("card_sha256")
        return cls(str(d["name"]), str(d["version"]), str(d["sha256"]), str(card) if card else None)


@dataclass(frozen=True)
class InputInfo:
    """What was read, and what openspine took it to be.

    Attributes:
        path: the file or folder read (None for a Scan made in Python).
        format: ``"dicom"``, ``"nifti"`` or ``"image"`` (PNG/JPEG).
        shape: the input array's shape as the file stores it (a picture: rows, columns, 1).
        spacing_mm: the voxel size in mm along those axes.
        orientation: the direction each array axis points to, RAS+ letters (e.g. ``("I", "P", "R")``).
        affine: the 4×4 voxel → RAS+ mm matrix.
        world_convention: the world coordinates' convention (RAS+ mm, as nibabel).
        series: header fields of the series that identify no patient (description, sequence hint, …).
        sequence: ``{"value": "T1" | "T2" | "STIR" | "other" | None, "source": "header" | "image" | "user", …}``.
        plane: ``{"value": "sagittal" | "axial" | "coronal", "source": "geometry" | "image", …}``.
        field_of_view: ``{"value": "thoracic+lumbar+sacral" | "cervical" | "none" | …, "regions": [...], …}``.
        way_round: whether the image lies the right way round, and how that was told.
        midline: a single slice's (or a thin slab's) probability of lying off the middle of the spine, read by the
            midline recogniser: ``{"off_midline_probability": p, "source": "image", "bar": 0.5}`` (grades withheld at
            the bar or above); None where it was not read (a volume, nothing to grade).
    """

    path: str | None
    format: str
    shape: tuple[int, int, int]
    spacing_mm: Vec3
    orientation: tuple[str, str, str]
    affine: tuple[tuple[float, ...], ...]
    world_convention: str
    series: Mapping[str, Any] = field(default_factory=dict)
    # what the scan shows, recognised (see openspine.scope): {"value": ..., "source": ...} each
    sequence: Mapping[str, Any] | None = None
    plane: Mapping[str, Any] | None = None
    field_of_view: Mapping[str, Any] | None = None
    # whether the image lies the right way round: {"value": ..., "source": "labelling" | "image" | "user", …}
    way_round: Mapping[str, Any] | None = None
    midline: Mapping[str, Any] | None = None

    @classmethod
    def from_scan(cls, scan: Scan) -> InputInfo:
        """What was read: path, format, grid and geometry, and the header fields that identify no patient."""
        from . import geometry

        src = scan.source
        series = {k: v for k, v in src.to_dict().items() if v is not None and k not in ("path", "format")}
        return cls(
            path=src.path,
            format=src.format,
            shape=scan.shape,
            # a voxel below 0.0005 mm keeps its significant digits: three decimals had written 0, and the result that
            # says why such a file was refused failed the schema
            spacing_mm=_spacing(scan.spacing),
            orientation=scan.orientation,
            affine=tuple(tuple(round(float(x), 6) for x in row) for row in scan.affine),
            world_convention=geometry.WORLD_CONVENTION,
            series=series,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "format": self.format,
            "shape": list(self.shape),
            "spacing_mm": list(self.spacing_mm),
            "orientation": "".join(self.orientation),
            "affine": [list(r) for r in self.affine],
            "world_convention": self.world_convention,
            "series": dict(self.series),
        }
        for key in _READINGS:
            value = getattr(self, key)
            if value is not None:
                out[key] = dict(value)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InputInfo:
        a, b, c = (int(n) for n in d["shape"])
        letters = str(d["orientation"])  # e.g. "IPR": the schema allows three letters only
        o1, o2, o3 = letters[0], letters[1], letters[2]
        return cls(
            path=d.get("path"),
            format=str(d["format"]),
            shape=(a, b, c),
            spacing_mm=_spacing(d["spacing_mm"]),
            orientation=(o1, o2, o3),
            affine=tuple(tuple(float(x) for x in row) for row in d["affine"]),
            world_convention=str(d["world_convention"]),
            series=dict(d.get("series") or {}),
            **{k: dict(d[k]) for k in _READINGS if d.get(k) is not None},
        )


_READINGS = ("sequence", "plane", "field_of_view", "way_round", "midline")  # InputInfo's readings of the image


@dataclass(frozen=True)
class SeriesMatchInfo:
    """How the structures of another series were matched to the main series' (see :mod:`openspine.study`)."""

    agree: bool  # the two level sequences agree and something was paired
    shared_frame: bool  # positions compared in world mm (one DICOM frame of reference)
    vertebrae: tuple[str, ...] = ()  # the levels paired
    discs: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    # what in the files says the two series are of one patient and study (openspine.study.identity.ties); None in
    # results written before it was recorded
    same_patient_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "agree": self.agree,
            "shared_frame": self.shared_frame,
            "vertebrae": list(self.vertebrae),
            "discs": list(self.discs),
            "flags": list(self.flags),
        }
        if self.same_patient_by is not None:
            out["same_patient_by"] = self.same_patient_by
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SeriesMatchInfo:
        return cls(
            agree=bool(d["agree"]),
            shared_frame=bool(d["shared_frame"]),
            vertebrae=tuple(d.get("vertebrae") or ()),
            discs=tuple(d.get("discs") or ()),
            flags=tuple(d.get("flags") or ()),
            same_patient_by=d.get("same_patient_by"),
        )


@dataclass(frozen=True)
class OtherSeries:
    """A series of the same study read beside the main one (e.g. the sagittal T1 beside the graded T2): what the
    detector found on it, and how that was matched to the main series. Its discs carry no grades of their own:
    grades read from both series are on the main series' discs (``Grade.series``)."""

    role: str  # e.g. "T1"
    input: InputInfo
    vertebrae: tuple[Vertebra, ...] = ()
    discs: tuple[Disc, ...] = ()
    match: SeriesMatchInfo = field(default_factory=lambda: SeriesMatchInfo(agree=False, shared_frame=False))
    used_for_grading: bool = False
    note: str | None = None  # why it was not used, when it was not
    view: SagittalView | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "input": self.input.to_dict(),
            "vertebrae": [v.to_dict() for v in self.vertebrae],
            "discs": [d.to_dict() for d in self.discs],
            "match": self.match.to_dict(),
            "used_for_grading": self.used_for_grading,
        }
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OtherSeries:
        return cls(
            role=str(d["role"]),
            input=InputInfo.from_dict(d["input"]),
            vertebrae=tuple(Vertebra.from_dict(v) for v in d.get("vertebrae") or ()),
            discs=tuple(Disc.from_dict(x) for x in d.get("discs") or ()),
            match=SeriesMatchInfo.from_dict(d["match"]),
            used_for_grading=bool(d.get("used_for_grading")),
            note=d.get("note"),
        )


@dataclass(frozen=True)
class AnalysisResult:
    """Everything openspine found in one scan: what ``result.json`` holds (:meth:`to_dict`, :meth:`read`).

    Attributes:
        input: what was read and what it was taken to be (:class:`InputInfo`).
        vertebrae: the vertebral bodies, top to bottom (:class:`Vertebra`).
        discs: the discs, top to bottom, with their grades (:class:`Disc`).
        models: the models that made it (name, version, sha256).
        flags: what a reader must know: withheld labels or grades and why, unsure labelling, reading caveats.
        steps_not_run: each step not run (``"grading"``, …) and why.
        parameters: the options of the analysis.
        timings_s: seconds per stage and ``total``, reading to grading (writing the outputs not included).
        created: when it was made (ISO 8601, UTC).
        out_of_scope: why nothing in scope was found (no spine, not sagittal, …), or None; the CLI then exits 3.
        view: the analysed image in the internal layout, for :meth:`overlay` (not in result.json).
        other_series: series read beside the main one (e.g. the study's T1), with their own bodies and discs.
        openspine_version: the version that made it, when read from result.json (None: this one).
    """

    input: InputInfo
    vertebrae: tuple[Vertebra, ...] = ()
    discs: tuple[Disc, ...] = ()
    models: tuple[ModelInfo, ...] = ()
    flags: tuple[str, ...] = ()
    steps_not_run: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    timings_s: Mapping[str, float] = field(default_factory=dict)
    created: str | None = None
    # why nothing in scope was found (no spine, not a sagittal plane); None when the scan was in scope
    out_of_scope: str | None = None
    # the analysed image in the internal layout, kept for pictures (not serialised)
    view: SagittalView | None = field(default=None, repr=False, compare=False)
    other_series: tuple[OtherSeries, ...] = ()  # e.g. the study's T1 series, read beside the main one
    openspine_version: str | None = None  # the version that made it, when read from result.json; None = this one

    def to_dict(self) -> dict[str, Any]:
        out = {
            "schema_version": SCHEMA_VERSION,
            "openspine_version": self.openspine_version or __version__,
            "created": self.created,
            "input": self.input.to_dict(),
            "models": [m.to_dict() for m in self.models],
            "vertebrae": [v.to_dict() for v in self.vertebrae],
            "discs": [d.to_dict() for d in self.discs],
            "out_of_scope": self.out_of_scope,
            "flags": list(self.flags),
            "steps_not_run": dict(self.steps_not_run),
            "parameters": dict(self.parameters),
            "timings_s": {k: round(float(v), 4) for k, v in self.timings_s.items()},
            "disclaimer": DISCLAIMER,
        }
        if self.other_series:
            out["other_series"] = [o.to_dict() for o in self.other_series]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __repr__(self) -> str:
        """One line of what was found, as a notebook shows a bare result (the field-by-field repr ran to 23 000
        characters; a notebook user test): the records are its attributes, and :meth:`to_dataframe` tabulates them."""
        labelled = sum(v.label is not None for v in self.vertebrae)
        graded = sum(d.graded for d in self.discs)
        scope = f", out_of_scope={self.out_of_scope!r}" if self.out_of_scope else ""
        return (
            f"AnalysisResult(input={self.input.path!r}, vertebrae={len(self.vertebrae)} ({labelled} labelled), "
            f"discs={len(self.discs)} ({graded} graded), flags={len(self.flags)}{scope})"
        )

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AnalysisResult:
        """The result a result.json document describes (``json.load``-ed), checked against the schema first: the
        records, flags and parameters as written; no image (:meth:`overlay` needs a fresh analysis).

        Raises:
            OutputError: a document of a newer schema than this openspine reads, or not a result at all.
            SchemaError: a result document that does not follow the schema.
        """
        from .errors import OutputError
        from .schema import validate_result

        if not isinstance(doc, Mapping) or "schema_version" not in doc:
            raise OutputError("not an openspine result: no schema_version (is it result.json?)")
        version = str(doc["schema_version"])
        if version.split(".")[0] != SCHEMA_VERSION.split(".")[0] or _newer(version, SCHEMA_VERSION):
            raise OutputError(
                f"result of schema {version}, written by openspine {doc.get('openspine_version', '?')}; this "
                f"openspine ({__version__}) reads schema {SCHEMA_VERSION} and older {SCHEMA_VERSION.split('.')[0]}.x"
            )
        validate_result(dict(doc))
        return cls(
            input=InputInfo.from_dict(doc["input"]),
            vertebrae=tuple(Vertebra.from_dict(v) for v in doc.get("vertebrae") or ()),
            discs=tuple(Disc.from_dict(d) for d in doc.get("discs") or ()),
            models=tuple(ModelInfo.from_dict(m) for m in doc.get("models") or ()),
            flags=tuple(doc.get("flags") or ()),
            steps_not_run=dict(doc.get("steps_not_run") or {}),
            parameters=dict(doc.get("parameters") or {}),
            timings_s=dict(doc.get("timings_s") or {}),
            created=doc.get("created"),
            out_of_scope=doc.get("out_of_scope"),
            other_series=tuple(OtherSeries.from_dict(o) for o in doc.get("other_series") or ()),
            openspine_version=doc.get("openspine_version"),
        )

    @classmethod
    def from_json(cls, text: str) -> AnalysisResult:
        """:meth:`from_dict` of a JSON string (e.g. the text of a result.json)."""
        from .errors import OutputError

        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OutputError(f"not JSON: {exc}") from None
        return cls.from_dict(doc)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> AnalysisResult:
        """The result in a result.json file, or in the result.json of an output folder (``openspine analyze --out``
        or a batch case folder).

        Example::

            result = openspine.AnalysisResult.read("out/result.json")
            result.to_dataframe("discs")
        """
        from .errors import OutputError

        p = Path(path)
        if p.is_dir():
            p = p / "result.json"
        if not p.is_file():
            raise OutputError(f"no result.json at '{p}'{_where_results_are(p.parent)}")
        try:
            return cls.from_json(p.read_text(encoding="utf-8"))
        except OutputError as exc:
            raise OutputError(f"'{p}': {exc}") from None

    def vertebra_rows(self) -> list[dict[str, Any]]:
        """One row per vertebra (the CSV and DataFrame form); built from :meth:`Vertebra.to_dict`, so that the rows
        of a result.json (:func:`vertebra_rows_from_dict`) are the same."""
        return [_vertebra_row(v.to_dict()) for v in self.vertebrae]

    def disc_rows(self) -> list[dict[str, Any]]:
        """One row per disc and grading (a disc without gradings still gets one row); built from
        :meth:`Disc.to_dict`, so that the rows of a result.json (:func:`disc_rows_from_dict`) are the same."""
        return [row for d in self.discs for row in _disc_rows(d.to_dict())]

    def to_dataframe(self, kind: str = "discs", case: str | None = None) -> Any:
        """A pandas DataFrame of ``"discs"`` (one row per disc × grading) or ``"vertebrae"``: the CSV's columns
        (also when there is no row, e.g. out of scope), every number column float64 with NaN where a grade or score
        is missing, so ``df.grade.mean()`` and ``df.probability > 0.9`` work, and a missing text (a withheld label,
        no note) None, as ``pandas.read_csv`` reads the CSV's empty cell, so ``df.label.isna()`` finds it.

        ``case`` names the scan in a first column ``case`` (as the cohort tables of ``openspine batch`` have), so
        that the frames of several results can be concatenated into one table::

            pd.concat([r.to_dataframe("discs", case=name) for name, r in results.items()], ignore_index=True)
        """
        from ._optional import import_optional

        pd = import_optional("pandas", "to_dataframe()")
        if kind not in ("discs", "vertebrae"):
            from .errors import ConfigError

            raise ConfigError(f"kind must be 'discs' or 'vertebrae', got {kind!r}")
        rows, columns = (
            (self.disc_rows(), DISC_COLUMNS) if kind == "discs" else (self.vertebra_rows(), VERTEBRA_COLUMNS)
        )
        df = pd.DataFrame(rows, columns=columns)
        for c in columns:
            if c in NUMERIC_COLUMNS:  # the rows write a missing number as "" (an empty CSV cell)
                df[c] = pd.Series(
                    [float("nan") if v == "" else float(v) for v in df[c]], index=df.index, dtype="float64"
                )
            else:
                df[c] = pd.Series([None if v == "" else v for v in df[c]], index=df.index, dtype="object")
        if case is not None:
            df.insert(0, "case", pd.Series([str(case)] * len(df), index=df.index, dtype="object"))
        return df

    def overlay(self, width: int = 1000) -> Any:
        """The overlay picture (a PIL image): mid-sagittal slice, outlines, levels, Pfirrmann grades.

        ``width`` is each panel's width in pixels: with a T1 series read beside the main one (``other_series``) the
        picture holds one panel per series side by side, 8 pixels apart (two series: ``2 * width + 8`` pixels wide).
        """
        from .errors import OutputError
        from .render.overlay import render_overlay

        if self.view is None:
            raise OutputError("this result holds no image (it was read from result.json); run openspine.analyze again")
        return render_overlay(self.view, self, width=width)

    def plot(self, width: int = 1000) -> Any:
        """A matplotlib figure of :meth:`overlay`, for notebooks (needs ``openspine[plot]``).

        ``width`` is each panel's width in pixels, as in :meth:`overlay`: the figure is the picture's size at 100 dpi,
        so a result with a T1 series read beside the T2 gives a figure about twice as wide.
        """
        import numpy as np

        from ._optional import import_optional

        plt = import_optional("matplotlib.pyplot", "plot()")
        img = self.overlay(width=width)
        fig, ax = plt.subplots(figsize=(img.width / 100, img.height / 100), dpi=100)
        ax.imshow(np.asarray(img))
        ax.set_axis_off()
        fig.subplots_adjust(0, 0, 1, 1)
        return fig


VERTEBRA_COLUMNS = [
    "label", "score", "centroid_voxel_0", "centroid_voxel_1", "centroid_voxel_2",
    "centroid_mm_x", "centroid_mm_y", "centroid_mm_z", "mid_slice", "note",
]  # fmt: skip
DISC_COLUMNS = [
    "level", "centroid_voxel_0", "centroid_voxel_1", "centroid_voxel_2",
    "centroid_mm_x", "centroid_mm_y", "centroid_mm_z", "grading", "grade", "probability", "balanced_grade",
    "probabilities", "series", "note",
]  # fmt: skip


# the columns of the rows that hold numbers (a missing one is written "")
NUMERIC_COLUMNS = frozenset(
    [c for c in VERTEBRA_COLUMNS + DISC_COLUMNS if c.startswith("centroid_")]
    + ["score", "mid_slice", "grade", "probability", "balanced_grade"]
)


def vertebra_rows_from_dict(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of :meth:`AnalysisResult.vertebra_rows` from a result.json document (e.g. ``json.load``-ed)."""
    return [_vertebra_row(v) for v in doc.get("vertebrae") or []]


def disc_rows_from_dict(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of :meth:`AnalysisResult.disc_rows` from a result.json document (e.g. ``json.load``-ed)."""
    return [row for d in doc.get("discs") or [] for row in _disc_rows(d)]


# The one row builder for records and result.json documents: it reads the dict forms (``to_dict``), so the CSV
# files of a case and the cohort tables built from result.json cannot drift apart.
def _vertebra_row(v: Mapping[str, Any]) -> dict[str, Any]:
    score = v.get("score")
    return {
        "label": v.get("label") or "",
        "score": "" if score is None else round(float(score), 4),
        **_xyz("centroid_voxel", v["centroid_voxel"]),
        **_xyz("centroid_mm", v["centroid_mm"]),
        "mid_slice": "" if v.get("mid_slice") is None else v["mid_slice"],
        "note": v.get("note") or "",
    }


def _disc_rows(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    base = {
        "level": d.get("level") or "",
        **_xyz("centroid_voxel", d["centroid_voxel"]),
        **_xyz("centroid_mm", d["centroid_mm"]),
    }
    grades: Mapping[str, Mapping[str, Any]] = d.get("grades") or {}
    if not grades:
        empty = dict.fromkeys(("grading", "grade", "probability", "balanced_grade", "probabilities", "series"), "")
        return [{**base, **empty, "note": d.get("note") or ""}]
    rows = []
    for name, r in grades.items():
        grade, balanced, given = r.get("grade"), r.get("balanced_grade"), r.get("probabilities")
        p: Mapping[str, float] = given or {}
        rows.append(
            {
                **base,
                "grading": name,
                "grade": "" if grade is None else grade,
                "probability": "" if grade is None or given is None else round(float(p.get(str(grade), 0.0)), 4),
                "balanced_grade": "" if balanced is None else balanced,
                "probabilities": json.dumps({k: round(float(x), 4) for k, x in p.items()}) if p else "",
                "series": "+".join(r.get("series") or ()),
                "note": r.get("note") or "",
            }
        )
    return rows


def _corners(c: Iterable[Iterable[float]]) -> tuple[Vec3, Vec3, Vec3, Vec3]:
    a, b, c2, d = (_vec(x) for x in c)
    return (a, b, c2, d)


def _newer(version: str, than: str) -> bool:
    """Whether dotted ``version`` is above ``than`` (non-numeric parts count as 0)."""

    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(x) if x.isdigit() else 0 for x in v.split("."))

    return parts(version) > parts(than)


def _xyz(prefix: str, v: Iterable[float]) -> dict[str, float]:
    names = ("x", "y", "z") if prefix.endswith("mm") else ("0", "1", "2")
    return {f"{prefix}_{n}": round(float(c), 3) for n, c in zip(names, v)}


def vec3(v: Iterable[float]) -> Vec3:
    """Round a 3-vector for the records (mm and voxel precision of 0.001)."""
    return _vec(v)


def _where_results_are(folder: Path) -> str:
    """What a folder without result.json holds instead, for the error: a batch output folder's cases, or a failed
    case's record."""
    if (folder / "failure.json").is_file():
        return ": the case failed; its failure.json says why (failures.csv of the batch lists it)"
    if (folder / "cases").is_dir():
        return ": this is a batch output folder; each case's result is in cases/<case>/result.json"
    return ""
