"""Training data of the detector: the shared FastCleverSeg volumes, their targets and the augmentation.

Pipeline (numpy / scipy only, so it runs in DataLoader workers and on machines without nibabel once cached):

1. :func:`build_cache` reads the ``train`` split of the shared data set (nibabel) into :class:`TrainVolume`
   records: every second 1 mm sagittal slice within the labelled range ± 6 mm (the sources were acquired with
   3–4.4 mm slices, so neighbouring 1 mm slices are interpolations and add nothing), uint8 intensities. The
   cache can be written as ``.npz`` files (:func:`save_cache`) and read back without nibabel
   (:func:`load_cache`); training always goes through this one representation.
2. :func:`prepare_volume` derives what the loss needs from the label map: which pixels of which output channel
   are *supervised* (structures the annotators did not label – T12 above a VB3 L1, the sacrum below L5 – must not
   be taught as background), per-slice body and disc centres, and the level (ordinal) of each structure.
3. :func:`render_sample` draws one augmented training tile: random slab thickness, blur (resolution), rotation,
   scale, translation, field-of-view crop, SynthSeg-style contrast randomisation (random intensity curves,
   inversion, gamma, per-structure intensity shifts), bias field, noise; then the targets on the network's output
   grid (stride 2).

Level ordinal: the VerSe value for C1 … L5 (1 … 24), S1 = 25; a disc is its upper vertebra + 0.5.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..._logging import get_logger
from ...detection.outline import quad_corners, spine_directions
from ...detection.preprocess import normalise
from ...errors import ConfigError, ScanReadError

log = get_logger("training.datasets.volumes")

SLICE_STRIDE = 2  # keep every second 1 mm slice
SLICE_MARGIN = 6  # mm of unlabelled slices kept on each side of the labelled range
IGNORE_MARGIN_MM = 3.0  # the unsupervised half-planes start this far beyond the outermost labelled structure
MIN_AREA_PX = 20  # a structure smaller than this on a slice (1 mm pixels) is a partial-volume sliver


def ordinal_of(value: int) -> float:
    """Level ordinal of a shared-data label value; NaN for unknown-level bodies (201…) and background."""
    v = int(value)
    if 1 <= v <= 24:
        return float(v)
    if v == 26:
        return 25.0
    if 101 <= v <= 124:
        return float(v - 100) + 0.5
    return float("nan")


def is_body(value: int) -> bool:
    return 1 <= int(value) < 100 or int(value) >= 201


def is_disc(value: int) -> bool:
    return 100 <= int(value) < 200


@dataclass
class TrainVolume:
    """One training volume: stored sagittal slices (rows S→I, cols A→P, slices), 1 mm pixels."""

    id: str
    subset: str  # VB1 / VB2 / VB3 / IVD
    levels_known: bool
    image: NDArray[np.uint8]  # (H, W, S)
    mask: NDArray[np.uint8]  # (H, W, S)
    # filled by prepare_volume
    body_weight: NDArray[np.uint8] = field(default_factory=lambda: np.zeros((0, 0), np.uint8))
    disc_weight: NDArray[np.uint8] = field(default_factory=lambda: np.zeros((0, 0), np.uint8))
    slices: list[SliceInfo] = field(default_factory=list)
    labels: tuple[int, ...] = ()

    @property
    def has_bodies(self) -> bool:
        return any(is_body(v) for v in self.labels)


@dataclass
class SliceInfo:
    """Per stored slice: areas of the structures and (for body-labelled volumes) disc centres from body pairs."""

    areas: dict[int, int]
    disc_centres: NDArray[np.float64]  # (n, 3): row, col, ordinal (NaN when the level is unknown)
    disc_ok: bool  # False when a disc between two labelled bodies is cut by the labelled range (unsupervised)


# --- cache -------------------------------------------------------------------------------------------------------
def read_index(data_dir: Path) -> list[dict[str, str]]:
    path = Path(data_dir) / "index.csv"
    if not path.is_file():
        raise ScanReadError(f"'{data_dir}' is not the shared data folder: it has no index.csv")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _to_uint8(a: NDArray[Any]) -> NDArray[np.uint8]:
    if a.dtype == np.uint8:
        return a
    lo, hi = np.percentile(a, [0.0, 99.9])
    return np.clip((a.astype(np.float32) - lo) / max(float(hi - lo), 1e-6) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _nifti_array(path: Path) -> NDArray[Any]:
    """The voxel array of a NIfTI file, as stored (needs nibabel)."""
    import nibabel as nib

    img: Any = nib.load(str(path))
    return np.asarray(img.dataobj)


def build_cache(
    data_dir: str | os.PathLike[str], split: str = "train", ids: Sequence[str] | None = None
) -> list[TrainVolume]:
    """Read the FastCleverSeg volumes of one split into :class:`TrainVolume` records (needs nibabel)."""
    data_dir = Path(data_dir)
    rows = [r for r in read_index(data_dir) if r["dataset"] == "fastcleverseg" and r["split"] == split]
    if ids is not None:
        rows = [r for r in rows if r["id"] in set(ids)]
    if not rows:
        raise ConfigError(f"no FastCleverSeg items with split '{split}' in '{data_dir}'")
    out = []
    for r in sorted(rows, key=lambda r: r["id"]):
        folder = data_dir / r["path"]
        img = _nifti_array(folder / r["image"])
        msk = _nifti_array(folder / r["mask"]).astype(np.uint8)
        z = np.nonzero(msk.any(axis=(0, 1)))[0]
        k0, k1 = max(0, int(z.min()) - SLICE_MARGIN), min(img.shape[2], int(z.max()) + SLICE_MARGIN + 1)
        out.append(
            TrainVolume(
                id=r["id"],
                subset=r["subset"],
                levels_known=r["levels_known"].strip().lower() == "true",
                image=np.ascontiguousarray(_to_uint8(img)[:, :, k0:k1:SLICE_STRIDE]),
                mask=np.ascontiguousarray(msk[:, :, k0:k1:SLICE_STRIDE]),
            )
        )
    return out


CACHE_SOURCE = "source.txt"  # where a cache's volumes came from, read back into the card of a model trained on it


def save_cache(volumes: Sequence[TrainVolume], folder: str | os.PathLike[str], source: str = "") -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if source:
        (folder / CACHE_SOURCE).write_text(source + "\n", encoding="utf-8")
    for v in volumes:
        meta = json.dumps({"id": v.id, "subset": v.subset, "levels_known": v.levels_known})
        np.savez_compressed(folder / f"{v.id}.npz", image=v.image, mask=v.mask, meta=np.array(meta))


def cache_source(folder: str | os.PathLike[str]) -> str:
    """What a cache written by :func:`save_cache` says its volumes came from ('' when it does not say)."""
    f = Path(folder) / CACHE_SOURCE
    return f.read_text(encoding="utf-8").strip() if f.is_file() else ""


def load_cache(folder: str | os.PathLike[str]) -> list[TrainVolume]:
    files = sorted(Path(folder).glob("*.npz"))
    if not files:
        raise ConfigError(f"'{folder}' holds no cached training volumes (*.npz)")
    out = []
    for f in files:
        with np.load(f) as z:
            meta = json.loads(str(z["meta"]))
            out.append(TrainVolume(meta["id"], meta["subset"], bool(meta["levels_known"]), z["image"], z["mask"]))
    return out


# --- targets -----------------------------------------------------------------------------------------------------
def _half_plane_keep(
    shape: tuple[int, int], p0: NDArray[np.float64], p1: NDArray[np.float64], inside: NDArray[np.float64], margin: float
) -> NDArray[np.bool_]:
    """Pixels on the side of the line p0–p1 where ``inside`` lies, or within ``margin`` px beyond the line."""
    d = p1 - p0
    n = np.array([-d[1], d[0]])
    n /= max(float(np.linalg.norm(n)), 1e-9)
    if float((inside - p0) @ n) < 0:
        n = -n
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    dist = (rr - p0[0]) * n[0] + (cc - p0[1]) * n[1]
    return np.asarray(dist >= -margin)


def _supervised_region(
    mask2d: dict[int, NDArray[np.bool_]], order: list[int], shape: tuple[int, int]
) -> NDArray[np.uint8]:
    """1 between the top structure's superior endplate line and the bottom one's inferior line (± margin), else 0."""
    cents = np.array([np.argwhere(mask2d[v]).mean(axis=0) for v in order])
    downs = spine_directions(cents)
    top = quad_corners(np.argwhere(mask2d[order[0]]), downs[0])
    bot = quad_corners(np.argwhere(mask2d[order[-1]]), downs[-1])
    keep = _half_plane_keep(shape, top[0], top[1], cents[0], IGNORE_MARGIN_MM)
    keep &= _half_plane_keep(shape, bot[3], bot[2], cents[-1], IGNORE_MARGIN_MM)
    return keep.astype(np.uint8)


def prepare_volume(vol: TrainVolume) -> TrainVolume:
    """Fill the supervision maps and per-slice centres of ``vol`` (in place; returns it)."""
    labels = tuple(int(v) for v in np.unique(vol.mask) if v != 0)
    vol.labels = labels
    shape = (vol.mask.shape[0], vol.mask.shape[1])
    mask2d = {v: (vol.mask == v).any(axis=2) for v in labels}
    order = sorted(labels, key=lambda v: float(np.argwhere(mask2d[v])[:, 0].mean()))
    bodies = [v for v in order if is_body(v)]
    discs = [v for v in order if is_disc(v)]
    if bodies:
        region = _supervised_region(mask2d, bodies, shape)
        vol.body_weight = region
        vol.disc_weight = region.copy()
    else:  # disc-only volumes (IVD): bodies are unlabelled, so the body channels learn nothing here
        vol.body_weight = np.zeros(shape, np.uint8)
        vol.disc_weight = _supervised_region(mask2d, discs, shape)
    cents_all = np.array([np.argwhere(mask2d[v]).mean(axis=0) for v in bodies]) if bodies else np.zeros((0, 2))
    downs = spine_directions(cents_all) if len(bodies) else np.zeros((0, 2))
    vol.slices = []
    for s in range(vol.mask.shape[2]):
        sl = vol.mask[:, :, s]
        counts = np.bincount(sl.ravel(), minlength=256)
        areas = {v: int(counts[v]) for v in labels if counts[v] >= MIN_AREA_PX}
        centres = []
        ok = True
        for i in range(len(bodies) - 1):
            a, b = bodies[i], bodies[i + 1]
            pa, pb = a in areas, b in areas
            if pa != pb:
                ok = False
            if not (pa and pb):
                continue
            ca = quad_corners(np.argwhere(sl == a), downs[i])
            cb = quad_corners(np.argwhere(sl == b), downs[i + 1])
            mid = (ca[2] + ca[3] + cb[0] + cb[1]) / 4.0
            ordv = ordinal_of(a) + 0.5 if vol.levels_known else float("nan")
            centres.append((mid[0], mid[1], ordv))
        vol.slices.append(SliceInfo(areas, np.array(centres, dtype=float).reshape(-1, 3), ok))
    return vol


# --- augmentation ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleConfig:
    """Geometry of training tiles and strength of the augmentation."""

    tile: int = 224  # input pixels per side
    spacing: float = 1.25  # mm per input pixel (the model's spacing)
    stride: int = 2  # output grid stride
    body_sigma: float = 1.5  # Gaussian sigma of body-centre heat-maps, output pixels
    disc_sigma: float = 1.25
    rotation_deg: float = 25.0
    scale: tuple[float, float] = (0.85, 1.2)
    p_fov: float = 0.4
    # share of tiles whose field of view ends inside or just below a random vertebral body: views without the
    # sacrum, where the lowest body is cut by the lower edge (the labelling errors of cropped views are there)
    p_cut_below: float = 0.0
    p_lut: float = 0.5
    p_invert: float = 0.2
    p_region: float = 0.3
    p_lowres: float = 0.2
    p_empty_slice: float = 0.1


def _pool(a: NDArray[np.floating], s: int) -> NDArray[np.float32]:
    h, w = a.shape[0] // s, a.shape[1] // s
    return np.asarray(a[: h * s, : w * s].reshape(h, s, w, s).mean(axis=(1, 3)), dtype=np.float32)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], amp: float) -> NDArray[np.float32]:
    """A smooth random log-bias field: a random quadratic polynomial over the tile."""
    y = np.linspace(-1.0, 1.0, shape[0], dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, shape[1], dtype=np.float32)[None, :]
    c = rng.normal(0.0, amp, size=5).astype(np.float32)
    return np.asarray(c[0] * y + c[1] * x + c[2] * y * x + c[3] * (y * y - 0.33) + c[4] * (x * x - 0.33), np.float32)


def _random_lut(rng: np.random.Generator, x: NDArray[np.float32]) -> NDArray[np.float32]:
    """A random, possibly non-monotone intensity curve: different tissues swap and merge contrasts."""
    knots = np.linspace(0.0, 1.0, 6)
    vals = rng.uniform(0.0, 1.0, size=6)
    mix = rng.uniform(0.3, 1.0)
    return np.asarray((1 - mix) * x + mix * np.interp(x, knots, vals), dtype=np.float32)


def _gaussians(shape: tuple[int, int], pts: list[tuple[float, float]], sigma: float) -> NDArray[np.float32]:
    """Max of Gaussians at ``pts``; the pixel nearest each point is exactly 1 (the focal loss's positive)."""
    out = np.zeros(shape, np.float32)
    if not pts:
        return out
    rr, cc = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    for r, c in pts:
        g = np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * sigma**2))
        np.maximum(out, g, out=out)
        ir, ic = round(float(r)), round(float(c))
        if 0 <= ir < shape[0] and 0 <= ic < shape[1]:
            out[ir, ic] = 1.0
    return out


def _disk(shape: tuple[int, int], r: float, c: float, radius: float) -> NDArray[np.bool_]:
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    return np.asarray((rr - r) ** 2 + (cc - c) ** 2 <= radius**2)


def _cut_below_row(labels: NDArray[np.integer], rng: np.random.Generator, above: int = 2) -> int | None:
    """A tile row through, or just below, one vertebral body drawn at random from those in ``labels`` (a tile's
    label map) with at least ``above`` bodies above it: between a quarter of the way down the body and a third of
    its height below it. ``None`` when no body has enough bodies above it."""
    rows = np.arange(labels.shape[0])
    spans = []
    for v in np.unique(labels):
        if v and is_body(int(v)):
            r = rows[(labels == v).any(axis=1)]
            spans.append((int(r.min()), int(r.max())))
    spans.sort()
    if len(spans) <= above:
        return None
    top, bottom = spans[above + int(rng.integers(len(spans) - above))]
    return round(top + rng.uniform(0.25, 1.33) * (bottom - top))


def render_sample(
    vol: TrainVolume, rng: np.random.Generator, cfg: SampleConfig = SampleConfig()
) -> dict[str, NDArray[np.float32]]:
    """One augmented tile of ``vol`` and its targets.

    Returns float32 arrays: ``image`` (T, T); on the output grid (T/stride)²: ``body`` (soft mask), ``body_w``,
    ``bheat``, ``bheat_w``, ``dheat``, ``dheat_w``, ``level`` (ordinal), ``level_w``.
    """
    T, sp, st = cfg.tile, cfg.spacing, cfg.stride
    H, W, S = vol.image.shape
    # --- slice and slab thickness
    with_structs = [i for i, s in enumerate(vol.slices) if s.areas]
    pick_struct = with_structs and rng.random() > cfg.p_empty_slice
    s = int(rng.choice(with_structs)) if pick_struct else int(rng.integers(S))
    h = int(rng.choice([0, 0, 1]))
    if h:
        img = vol.image[:, :, max(0, s - h) : min(S, s + h + 1)].astype(np.float32).mean(axis=2)
    else:
        img = vol.image[:, :, s].astype(np.float32)
    lab = vol.mask[:, :, s]
    info = vol.slices[s]
    img = normalise(img)
    # --- per-structure intensity shifts (SynthSeg-style), before blurring so the edges stay natural
    if info.areas and rng.random() < cfg.p_region:
        for v in info.areas:
            m = ndimage.gaussian_filter((lab == v).astype(np.float32), 1.0)
            img += m * np.float32(rng.normal(0.0, 0.25))
    # --- resolution: anisotropic blur (in-plane resolution and partial volume)
    sig = rng.uniform(0.0, 1.6, size=2)
    if sig.max() > 0.2:
        img = ndimage.gaussian_filter(img, sigma=tuple(sig))
    # --- geometry: output (y, x) → source pixel
    if info.areas:
        keys = list(info.areas)
        v = int(rng.choice(keys))
        centre = np.argwhere(lab == v).mean(axis=0) + rng.normal(0.0, 35.0, size=2)
    else:
        centre = np.array([H / 2, W / 2]) + rng.normal(0.0, 40.0, size=2)
    theta = np.radians(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
    scale = rng.uniform(*cfg.scale) * np.exp(rng.normal(0.0, 0.04, size=2))  # slight anisotropy
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    A = rot @ np.diag(sp / scale)  # output px offset → source px offset (source pixels are 1 mm)
    yy, xx = np.mgrid[:T, :T].astype(np.float64)
    off = np.stack([yy.ravel() - (T - 1) / 2, xx.ravel() - (T - 1) / 2])
    src = (A @ off) + centre[:, None]
    coords = src.reshape(2, T, T)
    image = ndimage.map_coordinates(img, coords, order=1, mode="constant", cval=0.0, prefilter=False)
    inside = (coords[0] >= -0.5) & (coords[0] <= H - 0.5) & (coords[1] >= -0.5) & (coords[1] <= W - 0.5)
    labw = ndimage.map_coordinates(lab, coords, order=0, mode="constant", cval=0)
    bw = ndimage.map_coordinates(vol.body_weight, coords, order=0, mode="constant", cval=0).astype(np.float32)
    dw = ndimage.map_coordinates(vol.disc_weight, coords, order=0, mode="constant", cval=0).astype(np.float32)
    # --- field of view
    valid = inside.copy()
    if rng.random() < cfg.p_fov:
        fh, fw = rng.uniform(100.0, T * sp) / sp, rng.uniform(110.0, T * sp) / sp
        # the rectangle holds the tile centre (near a labelled structure) so partial views still show spine
        r0 = rng.uniform(max(0.0, T / 2 - fh + 10), min(T - fh, T / 2 - 10) + 1e-3)
        c0 = rng.uniform(max(0.0, T / 2 - fw + 10), min(T - fw, T / 2 - 10) + 1e-3)
        fov = np.zeros((T, T), bool)
        fov[int(r0) : int(r0 + fh), int(c0) : int(c0 + fw)] = True
        valid &= fov
    if cfg.p_cut_below and rng.random() < cfg.p_cut_below:
        cut = _cut_below_row(np.where(valid, labw, 0), rng)
        if cut is not None:
            valid[cut:, :] = False
    # --- intensity
    x = np.clip(image, 0.0, 1.5)
    if rng.random() < cfg.p_lut:
        x = _random_lut(rng, np.clip(x, 0, 1))
    if rng.random() < cfg.p_invert:
        x = 1.0 - np.clip(x, 0, 1)
    x = np.power(np.clip(x, 0, None), np.float32(np.exp(rng.normal(0.0, 0.3))))
    x = x * np.exp(_smooth_field(rng, (T, T), 0.2))
    if rng.random() < cfg.p_lowres:
        f = rng.uniform(1.4, 2.5)
        small = ndimage.zoom(x, 1.0 / f, order=1)
        x = ndimage.zoom(small, (T / small.shape[0], T / small.shape[1]), order=1)[:T, :T]
    x = x + rng.normal(0.0, rng.uniform(0.0, 0.08), size=x.shape).astype(np.float32)
    image = normalise(x, valid) if valid.any() else np.zeros((T, T), np.float32)

    # --- targets on the output grid (stride st); output pixel (i, j) covers input pixels [st*i, st*i + st)
    G = T // st
    validg = _pool(valid.astype(np.float32), st)
    labv = np.where(valid, labw, 0)
    body_lut = np.array([1.0 if (v and is_body(v)) else 0.0 for v in range(256)], np.float32)
    body = _pool(body_lut[labv], st)
    bwg = _pool(bw, st)
    body_w = bwg * (validg > 0.5)
    # regions outside the field of view are certain background (the image there is black): supervise them
    body_w = np.maximum(body_w, (validg < 0.5) * (bwg > 0) * 1.0).astype(np.float32)
    dheat_w = (_pool(dw, st) > 0.5).astype(np.float32)
    if not info.disc_ok:
        dheat_w[:] = 0.0
    bheat_w = body_w.copy()
    # level: mean ordinal of the labelled-level structures covering at least half of an output pixel
    if vol.levels_known:
        ord_lut = np.array([ordinal_of(v) if v else np.nan for v in range(256)], np.float32)
        o = ord_lut[labv]
        known = np.isfinite(o)
        cover = _pool(known.astype(np.float32), st)
        osum = _pool(np.where(known, o, 0.0), st)
        level_w = (cover >= 0.5).astype(np.float32)
        level = np.where(level_w > 0, osum / np.maximum(cover, 1e-6), 0.0).astype(np.float32)
    else:
        level = np.zeros((G, G), np.float32)
        level_w = np.zeros((G, G), np.float32)
    bpts: list[tuple[float, float]] = []
    dpts: list[tuple[float, float]] = []
    px_area = (sp / scale[0]) * (sp / scale[1])  # source px per input px
    flat = labv.ravel()
    n_vis_all = np.bincount(flat, minlength=256)
    rr, cc = np.indices((T, T))
    sum_r = np.bincount(flat, weights=rr.ravel(), minlength=256)
    sum_c = np.bincount(flat, weights=cc.ravel(), minlength=256)
    for v, area_src in info.areas.items():
        n_vis = int(n_vis_all[v])
        if n_vis == 0:
            continue
        c = (sum_r[v] / n_vis, sum_c[v] / n_vis)
        cg = ((c[0] + 0.5) / st - 0.5, (c[1] + 0.5) / st - 0.5)
        target_pts = bpts if is_body(v) else dpts
        weight = bheat_w if is_body(v) else dheat_w
        if n_vis >= 0.5 * area_src / px_area:
            target_pts.append(cg)
        else:  # mostly cut away by the field of view: neither a centre nor background
            visg = _pool((labv == v).astype(np.float32), st)
            weight[ndimage.binary_dilation(visg > 0, iterations=3)] = 0.0
    # disc centres derived from body pairs (volumes with body labels)
    if len(info.disc_centres):
        inv = np.linalg.inv(A)
        for r, c, o in info.disc_centres:
            q = inv @ (np.array([r, c]) - centre) + (T - 1) / 2
            g = ((q[0] + 0.5) / st - 0.5, (q[1] + 0.5) / st - 0.5)
            if not (-2 <= g[0] < G + 2 and -2 <= g[1] < G + 2):
                continue
            ir, ic = int(np.clip(round(q[0]), 0, T - 1)), int(np.clip(round(q[1]), 0, T - 1))
            inside_fov = 0 <= q[0] < T and 0 <= q[1] < T and bool(valid[ir, ic])
            if inside_fov:
                dpts.append(g)
                if np.isfinite(o):
                    d = _disk((G, G), g[0], g[1], 2.0)
                    level[d] = o
                    level_w[d] = 1.0
            else:
                dheat_w[_disk((G, G), g[0], g[1], 4.0)] = 0.0
    bheat = _gaussians((G, G), bpts, cfg.body_sigma)
    dheat = _gaussians((G, G), dpts, cfg.disc_sigma)
    return {
        "image": image.astype(np.float32),
        "body": body,
        "body_w": body_w.astype(np.float32),
        "bheat": bheat,
        "bheat_w": bheat_w.astype(np.float32),
        "dheat": dheat,
        "dheat_w": dheat_w.astype(np.float32),
        "level": level,
        "level_w": level_w,
    }


# --- pseudo-labels (self-training) ---------------------------------------------------------------------------------
PSEUDO_BLOCKING_FLAGS = ("labelling_ambiguous", "transitional_vertebra_suspected", "vertebra_not_detected")


def _pseudo_ok(det: Any) -> bool:
    """Use a detection as pseudo-labels only when nothing about it is doubtful."""
    labels = [v.label.value for v in det.vertebrae if v.label is not None]
    discs = {d.level.value for d in det.discs if d.level is not None}
    lumbar = {"L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"}
    return (
        len(labels) >= 6
        and labels[-1] == "S1"
        and lumbar <= discs
        and not any(f.startswith(PSEUDO_BLOCKING_FLAGS) for f in det.flags)
    )


def pseudo_label_spider(
    data_dir: str | os.PathLike[str], model: str | os.PathLike[str], split: str = "train", t1: bool = False
) -> list[TrainVolume]:
    """SPIDER slices of ``split`` with body masks predicted by ``model`` (a stage-1 detector), at 1 mm pixels;
    with ``t1`` also the same patients' T1 slices (``spider/t1.csv``, subset ``SPIDER-T1``).

    Only confident detections are kept (S1 found, L1-L2 … L5-S1 present, no ambiguity flag). The masks are the
    network's own body instances, labelled with the fitted levels (S1 = 26), so stage 2 also learns the sacrum,
    which no annotator labelled.
    """
    from ...detection import run_detection
    from ...io import load_scan

    data_dir = Path(data_dir)
    rows = [
        {**r, "image": "image.nii.gz", "subset": "SPIDER"}
        for r in read_index(data_dir)
        if r["dataset"] == "spider" and r["split"] == split
    ]
    t1_index = data_dir / "spider" / "t1.csv"
    if t1 and t1_index.is_file():
        with open(t1_index, newline="", encoding="utf-8") as f:
            rows += [{**r, "subset": "SPIDER-T1"} for r in csv.DictReader(f) if r["split"] == split]
    out: list[TrainVolume] = []
    for r in sorted(rows, key=lambda r: r["id"]):
        scan = load_scan(data_dir / r["path"] / r["image"])
        view = scan.to_sagittal()
        run = run_detection(view, model)
        if not _pseudo_ok(run.detection):
            log.info("pseudo-labels: %s left out (%s)", r["id"], "; ".join(run.detection.flags) or "incomplete")
            continue
        g = run.grid
        lab_model = np.zeros(g.shape, np.uint8)
        for vert, grp in zip(run.detection.vertebrae, run.groups):
            if vert.label is None:  # every body is labelled when _pseudo_ok passed; this keeps the type checker sure
                continue
            for m in grp.members:
                lab_model[m.pixels[:, 0], m.pixels[:, 1]] = vert.label.label_value  # the mask convention (S1 = 26)
        # to 1 mm pixels: image linear (anti-aliased), labels nearest from the model grid
        sr, sc = view.scan.spacing[0], view.scan.spacing[1]
        img = view.scan.array[:, :, 0].astype(np.float32)
        H1, W1 = round(float(img.shape[0] * sr)), round(float(img.shape[1] * sc))
        rr = (np.arange(H1) + 0.5) / sr - 0.5
        cc = (np.arange(W1) + 0.5) / sc - 0.5
        sig = [max(0.0, (1.0 / s - 1.0) / 2.0) for s in (sr, sc)]
        src = ndimage.gaussian_filter(img, sig) if max(sig) > 0.05 else img
        grid = np.meshgrid(rr, cc, indexing="ij")
        img1 = ndimage.map_coordinates(src, grid, order=1, mode="nearest")
        mr = g.to_model(np.stack([rr, np.zeros_like(rr)], 1))[:, 0]
        mc = g.to_model(np.stack([np.zeros_like(cc), cc], 1))[:, 1]
        mg = np.meshgrid(mr, mc, indexing="ij")
        lab1 = ndimage.map_coordinates(lab_model, mg, order=0, mode="constant", cval=0).astype(np.uint8)
        out.append(TrainVolume(r["id"], r["subset"], True, _to_uint8(img1)[:, :, None], lab1[:, :, None]))
    log.info("pseudo-labels: %d of %d SPIDER %s slices kept", len(out), len(rows), split)
    return out


def add_sacrum_pseudo_labels(
    volumes: Sequence[TrainVolume], data_dir: str | os.PathLike[str], model: str | os.PathLike[str]
) -> int:
    """Paint the S1 body found by ``model`` into the cached masks of known-level volumes whose lowest labelled body
    is L5 (VB2, VB3); returns how many volumes got one. The S1 instance must lie directly below the labelled L5."""
    from ...detection import run_detection
    from ...io import load_scan

    data_dir = Path(data_dir)
    rows = {r["id"]: r for r in read_index(data_dir)}
    n = 0
    for vol in volumes:
        if not vol.levels_known or 24 not in np.unique(vol.mask) or vol.subset not in ("VB2", "VB3"):
            continue
        r = rows[vol.id]
        folder = data_dir / r["path"]
        view = load_scan(folder / r["image"]).to_sagittal()
        run = run_detection(view, model)
        labels = [v.label.value if v.label else "" for v in run.detection.vertebrae]
        if "S1" not in labels or "L5" not in labels or labels.index("S1") != labels.index("L5") + 1:
            log.info("sacrum pseudo-label: none for %s", vol.id)
            continue
        # the L5 the model found must be the annotated L5 (its centroid inside the L5 mask)
        full = _nifti_array(folder / r["mask"])
        l5 = run.detection.vertebrae[labels.index("L5")]
        idx = tuple(round(float(x)) for x in l5.centroid_voxel)
        if full[idx] != 24:
            log.info("sacrum pseudo-label: %s skipped (the found L5 is not the annotated one)", vol.id)
            continue
        z = np.nonzero(full.any(axis=(0, 1)))[0]
        k0 = max(0, int(z.min()) - SLICE_MARGIN)
        grp = run.groups[labels.index("S1")]
        g = run.grid
        H, W = vol.mask.shape[:2]
        rr, cc = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
        pts = g.to_model(np.stack([rr.ravel(), cc.ravel()], 1)).round().astype(int)
        for m in grp.members:
            pm = np.zeros(g.shape, bool)
            pm[m.pixels[:, 0], m.pixels[:, 1]] = True
            inside = (pts[:, 0] >= 0) & (pts[:, 0] < g.shape[0]) & (pts[:, 1] >= 0) & (pts[:, 1] < g.shape[1])
            sel = np.zeros(H * W, bool)
            sel[inside] = pm[pts[inside, 0], pts[inside, 1]]
            sel2 = sel.reshape(H, W)
            for k in run.slice_groups[m.slice_pos]:
                j = k - k0
                if j % SLICE_STRIDE == 0 and 0 <= j // SLICE_STRIDE < vol.mask.shape[2]:
                    plane = vol.mask[:, :, j // SLICE_STRIDE]
                    plane[sel2 & (plane == 0)] = 26
        n += 1
    log.info("sacrum pseudo-labels added to %d volumes", n)
    return n
