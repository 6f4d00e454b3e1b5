"""Training samples for graders: one labelled disc of one scan, located by the detector (no torch here).

A :class:`DiscSample` keeps a reference to its scan's sagittal array (shared by the discs of one scan), the
pixel spacing, the disc's endplate geometry from the detection, and its labels as class indices per head.
Detections are cached in a JSON file keyed by the scan path and the detector's checksum, each entry with the scan's
file identity (size and modification time, :func:`file_identity`), so a second training run does not detect again
and a scan changed at the same path is detected anew.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..._logging import get_logger
from ...detection.types import Detection, DiscGeometry
from ...errors import GeometryError, ModelError, OpenSpineError
from ...levels import DiscLevel
from ...scan import SagittalView

log = get_logger("training.datasets.discs")


@dataclass
class DiscSample:
    """One labelled disc: where it is and what the reference says."""

    case: str  # scan / patient id: the unit of splitting and of bootstrap resampling
    level: DiscLevel
    array: NDArray[Any]  # the scan in the internal sagittal layout (rows, cols, slices), shared per scan
    spacing: tuple[float, float, float]
    geometry: DiscGeometry
    labels: dict[str, int] = field(default_factory=dict)  # head name → class index; absent = not labelled


@dataclass
class DetectionCache:
    """Disc geometries found by the detector, per scan path, saved as JSON."""

    path: Path | None
    detector: str
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None, detector: str) -> DetectionCache:
        cache = cls(Path(path) if path else None, detector)
        if cache.path is not None and cache.path.is_file():
            try:
                data = json.loads(cache.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                log.warning("ignoring the unreadable detection cache %s", cache.path)
                return cache
            if data.get("detector") == detector:
                cache.entries = data.get("scans", {})
            else:
                log.info("detection cache %s was made by another detector; detecting again", cache.path)
        return cache

    def get(self, key: str, ident: Mapping[str, int] | None = None) -> dict[str, DiscGeometry] | None:
        """The cached discs of ``key``; None when absent or, given ``ident``, when the file changed since."""
        e = self.entries.get(key)
        if e is None:
            return None
        if ident is not None and e.get("file") != dict(ident):
            return None  # re-exported or replaced at the same path: its old positions are of another image
        return {lv: DiscGeometry.from_dict(g) for lv, g in e["discs"].items()}

    def put(
        self,
        key: str,
        discs: Mapping[str, DiscGeometry],
        flags: Iterable[str] = (),
        ident: Mapping[str, int] | None = None,
    ) -> None:
        entry: dict[str, Any] = {"discs": {lv: g.to_dict() for lv, g in discs.items()}, "flags": list(flags)}
        if ident is not None:
            entry["file"] = dict(ident)
        self.entries[key] = entry

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"detector": self.detector, "scans": self.entries}), encoding="utf-8")
        tmp.replace(self.path)


def file_identity(path: str | os.PathLike[str]) -> dict[str, int]:
    """Size and modification time of a scan file, or of every file of a scan folder (a DICOM series): cheap, and
    changed by any re-export, copy over or edit of the scan."""
    p = Path(path)
    if p.is_dir():
        files = [f.stat() for f in p.rglob("*") if f.is_file()]
        return {
            "files": len(files),
            "size": sum(st.st_size for st in files),
            "mtime_ns": max((st.st_mtime_ns for st in files), default=0),
        }
    st = p.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def view_fingerprint(view: SagittalView) -> str:
    """A short hash of a scan's voxels as read (shape and values): the same image from the same file, a copy or a
    renamed copy gives the same fingerprint; any other export of it (other format, crop, resampling) does not."""
    if not view.has_input_voxels:  # a result's view keeps none: every such view would hash alike
        raise ValueError("a view kept by an analysis result holds no input voxels to fingerprint; load the scan")
    a = np.ascontiguousarray(view.input.array, dtype=np.float32)
    h = hashlib.sha256(repr(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()[:16]


def detector_id() -> str:
    """Identity of the built-in detector (name@sha256), or raise ModelError when there is none."""
    from ...models import builtin_model_dir, read_card

    card = read_card(builtin_model_dir("detector"))
    return f"{card.name}@{card.sha256}"


def detect_discs(view: SagittalView) -> tuple[dict[str, DiscGeometry], list[str]]:
    """Run the built-in detector on a view and return the geometry of every labelled disc (level name → geometry)."""
    from ...detection import detect

    return disc_geometries(view, detect(view))


def disc_geometries(view: SagittalView, det: Detection) -> tuple[dict[str, DiscGeometry], list[str]]:
    """The geometry of every labelled disc of a detection (level name → geometry), and the detection's flags plus
    one per disc whose geometry is unusable."""
    from ...grading.geometry import disc_geometry

    out: dict[str, DiscGeometry] = {}
    flags = list(getattr(det, "flags", ()))
    for i, d in enumerate(det.discs):
        if d.level is None:
            continue
        try:
            out[d.level.value] = disc_geometry(view, det, i)
        except GeometryError as exc:
            flags.append(f"{d.level.value}: {exc}")
    return out, flags


def locate_discs(
    scans: Iterable[tuple[str, Path]],
    cache: DetectionCache,
    loader: Callable[[Path], SagittalView],
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda x: x,
) -> tuple[dict[str, SagittalView], dict[str, dict[str, DiscGeometry]], dict[str, str]]:
    """Load each scan and find its discs (from the cache when possible).

    Returns:
        views by case id, disc geometries by case id and level, and failures by case id (why a scan gave no discs).
    """
    views: dict[str, SagittalView] = {}
    geoms: dict[str, dict[str, DiscGeometry]] = {}
    failed: dict[str, str] = {}
    dirty = False
    changed = reused = 0
    for case, path in progress(list(scans)):
        try:
            view = loader(path)
        except OpenSpineError as exc:
            failed[case] = f"cannot read: {exc}"
            continue
        key = str(Path(path).resolve())
        ident = file_identity(path)
        found = cache.get(key, ident)
        changed += found is None and key in cache.entries
        reused += found is not None
        if found is None:
            try:
                found, flags = detect_discs(view)
            except ModelError:
                raise  # no usable detector: every scan would fail the same way
            except OpenSpineError as exc:
                failed[case] = f"detection failed: {exc}"
                continue
            cache.put(key, found, flags, ident)
            dirty = True
        if not found:
            failed[case] = "the detector found no labelled disc"
        views[case] = view
        geoms[case] = found
    if reused or changed:
        log.info(
            "detection cache %s: %d scans reused, %d changed since and detected again", cache.path, reused, changed
        )
    if dirty:
        cache.save()
    return views, geoms, failed


def load_view(path: Path) -> SagittalView:
    """Read a scan (any format openspine reads) into the internal sagittal layout."""
    from ...io import load_scan

    scan = load_scan(path)
    scan.check_analysable()
    return scan.to_sagittal()


def build_samples(
    views: Mapping[str, SagittalView],
    geoms: Mapping[str, Mapping[str, DiscGeometry]],
    labels: Mapping[str, Mapping[DiscLevel, Mapping[str, str]]],
    classes: Mapping[str, tuple[str, ...]],
) -> tuple[list[DiscSample], list[str]]:
    """Join labels (case → level → head → class string) with detected discs.

    Returns the samples and one message per labelled disc that the detector did not find (those are left out,
    never placed by hand).
    """
    samples: list[DiscSample] = []
    missing: list[str] = []
    for case, by_level in labels.items():
        view = views.get(case)
        if view is None:
            continue
        arr = np.asarray(view.scan.array)
        spacing = view.scan.spacing
        found = geoms.get(case, {})
        for level, grades in by_level.items():
            g = found.get(level.value)
            if g is None:
                missing.append(f"{case} {level.value}")
                continue
            idx: dict[str, int] = {}
            for head, value in grades.items():
                if head in classes and value != "" and value in classes[head]:
                    idx[head] = classes[head].index(value)
            if idx:
                samples.append(DiscSample(case, level, arr, spacing, g, idx))
    return samples, missing


@dataclass
class LocatedSamples:
    """The labelled discs of a set of scans as training samples, and what could not be used."""

    samples: list[DiscSample]
    missing: list[str]  # "case level" of each labelled disc the detector did not find
    failed: dict[str, str]  # why a scan gave no discs, by case
    detector: str  # the detector's id in the cache (name, version and checksum)


def located_samples(
    scans: Iterable[tuple[str, Path]],
    labels: Mapping[str, Mapping[DiscLevel, Mapping[str, str]]],
    classes: Mapping[str, tuple[str, ...]],
    cache_file: str | os.PathLike[str],
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda x: x,
) -> LocatedSamples:
    """:func:`locate_discs` with the built-in detector (cached in ``cache_file``), then :func:`build_samples`."""
    cache = DetectionCache.open(cache_file, detector_id())
    views, geoms, failed = locate_discs(scans, cache, load_view, progress)
    samples, missing = build_samples(views, geoms, labels, classes)
    return LocatedSamples(samples, missing, failed, cache.detector)
