"""Know what it is looking at, on real scans: sequence and field of view recognised, answers withheld outside a
model's scope, exit status 3 when nothing is in scope, flags where people look."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw

import openspine
from openspine.cli import main
from openspine.evaluation.detection import Variant, apply_variant
from openspine.levels import Grading, Level
from openspine.render.overlay import BANNER_COLOUR, banner_lines
from openspine.schema import validate_result

from .conftest import shared_data_or_skip

VAL_T2 = "spider/32/image.nii.gz"  # a val patient with a T1 slice too (20: its T2 reads as T1, see the survey)
VAL_T1 = "spider/32/t1.nii.gz"


def test_user_sequence_t1_withholds_every_t2_grade_and_says_why(tmp_path: Path) -> None:
    data = shared_data_or_skip()
    code = main(["-q", "analyze", str(data / VAL_T2), "--sequence", "t1", "--out", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "result.json").read_text())
    validate_result(doc)
    seq = doc["input"]["sequence"]
    assert (seq["value"], seq["source"]) == ("T1", "user")
    # the user's word stands; that the image reads otherwise is recorded and said
    assert seq["image_disagrees"]["value"] == "T2"
    assert any(f.startswith("sequence_note: read as T1 as asked") for f in doc["flags"])
    lumbar = [d for d in doc["discs"] if d["grades"]]
    assert lumbar, "the lumbar discs are still listed"
    for d in lumbar:
        p = d["grades"]["pfirrmann"]
        assert p["grade"] is None and p["available"] is False and "T2 only" in p["note"]
    assert any(f.startswith("grades_withheld:") for f in doc["flags"])
    rows = list(csv.DictReader((tmp_path / "discs.csv").open()))
    assert any(r["grading"] == "pfirrmann" and r["note"].startswith("withheld") for r in rows)
    assert "withheld" in (tmp_path / "report.html").read_text()


def test_real_t1_slice_is_recognised_and_not_graded_by_the_t2_head() -> None:
    data = shared_data_or_skip()
    result = openspine.analyze(data / VAL_T1)
    assert result.input.sequence is not None
    assert result.input.sequence["value"] == "T1" and result.input.sequence["source"] == "image"
    graded = [d for d in result.discs if d.grades]
    assert graded
    for d in graded:
        g = d.grades[Grading.PFIRRMANN]
        assert g.grade is None and g.note is not None and g.note.startswith("withheld")


def test_real_t1_slice_whose_header_says_t2_is_not_graded_and_the_conflict_is_flagged() -> None:
    """A header that names the wrong sequence (a description copied from another protocol) must not carry T1 pixels
    into the T2 heads: the image recogniser and the spinal fluid's signal set it aside."""
    from dataclasses import replace

    data = shared_data_or_skip()
    t1 = openspine.load_scan(data / VAL_T1)
    result = openspine.analyze(replace(t1, source=replace(t1.source, sequence_hint="T2")))
    seq = result.input.sequence or {}
    assert seq["value"] is None and seq["header"] == "T2" and seq["best_guess"] == "T1", seq
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert any(f.startswith("sequence_conflict: the header says T2") for f in result.flags), result.flags
    # the same slice with the header right, and the T2 slice with its header right: no conflict, T2 graded
    t2 = openspine.load_scan(data / VAL_T2)
    right = openspine.analyze(replace(t2, source=replace(t2.source, sequence_hint="T2")))
    seq = right.input.sequence or {}
    assert (seq["value"], seq["source"], seq["image_reading"]["value"]) == ("T2", "header", "T2"), seq
    assert any(g.available for d in right.discs for g in d.grades.values())
    t1_right = openspine.analyze(replace(t1, source=replace(t1.source, sequence_hint="T1")))
    seq = t1_right.input.sequence or {}
    assert (seq["value"], seq["source"], seq["image_reading"]["value"]) == ("T1", "header", "T1"), seq


def test_real_water_fat_volume_whose_header_says_t2_is_not_graded_and_the_conflict_is_flagged() -> None:
    """A water-fat GRE exported with a T2 series description (the header rules read T2) was graded by every head
    without a flag, while the same volume as NIfTI read as other and was not: the image sets the header aside."""
    from dataclasses import replace

    data = shared_data_or_skip()
    gre = openspine.load_scan(data / "fastcleverseg/fcs-vb3-08/image.nii.gz")  # val, water-fat 3D GRE
    result = openspine.analyze(replace(gre, source=replace(gre.source, sequence_hint="T2")))
    seq = result.input.sequence or {}
    assert seq["value"] is None and seq["header"] == "T2" and seq["best_guess"] == "other", seq
    assert result.discs and not any(g.available for d in result.discs for g in d.grades.values())
    assert any(f.startswith("sequence_conflict: the header says T2 but the image reads as other") for f in result.flags)


def _turned(scan: openspine.Scan, degrees: float, header: str) -> openspine.Scan:
    """``scan`` turned in its sagittal plane (a slanted spine; resampled, affine kept), described by ``header``."""
    from dataclasses import replace

    from scipy import ndimage

    from openspine import geometry

    codes = geometry.axcodes(scan.affine)
    axes = tuple(next(i for i, c in enumerate(codes) if c in pair) for pair in ("SI", "AP"))
    array = ndimage.rotate(np.asarray(scan.array, np.float32), degrees, axes=axes, reshape=False, order=1)
    return replace(scan, array=array, source=replace(scan.source, sequence_hint=header))


def test_a_slanted_t1_slice_whose_header_says_t2_is_not_graded_its_t2_partner_is() -> None:
    """Turned 15°, a T1 slice reads T1 less surely (0.79, spinal fluid between the bars) and its T2 header had stood:
    graded by the T2 heads. A lean of 0.7 to the other sequence now sets the header aside; the same patient's T2
    slice, turned alike, keeps its header and its grades."""
    data = shared_data_or_skip()
    t1 = _turned(openspine.load_scan(data / "spider/18/t1.nii.gz"), 15, "T2")  # train
    result = openspine.analyze(t1)
    seq = result.input.sequence or {}
    assert seq["value"] is None and seq["header"] == "T2" and seq["best_guess"] == "T1", seq
    assert 0.7 <= seq["probability"] < 0.9, seq
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert any(f.startswith("sequence_conflict: the header says T2 but the image reads as T1") for f in result.flags)
    t2 = openspine.analyze(_turned(openspine.load_scan(data / "spider/18/image.nii.gz"), 15, "T2"))
    assert (t2.input.sequence or {})["value"] == "T2"
    assert any(g.available for d in t2.discs for g in d.grades.values())


def test_a_slanted_t1_slice_read_t2_under_a_t2_header_is_set_aside_by_its_dark_fluid(tmp_path: Path) -> None:
    """Turned 25°, a T1 slice reads T2 at 0.84 while its spinal fluid is dark (0.62 of bone, T1 below 0.85): under a
    T2 header it had been graded. The fluid sets the header aside, and every text names the fluid, not the image."""
    from openspine.commands import summary_line

    data = shared_data_or_skip()
    result = openspine.analyze(_turned(openspine.load_scan(data / "spider/184/t1.nii.gz"), 25, "T2"))  # train
    seq = result.input.sequence or {}
    assert seq["value"] is None and seq["best_guess"] == "T1" and seq["fluid_says"] == "T1", seq
    assert seq["image_reading"]["value"] == "T2", seq
    assert not any(g.available for d in result.discs for g in d.grades.values())
    conflict = next(f for f in result.flags if f.startswith("sequence_conflict:"))
    assert "the spinal fluid's signal" in conflict and "says T1" in conflict and "image reads as T1" not in conflict
    notes = {g.note for d in result.discs for g in d.grades.values() if g.note}
    assert notes and not any("looks more like T1" in n for n in notes), notes
    assert "the spinal fluid reads T1" in summary_line(Path("t1.nii.gz"), result)
    validate_result(json.loads(result.to_json()))


def test_a_real_view_cut_above_the_sacrum_keeps_its_flagged_labels_but_no_grade(tmp_path: Path) -> None:
    """Without a sacrum in view the labels rest on the bodies' appearance alone (one level off on about a quarter
    of such val views): grades under them would sit at the wrong level in a cohort table, so none is given, and
    the whole slice, sacrum in view, is graded as before."""
    data = shared_data_or_skip()
    img = nib.load(data / VAL_T2)
    whole = openspine.analyze(data / VAL_T2)
    assert sum(d.grades[Grading.PFIRRMANN].available for d in whole.discs if d.grades) >= 5
    l4 = next(v for v in whole.vertebrae if v.label is not None and v.label.value == "L4")
    stop = int(l4.centroid_voxel[0]) + 2  # rows run head to feet: the view ends inside L4, far above the sacrum
    arr = np.asarray(img.dataobj)[:stop]
    nib.save(nib.Nifti1Image(arr, img.affine), tmp_path / "cut.nii.gz")
    assert main(["-q", "analyze", str(tmp_path / "cut.nii.gz"), "--out", str(tmp_path / "out")]) == 0
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    validate_result(doc)
    assert any(v["label"] for v in doc["vertebrae"]), "the labels stay, flagged"
    assert any(f.startswith("labelling_ambiguous: no sacrum visible") for f in doc["flags"])
    graded = [d for d in doc["discs"] if d["grades"]]
    assert graded and not any(g["available"] for d in graded for g in d["grades"].values())
    assert all("no sacrum in view to count the levels from" in d["grades"]["pfirrmann"]["note"] for d in graded)
    assert any(f.startswith("grades_withheld:") and "no sacrum in view" in f for f in doc["flags"])


def test_a_void_over_two_bodies_that_breaks_the_count_leaves_every_disc_ungraded(tmp_path: Path) -> None:
    """A metal implant's void over L4 and L5 of a real picture (a user test's): two bodies were found on its rim and
    every body above labelled one level too high, flagged only ``vertebra_not_detected``, and four discs graded
    under the wrong levels. A body missed between two labelled ones now withholds every grade, and says why."""
    data = shared_data_or_skip()
    source = data / "spider/40/image.png"
    whole = openspine.analyze(source, pixel_spacing=(0.625, 0.625))
    corners = {
        v.label.value: np.asarray(v.outlines[0].corners_voxel)[:, :2]
        for v in whole.vertebrae
        if v.label is not None and v.outlines
    }
    image = np.asarray(Image.open(source).convert("L")).astype(np.float32)
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    both = np.concatenate([corners["L4"], corners["L5"]])
    centre, half_height = both.mean(axis=0), (both[:, 0].max() - both[:, 0].min()) / 2 + 4
    ellipse = ((rows - centre[0]) / half_height) ** 2 + ((cols - centre[1]) / (22 / 0.625)) ** 2
    image[ellipse < 1] = np.random.default_rng(1).normal(2, 1, int((ellipse < 1).sum()))  # the void
    image[(ellipse >= 1) & (ellipse < 1.3)] = 255  # its bright rim
    Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8)).save(tmp_path / "metal.png")
    result = openspine.analyze(tmp_path / "metal.png", pixel_spacing=(0.625, 0.625))
    assert any(f.startswith("vertebra_not_detected: ") for f in result.flags)
    assert not any(g.available for d in result.discs for g in (d.grades or {}).values())
    withheld = next(f for f in result.flags if f.startswith("grades_withheld:"))
    assert "a vertebral body was missed (between " in withheld and "counted across the gap" in withheld


def test_a_display_gamma_that_makes_fluid_brighter_than_any_t2_seen_withholds_the_grades(tmp_path: Path) -> None:
    """A val T2 picture under a display gamma of 2 (a user test's) read T2 at 0.99 and five of its six Pfirrmann
    grades moved, unflagged; its fluid is 6 times as bright as bone, above any T2 the grader was trained on."""
    data = shared_data_or_skip()
    stored = np.asarray(Image.open(data / "spider/34/image.png").convert("L")).astype(np.float64)
    Image.fromarray(((stored / 255) ** 2 * 255).round().astype(np.uint8)).save(tmp_path / "gamma2.png")
    as_stored = openspine.analyze(data / "spider/34/image.png", pixel_spacing=(0.585938, 0.585938))
    assert any(g.available for d in as_stored.discs for g in (d.grades or {}).values())
    assert not any(f.startswith("intensity_unusual") for f in as_stored.flags)
    result = openspine.analyze(tmp_path / "gamma2.png", pixel_spacing=(0.585938, 0.585938))
    assert any(f.startswith("intensity_unusual: the spinal fluid is 6.0 times as bright") for f in result.flags)
    assert not any(g.available for d in result.discs for g in (d.grades or {}).values())
    assert all(v.label is not None for v in result.vertebrae if v.score >= 0.25)  # bodies and labels stay


def test_labels_whose_s1_the_level_fit_placed_alone_get_no_grade() -> None:
    """A train T2 slice (patient 188) whose sacrum the labelling did not identify: its S1 is the level fit's, and a
    cut volume of the same kind had its S2 labelled S1 and graded under wrong levels (user test)."""
    data = shared_data_or_skip()
    result = openspine.analyze(data / "spider/188/image.nii.gz")
    assert any(f.startswith("labelling_ambiguous: the sacrum was not identified") for f in result.flags)
    assert any(v.label is not None for v in result.vertebrae)  # the labels stay, flagged
    withheld = next(f for f in result.flags if f.startswith("grades_withheld:"))
    assert "the body labelled S1 was placed by the level fit alone" in withheld
    assert not any(g.available for d in result.discs for g in (d.grades or {}).values())


def test_an_offset_removed_for_the_fluid_check_alone_is_flagged_too() -> None:
    """A T1 slice is not graded, but its sequence check reads the fluid without the offset: the flag says so."""
    from openspine.scan import Scan

    data = shared_data_or_skip()
    t1 = openspine.load_scan(data / VAL_T1)
    result = openspine.analyze(Scan(np.asarray(t1.array, dtype=np.float32) + 1000, t1.affine, t1.source))
    assert (result.input.sequence or {}).get("value") == "T1"
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert [f for f in result.flags if f.startswith("intensity_offset_removed: the image's black level is 1000")]


def test_real_t2_slice_is_graded_and_each_grade_is_its_most_probable_class() -> None:
    data = shared_data_or_skip()
    result = openspine.analyze(data / VAL_T2)
    assert result.out_of_scope is None
    graded = [g for d in result.discs for g in d.grades.values() if g.available]
    assert graded
    for g in graded:
        probs = g.probabilities or {}
        assert g.grade is not None and str(g.grade) == max(probs, key=lambda k: probs[k])
    assert any(g.balanced_grade is not None for g in graded)  # the stacked heads' class-balanced decision


def test_cervical_scan_gets_no_lumbar_label() -> None:
    data = shared_data_or_skip()
    result = openspine.analyze(data / "sct/sct-example-t2/image.nii.gz")
    labels = [v.label for v in result.vertebrae if v.label is not None]
    assert not [lv for lv in labels if lv.region in ("lumbar", "sacral")], labels
    assert result.input.field_of_view is not None and "cervical" in result.input.field_of_view["regions"]
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert any(f.startswith("cervical_field_of_view") for f in result.flags)
    # nothing speaks of the lumbar count the detector guessed: no sacrum, no T12 … L5, no grading attempt
    lumbar_words = ("sacrum", "S1", "L1", "L5", "T12")
    assert not [f for f in result.flags if any(w in f for w in lumbar_words)], result.flags
    assert not [v.note for v in result.vertebrae if v.note and any(w in v.note for w in lumbar_words)]
    assert "cervical" in result.steps_not_run["grading"]
    # its withheld labels vouch for nothing: the orientation is read from the image
    assert result.input.way_round is not None and result.input.way_round["source"] == "image"
    assert result.input.way_round["value"] == "right way round"


def test_a_cervical_volume_with_thick_slices_is_no_montage() -> None:
    # every third slice (3 mm apart): two detections in the pharynx, scored 0.00, had stood as a second column of
    # bodies beside the spine, and the volume was refused as "2 spines side by side (a montage …)"
    data = shared_data_or_skip()
    img = nib.load(data / "sct/sct-example-t2/image.nii.gz")  # (P, S, R)
    affine = img.affine.copy()
    affine[:3, 2] *= 3
    result = openspine.analyze(openspine.Scan(np.asarray(img.dataobj)[:, :, ::3], affine))
    assert result.out_of_scope is None and not any(f.startswith("spines_side_by_side") for f in result.flags)
    assert any(f.startswith("cervical_field_of_view") for f in result.flags)
    assert not [v.label for v in result.vertebrae if v.label is not None]


def test_cervical_picture_without_a_pixel_size_is_read_as_cervical_not_lumbar(tmp_path: Path) -> None:
    """The pixel-size estimate takes bodies for lumbar ones: a cervical picture came out twice its size, looked
    lumbar and got T11 … S1 and Pfirrmann grades. Read at the size cervical bodies give, it is cervical again."""
    data = shared_data_or_skip()
    view = openspine.load_scan(data / "sct/sct-example-t2/image.nii.gz").to_sagittal()
    mid = view.scan.array[:, :, view.scan.shape[2] // 2].astype(np.float64)
    png = tmp_path / "cervical.png"
    Image.fromarray(np.uint8(255 * np.clip(mid / np.percentile(mid, 99.5), 0, 1))).save(png)
    code = main(["-q", "analyze", str(png), "--pixel-spacing", "auto", "--out", str(tmp_path / "o")])
    assert code == 0
    doc = json.loads((tmp_path / "o" / "result.json").read_text())
    assert doc["input"]["field_of_view"]["value"] == "cervical"
    assert all(v["label"] is None for v in doc["vertebrae"])
    assert not any(g["available"] for d in doc["discs"] for g in d["grades"].values())
    assert any(f.startswith("pixel_spacing_estimated:") and "read as a cervical spine" in f for f in doc["flags"])
    assert 0.8 < doc["input"]["spacing_mm"][0] < 1.25  # the true pixel is 1 mm (lumbar reading: 2.1 mm)


@pytest.mark.parametrize("pattern", ["checkerboard", "ladder"])
def test_patterns_that_are_no_spine_are_not_graded(tmp_path: Path, pattern: str) -> None:
    """A checkerboard or a ladder of bright rectangles gave three or four bodies, each scored below 0.25, labelled
    and graded Pfirrmann 4–5. Where no body is sure, nothing is graded and the flag says why."""
    if pattern == "checkerboard":
        img = ((np.indices((512, 512)) // 32).sum(0) % 2 * 255).astype(np.uint8)
    else:
        img = np.zeros((512, 512), np.uint8)
        for k in range(8):
            img[40 + k * 55 : 80 + k * 55, 180:300] = 200
    noise = np.random.default_rng(0).normal(0, 12, img.shape)  # grey levels enough not to be refused as a mask
    png = tmp_path / f"{pattern}.png"
    Image.fromarray(np.clip(img * 0.7 + 30 + noise, 0, 255).astype(np.uint8)).save(png)
    result = openspine.analyze(png, pixel_spacing=(0.7, 0.7))
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert result.out_of_scope is not None  # nothing in scope: exit status 3
    if "not sagittal" in result.out_of_scope:  # recogniser 1.1 calls both patterns coronal: refused before any body
        return
    assert result.out_of_scope.startswith("every vertebral body scored below 0.25")
    assert result.vertebrae and all(v.score < 0.25 for v in result.vertebrae)  # kept, unlabelled, to show what was seen
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert "too unsure that this is a spine" in result.steps_not_run["grading"]
    assert all(v.label is None for v in result.vertebrae) and all(d.level is None for d in result.discs)
    assert any(f.startswith("labels_withheld: every body (") for f in result.flags)
    assert any("every vertebral body scored below 0.25" in f for f in result.flags)


def test_a_thresholded_real_slice_is_refused_as_a_mask(tmp_path: Path) -> None:
    data = shared_data_or_skip()
    img = nib.load(data / VAL_T2)
    binary = (np.asarray(img.dataobj) > 80).astype(np.uint8)
    nib.save(nib.Nifti1Image(binary, img.affine), tmp_path / "thresholded.nii.gz")
    assert main(["-q", "analyze", str(tmp_path / "thresholded.nii.gz"), "--out", str(tmp_path / "out")]) == 3
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert "only 2 distinct intensities" in doc["out_of_scope"] and doc["discs"] == []
    # the same slice exported with 5 bits (32 grey levels) is a coarse picture, not a mask: analysed
    a = np.asarray(img.dataobj).astype(np.float32)
    coarse = np.round(31 * (a - a.min()) / np.ptp(a)).astype(np.uint8)
    assert np.unique(coarse).size == 32
    assert openspine.analyze(openspine.Scan(coarse, img.affine)).out_of_scope is None


def test_a_t1_slice_also_read_as_a_negative_says_first_that_it_is_no_t2() -> None:
    """Patient 1's T1 slice leans bright enough to read as a negative: the command line's "grading not run" gave the
    inversion alone, while every disc's note named the sequence first."""
    data = shared_data_or_skip()
    result = openspine.analyze(data / "spider/1/t1.nii.gz")
    assert any(f.startswith("intensity_inverted") for f in result.flags)
    why = result.steps_not_run["grading"]
    assert why.startswith("the grader was trained on T2 only") and "inverted" in why


def test_a_negative_of_a_real_slice_keeps_its_bodies_but_is_not_graded() -> None:
    """The negative of a T2 slice (a MONOCHROME1 image read without inversion) was read as T2 and graded Pfirrmann 1
    at every level: its dark, degenerated discs look bright."""
    data = shared_data_or_skip()
    img = nib.load(data / VAL_T2)
    arr = np.asarray(img.dataobj).astype(np.float32)
    result = openspine.analyze(openspine.Scan(arr.max() + arr.min() - arr, img.affine))
    assert result.out_of_scope is None and result.vertebrae
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert any(f.startswith("intensity_inverted: the image looks inverted") for f in result.flags)
    assert "inverted" in result.steps_not_run["grading"]
    # each requested disc says why, in result.json, the CSV and the report (not an empty row)
    lumbar = [d for d in result.discs if d.level is not None and d.level.value != "T11-T12"]
    notes = [d.grades[Grading.PFIRRMANN].note or "" for d in lumbar]
    assert lumbar and all(n.startswith("withheld: ") and "the image looks inverted" in n for n in notes), notes
    # inside a black frame (a screenshot, a slide) it is still a negative
    h, w = arr.shape[:2]
    framed = np.zeros((h + 2 * (h // 5), w + 2 * (w // 5), 1), np.float32)
    framed[h // 5 : h // 5 + h, w // 5 : w // 5 + w] = arr.max() + arr.min() - arr
    in_frame = openspine.analyze(openspine.Scan(framed, img.affine))
    assert not any(g.available for d in in_frame.discs for g in d.grades.values())
    assert any(f.startswith("intensity_inverted") for f in in_frame.flags)
    # the slice itself on a white page (a figure cut from a paper) is no negative
    page = np.full_like(framed, arr.max())
    page[h // 5 : h // 5 + h, w // 5 : w // 5 + w] = arr
    on_page = openspine.analyze(openspine.Scan(page, img.affine))
    assert not any(f.startswith("intensity_inverted") for f in on_page.flags)
    assert any(g.available for d in on_page.discs for g in d.grades.values())
    as_stored = openspine.analyze(data / VAL_T2)
    assert not any(f.startswith("intensity_inverted") for f in as_stored.flags)
    assert any(g.available for d in as_stored.discs for g in d.grades.values())


def test_a_negative_with_a_near_symmetric_histogram_is_told_by_its_bright_edges() -> None:
    """The negative of spider-63's T2 slice leans to the bright end too little for the skewness rule (-0.15 as stored,
    0.15 inverted) and was graded Pfirrmann 1 at every level (user test): its edges, where MR shows dark air, are
    bright. The slice itself, and its central half (bright tissue at every edge), are no negatives."""
    from openspine.grading.intensity import MAX_SKEWNESS_INVERTED, bright_border, intensity_skewness, inverted_contrast

    data = shared_data_or_skip()
    img = nib.load(data / "spider/63/image.nii.gz")
    arr = np.asarray(img.dataobj).astype(np.float32)
    negative = openspine.Scan(arr.max() + arr.min() - arr, img.affine).to_sagittal()
    assert intensity_skewness(negative) > MAX_SKEWNESS_INVERTED  # not caught by the skewness
    why = inverted_contrast(negative)
    assert why is not None and "of its edges are among its brightest values" in why
    assert bright_border(negative)[0] >= 0.5
    h, w = arr.shape[:2]
    m = h // 33  # a thin white margin on every side (3 %: a figure cut close) is no air: 36 of 80 slices had read so
    margin = np.pad(arr, ((m, m), (m, m), (0, 0)), constant_values=float(arr.max()))
    for view in (
        openspine.Scan(arr, img.affine),
        openspine.Scan(arr[h // 4 : -h // 4, w // 4 : -w // 4], img.affine),
        openspine.Scan(margin, img.affine),
    ):
        assert inverted_contrast(view.to_sagittal()) is None
    assert bright_border(openspine.Scan(margin, img.affine).to_sagittal())[0] < 0.5  # read within the margin
    result = openspine.analyze(openspine.Scan(arr.max() + arr.min() - arr, img.affine))
    assert any(f.startswith("intensity_inverted") for f in result.flags)
    assert not any(g.available for d in result.discs for g in d.grades.values())
    # no sequence read from a negative's grey levels (inverted T1 slices had been recorded as T2; user test)
    assert result.input.sequence is not None and result.input.sequence["value"] is None
    assert result.input.sequence["not_read_from"] == "a negative"  # told by its edges: no display gamma does that
    said = next(f for f in result.flags if f.startswith("sequence_uncertain"))
    assert "not read from the image, whose grey levels are no MR contrast (a negative;" in said


def _grey_picture(data: Path) -> tuple[Image.Image, tuple[float, float]]:
    """The val T2 slice as an 8-bit picture, as analysed (head up, front on the left), and its pixel size."""
    view = openspine.load_scan(data / VAL_T2).to_sagittal()
    a = np.asarray(view.scan.array)[:, :, 0].astype(np.float32)
    grey = (255 * (a - a.min()) / np.ptp(a)).astype(np.uint8)
    return Image.fromarray(grey), (view.scan.spacing[0], view.scan.spacing[1])


def test_a_false_colour_picture_gets_no_sequence_from_its_image(tmp_path: Path) -> None:
    """A jet rendering of a T2 slice (user test) was recorded as T1 from the image, its grades withheld as 'this scan
    is T1': its grey levels are no MR contrast, so the image names no sequence (its guess kept as best_guess)."""
    from matplotlib import colormaps

    data = shared_data_or_skip()
    grey, spacing = _grey_picture(data)
    jet = (255 * colormaps["jet"](np.asarray(grey) / 255.0)[..., :3]).astype(np.uint8)
    Image.fromarray(jet).save(tmp_path / "jet.png")
    result = openspine.analyze(tmp_path / "jet.png", pixel_spacing=spacing)
    assert any(f.startswith("picture_in_colour: ") for f in result.flags)
    sequence = result.input.sequence
    assert sequence["value"] is None and sequence["source"] == "image" and sequence["best_guess"]
    assert sequence["not_read_from"] == "a picture in colour"
    assert not any(g.available for d in result.discs for g in d.grades.values())


def test_colour_drawings_over_the_spine_withhold_the_grades_colour_in_a_corner_does_not(tmp_path: Path) -> None:
    """openspine's overlay saved by hand (no PNG key) was graded from its drawn outlines; a screenshot with coloured
    text in a corner, or a grey picture saved as RGB JPEG, is graded as the grey picture is."""
    data = shared_data_or_skip()
    grey, spacing = _grey_picture(data)
    openspine.analyze(data / VAL_T2).overlay().save(tmp_path / "screenshot.png")  # no openspine key
    drawn = openspine.analyze(tmp_path / "screenshot.png", pixel_spacing="auto")
    assert not any(g.available for d in drawn.discs for g in d.grades.values())
    assert any(f.startswith("picture_in_colour: ") and "around the spine are in colour" in f for f in drawn.flags)
    corner = grey.convert("RGB")
    ImageDraw.Draw(corner).rectangle((0, 0, 60, 25), fill=(255, 255, 0))  # a screenshot's coloured caption
    corner.save(tmp_path / "corner.png")
    grey.convert("RGB").save(tmp_path / "grey.jpg", quality=40)
    for name in ("corner.png", "grey.jpg"):
        result = openspine.analyze(tmp_path / name, pixel_spacing=spacing)
        assert not any(f.startswith("picture_in_colour") for f in result.flags), name
        assert any(g.available for d in result.discs for g in d.grades.values()), name


def test_upper_thoracic_spine_gets_no_lumbar_label() -> None:
    """The lower half of sct-example-t2 shows the upper thoracic spine, which the detector never saw; it finds two
    bodies there and reads them as L5 and S1. Two bodies are too few to count levels from: no label, no grade."""
    data = shared_data_or_skip()
    img = nib.load(data / "sct/sct-example-t2/image.nii.gz")  # stored P, S, R: the second axis runs up
    arr = np.asarray(img.dataobj)[:, : img.shape[1] // 2]
    result = openspine.analyze(openspine.Scan(arr, img.affine))
    assert result.vertebrae and len(result.vertebrae) < 3, [v.label for v in result.vertebrae]
    assert all(v.label is None for v in result.vertebrae) and all(d.level is None for d in result.discs)
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert any(f.startswith("labels_withheld") and "too little of a spine" in f for f in result.flags)


def test_upper_thoracic_bodies_all_scored_low_get_no_label() -> None:
    """The lowest third of sct-example-t2 (about T2-T5) gave four bodies, each scored below 0.25, labelled T11 … L2
    with its "L1" at the level of T4: bodies the detector is that unsure of get no label."""
    data = shared_data_or_skip()
    img = nib.load(data / "sct/sct-example-t2/image.nii.gz")  # stored P, S, R: the second axis runs up
    arr = np.asarray(img.dataobj)[:, : img.shape[1] // 3]
    result = openspine.analyze(openspine.Scan(arr, img.affine))
    assert len(result.vertebrae) >= 3 and all(v.score < 0.25 for v in result.vertebrae)
    assert all(v.label is None for v in result.vertebrae) and all(d.level is None for d in result.discs)
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert any(f.startswith("labels_withheld: every body") and "scored below 0.25" in f for f in result.flags)
    assert result.input.field_of_view is not None and result.input.field_of_view["value"] == "none"
    # nothing is in scope (exit status 3, batch stage 'scope'); the bodies stay, unlabelled, to show what was seen
    assert (result.out_of_scope or "").startswith("every vertebral body scored below 0.25")
    assert result.steps_not_run["labelling"] == result.out_of_scope


def test_bodies_far_closer_together_than_lumbar_ones_get_no_label() -> None:
    """An upper thoracic crop (T1-T5 region of a cervico-thoracic scan) had been labelled L4, L5, S1 and graded."""
    data = shared_data_or_skip()
    img = nib.load(data / "sct/sct-example-t2/image.nii.gz")  # axis 1 runs to the head; rows 0-120: ~T1-T5
    crop = np.asarray(img.dataobj)[:, :120, :]
    result = openspine.analyze(openspine.Scan(crop, img.affine))
    assert result.vertebrae and all(v.label is None for v in result.vertebrae)
    assert not any(g.available for d in result.discs for g in d.grades.values())
    withheld = next(f for f in result.flags if f.startswith("labels_withheld: every body"))
    assert "mm apart (centre to centre), closer together than lumbar or lower thoracic bodies lie" in withheld


def test_bodies_closer_together_than_on_any_shared_scan_are_flagged_and_not_graded() -> None:
    """A SPIDER val picture given a pixel size 10 % too small had every label one level off (its L5 taken as S1),
    graded, with no flag (user test): its bodies lie closer together than on any shared scan. At its true pixel size
    it is labelled and graded as before."""
    data = shared_data_or_skip()
    png = data / "spider/212/image.png"
    true = float(json.loads((data / "spider/212/meta.json").read_text())["pixel_spacing_mm"][0])
    right = openspine.analyze(png, pixel_spacing=(true, true))
    assert not any(f.startswith("labelling_ambiguous") for f in right.flags)
    assert any(g.available for d in right.discs for g in d.grades.values())
    small = openspine.analyze(png, pixel_spacing=(0.9 * true, 0.9 * true))
    (flag,) = [f for f in small.flags if f.startswith("labelling_ambiguous: the vertebral bodies lie")]
    assert "closer together than on any scan the detector was trained and validated on (22.6-57.7 mm)" in flag
    assert small.vertebrae and not any(g.available for d in small.discs for g in d.grades.values())
    assert any(f.startswith("grades_withheld:") and "a wrong scale" in f for f in small.flags)


@pytest.mark.parametrize("rows", [(0, 110), (30, 110), (20, 130)])
def test_upper_thoracic_windows_read_as_lumbar_get_no_label_for_their_small_bodies(rows: tuple[int, int]) -> None:
    """Windows of the lower cervical and upper thoracic spine of sct-example-t2 (a region the detector never saw)
    had been labelled L2 … S1, with an S1 taken for the sacrum, and graded without any labelling flag; their bodies,
    read as lumbar, are 9-13 mm deep where lumbar ones are 16 mm and more."""
    data = shared_data_or_skip()
    img = nib.load(data / "sct/sct-example-t2/image.nii.gz")  # axis 1 runs to the head
    (window,), affine = apply_variant([np.asarray(img.dataobj)], img.affine, Variant("window", keep=rows))
    result = openspine.analyze(openspine.Scan(window, affine))
    assert result.vertebrae and all(v.label is None for v in result.vertebrae)
    assert not any(g.available for d in result.discs for g in d.grades.values())
    withheld = next(f for f in result.flags if f.startswith("labels_withheld: every body"))
    assert "mm deep (front to back), smaller than lumbar bodies are" in withheld


def test_an_upper_thoracic_window_whose_bodies_are_shallower_than_any_lumbar_ones_seen_is_flagged_not_graded() -> None:
    """An 80 mm window of sct-example-t2 from 55 mm above its lower edge (upper thoracic spine) is read as L3 … S1,
    its bodies 13.9 mm deep: labelled (above the 13 mm bound), but with no flag it had looked like a lumbar view.
    Shallower than on any shared scan the detector labels (15.7 mm and more), it is flagged and not graded."""
    data = shared_data_or_skip()
    img = nib.load(data / "sct/sct-example-t2/image.nii.gz")  # axis 1 runs to the head, 1 mm rows
    (window,), affine = apply_variant([np.asarray(img.dataobj)], img.affine, Variant("window", keep=(55, 135)))
    result = openspine.analyze(openspine.Scan(window, affine))
    assert any(v.label is not None and v.label.region == "lumbar" for v in result.vertebrae)
    flag = next(f for f in result.flags if f.startswith("labelling_ambiguous: the bodies labelled lumbar are"))
    assert "shallower than on any scan the detector was trained and validated on (15.7 mm and more)" in flag
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert any(f.startswith("grades_withheld:") and "shallower" in f for f in result.flags)


@pytest.mark.parametrize("rows", [55, 70])
def test_an_upper_thoracic_view_reaching_l5_only_through_doubtful_bodies_is_not_graded(rows: int) -> None:
    """The lowest 55 or 70 rows of sct-example-t2 (down to about T5; a user test) had been labelled L3 … L5 or
    L2 … L5, without a sacrum, and graded: the view reached L5 only through bodies scored 0.00."""
    data = shared_data_or_skip()
    img = nib.load(data / "sct/sct-example-t2/image.nii.gz")  # axis 1 runs to the head
    result = openspine.analyze(openspine.Scan(np.asarray(img.dataobj)[:, :rows, :], img.affine))
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert [v.label.value for v in result.vertebrae if v.label][-1] == "L5"  # labels kept, flagged
    assert any(f.startswith("labelling_ambiguous: no sacrum visible") for f in result.flags)
    withheld = next(f for f in result.flags if f.startswith("grades_withheld: "))
    assert "the view does not surely reach L5 (the lowest body scored 0.25 or more is labelled" in withheld


def test_an_upper_thoracic_window_whose_s1_the_detector_doubts_is_not_graded() -> None:
    """A 60 mm window of sct-example-t2 (rows 10 on) had its S1 (0.00) placed by the level fit alone, its L4 and L5
    scored 0.01 and 0.03, and was graded as lumbar."""
    data = shared_data_or_skip()
    img = nib.load(data / "sct/sct-example-t2/image.nii.gz")  # axis 1 runs to the head
    rows = round(60 / float(np.linalg.norm(img.affine[:3, 1])))
    (window,), affine = apply_variant([np.asarray(img.dataobj)], img.affine, Variant("window", keep=(10, 10 + rows)))
    result = openspine.analyze(openspine.Scan(window, affine))
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert [v.label for v in result.vertebrae if v.label]  # labels kept, flagged
    assert any(f.startswith("labelling_ambiguous: ") for f in result.flags)
    # (a sliver beside its second body, 14 mm off, is now dropped as crowded: the S1 guess went with it)
    withheld = next(f for f in result.flags if f.startswith("grades_withheld: "))
    assert "no sacrum" in withheld


def test_a_sagittal_volume_saved_with_an_identity_affine_gets_no_label_and_a_flag(tmp_path: Path) -> None:
    """np.eye(4) names the stored sagittal slices' axes wrongly: the volume is resliced across its true axes."""
    data = shared_data_or_skip()
    img = nib.load(data / "fastcleverseg/fcs-vb2-05/image.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), np.eye(4)), tmp_path / "eye.nii.gz")
    result = openspine.analyze(tmp_path / "eye.nii.gz")
    assert [f for f in result.flags if f.startswith("nifti_default_affine")]
    assert all(v.label is None for v in result.vertebrae)
    assert not any(g.available for d in result.discs for g in d.grades.values())


def test_a_cervical_crop_without_bodies_is_refused_as_cervical_not_as_no_spine() -> None:
    """sct-testing-t1 (a small cervical T1 crop) gives the detector no body: the reason is the cervical view the
    detector was not trained on, as the recogniser sees it, not 'does not look like a sagittal spine image'."""
    result = openspine.analyze(shared_data_or_skip() / "sct/sct-testing-t1/image.nii.gz")
    assert result.out_of_scope is not None and not result.vertebrae
    assert result.out_of_scope.startswith("no vertebral body detected: the image shows the cervical spine (probability")
    assert "no vertebral body detected" not in result.flags  # said once, by the reason
    assert result.input.field_of_view is not None and result.input.field_of_view["value"] == "cervical"


def test_cervical_volume_stored_upside_down_is_refused_with_nothing_left_over() -> None:
    data = shared_data_or_skip()
    img = nib.load(data / "sct/sct-example-t2/image.nii.gz")  # stored P, S, R: the second axis runs up
    arr = np.ascontiguousarray(np.asarray(img.dataobj)[:, ::-1])
    result = openspine.analyze(openspine.Scan(arr, img.affine))
    assert result.out_of_scope is not None and "upside down" in result.out_of_scope
    assert not result.vertebrae and not result.discs
    assert not [f for f in result.flags if f.startswith(("cervical_field_of_view", "labels_withheld", "not graded"))]
    assert result.steps_not_run["labelling"] == result.out_of_scope
    validate_result(result.to_dict())


def test_non_spine_image_exits_3_with_the_reason_in_result_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    from scipy.ndimage import gaussian_filter

    arr = gaussian_filter(rng.normal(size=(256, 256)), 6)[:, :, None].astype(np.float32)
    arr -= arr.min()  # a magnitude image (values symmetric about 0 are refused as a phase image before detection)
    path = tmp_path / "texture.nii.gz"
    sagittal = np.array([[0, 0, 4.0, 0], [0, -0.8, 0, 0], [-0.8, 0, 0, 0], [0, 0, 0, 1]])  # rows S→I, cols A→P
    nib.save(nib.Nifti1Image(arr, sagittal), path)
    code = main(["analyze", str(path), "--out", str(tmp_path / "out")])
    assert code == 3
    err = capsys.readouterr().err
    assert "out of scope" in err and "no vertebral body" in err
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    validate_result(doc)
    assert "no vertebral body" in doc["out_of_scope"]
    assert doc["vertebrae"] == [] and "grading" in doc["steps_not_run"]


def test_a_slice_in_hounsfield_units_exits_3_the_same_slice_with_a_small_offset_is_analysed(tmp_path: Path) -> None:
    """A CT (or an MR phase image) is no MR magnitude image: no model of openspine has seen one. Here the real T2
    slice is mapped into a CT's range (air -1024) as a NIfTI carries no modality to say so."""
    data = shared_data_or_skip()
    img = nib.load(data / VAL_T2)
    arr = np.asarray(img.dataobj).astype(np.int16)
    nib.save(nib.Nifti1Image(arr * 8 - 1024, img.affine), tmp_path / "hu.nii.gz")  # air -1024, brightest +1016
    assert main(["-q", "analyze", str(tmp_path / "hu.nii.gz"), "--out", str(tmp_path / "out")]) == 3
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert "looks like a CT in Hounsfield units" in doc["out_of_scope"] and doc["vertebrae"] == []
    # a few units below zero (a baseline offset), or rescaled to [-1, 1] for a network, is still a magnitude image
    a = arr.astype(np.float32)
    for stored in (a - 5, 2 * (a - a.min()) / np.ptp(a) - 1, a - 1000):  # the 8-bit slice offset by -1000: no bone
        kept = openspine.analyze(openspine.Scan(stored, img.affine))
        assert kept.out_of_scope is None and any(g.available for d in kept.discs for g in d.grades.values())


def test_a_series_whose_header_says_ct_exits_3_and_beside_an_mr_series_the_mr_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pydicom.uid import CTImageStorage

    from dicom_fixtures import new_ids, write_series

    data = shared_data_or_skip()
    img = nib.load(data / "fastcleverseg/fcs-vb2-13/image.nii.gz")
    arr = np.asarray(img.dataobj)
    mid = arr.shape[2] // 2
    aff = img.affine.copy()
    aff[:3, 3] = img.affine[:3, :3] @ np.array([0, 0, mid - 6]) + img.affine[:3, 3]
    aff[:3, 2] = img.affine[:3, 2] * 3  # 5 slices 3 mm apart: a quick series
    mr = np.ascontiguousarray(arr[:, :, mid - 6 : mid + 7 : 3])
    ids = new_ids()
    write_series(tmp_path / "ct", mr, aff, ids=ids, series_number=7, description="SAG SPINE", prefix="C")
    for f in (tmp_path / "ct").iterdir():  # the same pixels labelled as a CT reformat
        ds = pydicom.dcmread(f)
        ds.Modality, ds.SOPClassUID = "CT", CTImageStorage
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.save_as(f)
    assert main(["-q", "analyze", str(tmp_path / "ct"), "--out", str(tmp_path / "out")]) == 3
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["out_of_scope"].startswith("the series is a CT (DICOM Modality CT), not MR")
    assert main(["info", str(tmp_path / "ct")]) == 0  # info says so before any analysis
    assert "main (not analysed: CT, not MR)" in capsys.readouterr().out
    # the study's MR series beside it (fewer slices) is the one analysed
    study = tmp_path / "study"
    shutil.copytree(tmp_path / "ct", study)
    mr_ids = new_ids(study_uid=ids.study_uid, frame_of_reference_uid=ids.frame_of_reference_uid)
    write_series(study, mr[:, :, 1:4], aff, ids=mr_ids, series_number=3, prefix="M")
    result = openspine.analyze(study)
    assert result.out_of_scope is None and result.input.series.get("modality") == "MR", result.input.series
    assert len([v for v in result.vertebrae if v.label is not None]) >= 5


def test_a_12_bit_mr_series_stored_with_an_offset_of_minus_1000_is_analysed_where_its_header_says_mr(
    tmp_path: Path,
) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from dicom_fixtures import write_series

    data = shared_data_or_skip()
    img = nib.load(data / "fastcleverseg/fcs-vb2-13/image.nii.gz")
    arr = np.asarray(img.dataobj).astype(np.int32)
    mid = arr.shape[2] // 2
    aff = img.affine.copy()
    aff[:3, 3] = img.affine[:3, :3] @ np.array([0, 0, mid - 3]) + img.affine[:3, 3]
    aff[:3, 2] = img.affine[:3, 2] * 3
    # 12 bits, the background at 0, stored with RescaleIntercept -1000: air-like -1000 and values far above 200
    twelve_bit = (np.clip(arr[:, :, mid - 3 : mid + 4 : 3] - 36, 0, None) * 16).astype(np.uint16)
    write_series(tmp_path / "mr", np.ascontiguousarray(twelve_bit), aff, intercept=-1000.0)
    result = openspine.analyze(tmp_path / "mr")
    assert result.out_of_scope is None and len([v for v in result.vertebrae if v.label is not None]) >= 5
    # the same values in a NIfTI, which names no modality, read as a CT's: refused (as documented)
    nifti = tmp_path / "offset.nii.gz"
    nib.save(nib.Nifti1Image(twelve_bit.astype(np.float32) - 1000, aff), str(nifti))
    refused = openspine.analyze(nifti)
    assert refused.out_of_scope is not None and "Hounsfield" in refused.out_of_scope


@pytest.mark.parametrize("spacing", [["1", "1"], ["auto"]])
def test_axial_picture_exits_3(tmp_path: Path, spacing: list[str]) -> None:
    data = shared_data_or_skip()
    vol = np.asarray(nib.load(data / "fastcleverseg/fcs-vb2-13/image.nii.gz").dataobj, dtype=np.float32)
    # the volume is [S→I, A→P, L→R]: an axial picture is one row, shown with anterior up and left on the right
    axial = vol[vol.shape[0] // 2, :, ::-1]
    png = tmp_path / "axial.png"
    Image.fromarray(np.clip(axial / max(float(axial.max()), 1.0) * 255, 0, 255).astype(np.uint8)).save(png)
    code = main(["-q", "analyze", str(png), "--pixel-spacing", *spacing, "--out", str(tmp_path / "out")])
    assert code == 3
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert "not sagittal" in doc["out_of_scope"] and doc["input"]["plane"]["value"] == "axial"


def _without_orientation(path: Path, arr: np.ndarray) -> Path:
    img = nib.Nifti1Image(arr, np.eye(4))
    img.set_sform(None, code=0)
    img.set_qform(None, code=0)
    nib.save(img, str(path))
    return path


def test_nifti_without_orientation_is_flagged_and_its_plane_judged_from_the_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sform and qform codes 0: no orientation in the header. The volume is read as a picture is (each slice as
    displayed), flagged, and its plane is the image recogniser's: analysed where it looks sagittal, exit status 3 where
    it does not (nibabel's made-up affine would have shown the models an axial view and called it sagittal)."""
    data = shared_data_or_skip()
    vol = np.asanyarray(nib.load(data / "fastcleverseg/fcs-vb2-13/image.nii.gz").dataobj)  # [S→I, A→P, L→R]
    sagittal = _without_orientation(tmp_path / "codes0.nii.gz", vol)
    out = tmp_path / "sagittal"
    assert main(["analyze", str(sagittal), "--out", str(out), "--formats", "json,nifti"]) == 0
    printed = capsys.readouterr().out
    assert "flag: orientation_unknown: the NIfTI's sform and qform codes are 0" in printed
    doc = json.loads((out / "result.json").read_text())
    validate_result(doc)
    assert doc["flags"][0].startswith("orientation_unknown: the NIfTI's sform and qform codes are 0")
    assert doc["input"]["plane"]["value"] == "sagittal" and doc["input"]["plane"]["source"] == "image"
    assert [v["label"] for v in doc["vertebrae"] if v["label"]][-3:] == ["L4", "L5", "S1"]
    labels = nib.load(out / "labels.nii.gz")  # claims no orientation either: a viewer places it as the input
    assert int(labels.header["sform_code"]) == int(labels.header["qform_code"]) == 0
    np.testing.assert_allclose(labels.affine, nib.load(sagittal).affine)

    # the same voxels stored so that each slice as displayed is coronal: refused, one line
    coronal = _without_orientation(tmp_path / "coronal.nii.gz", np.ascontiguousarray(np.transpose(vol, (0, 2, 1))))
    assert main(["-q", "analyze", str(coronal), "--out", str(tmp_path / "coronal")]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "out of scope: the image looks coronal" in err[0] and "gives no orientation" in err[0]
    doc = json.loads((tmp_path / "coronal" / "result.json").read_text())
    assert doc["out_of_scope"].startswith("the image looks coronal") and doc["vertebrae"] == []
    assert doc["input"]["plane"]["value"] == "coronal" and doc["input"]["plane"]["source"] == "image"
    assert doc["flags"][0].startswith("orientation_unknown:")


def test_nifti_without_orientation_showing_the_front_on_the_right_is_read_mirrored(tmp_path: Path) -> None:
    """Read as a picture is, a codes-0 volume stored facing right is read mirrored as a picture would be."""
    data = shared_data_or_skip()
    vol = np.asanyarray(nib.load(data / "fastcleverseg/fcs-vb2-13/image.nii.gz").dataobj)  # [S→I, A→P, L→R]
    facing_left = openspine.analyze(_without_orientation(tmp_path / "left.nii.gz", vol))
    reversed_ap = np.ascontiguousarray(vol[:, ::-1])
    facing_right = openspine.analyze(_without_orientation(tmp_path / "right.nii.gz", reversed_ap))
    assert (facing_right.input.way_round or {}).get("read_mirrored") is True
    assert any(f.startswith("picture_mirrored:") for f in facing_right.flags)
    assert [v.label for v in facing_right.vertebrae] == [v.label for v in facing_left.vertebrae]


def test_a_slice_scaled_by_1e36_is_analysed_quietly_as_the_slice_itself() -> None:
    import warnings
    from dataclasses import replace

    data = shared_data_or_skip()
    scan = openspine.load_scan(data / VAL_T2)
    huge = replace(scan, array=scan.array.astype(np.float32) * np.float32(1e36))  # near float32's largest
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # float32 overflow in the detector and the disc features
        result = openspine.analyze(huge)
    expected = openspine.analyze(scan)
    assert result.out_of_scope is None and result.flags == expected.flags
    assert [v.label for v in result.vertebrae] == [v.label for v in expected.vertebrae]
    assert [{k: g.grade for k, g in d.grades.items()} for d in result.discs] == [
        {k: g.grade for k, g in d.grades.items()} for d in expected.discs
    ]


def test_cli_summary_names_every_flag_and_the_overlay_carries_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = shared_data_or_skip()
    assert main(["analyze", str(data / VAL_T2), "--sequence", "STIR", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["flags"]
    for flag in doc["flags"]:
        assert f"flag: {flag}" in out
    result = openspine.analyze(data / VAL_T2, sequence="STIR")
    lines = banner_lines(result, 1000, 7.0)
    assert lines and any(line.startswith("grades_withheld") for line in lines)
    picture = np.asarray(result.overlay(width=1000))
    assert tuple(picture[46, 5]) == BANNER_COLOUR  # the banner under the title


def test_an_unsure_call_that_looks_like_t1_withholds_and_sequence_t2_grades(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    import openspine.recognition as recognition

    data = shared_data_or_skip()
    # spider-20's T2 slice: recogniser 1.0 read it as more likely T1 (0.78), and its fluid signal lies between the
    # thresholds; 1.1 reads it as T2, so that reading is given here to keep the rule under test
    real = recognition.recognise

    def reads_t1(view):  # type: ignore[no-untyped-def]
        r = real(view)
        return replace(r, sequence="T1", sequence_probabilities={"T1": 0.78, "T2": 0.2, "other": 0.02})

    monkeypatch.setattr(recognition, "recognise", reads_t1)
    unsure = openspine.analyze(data / "spider/20/image.nii.gz")
    seq = unsure.input.sequence or {}
    assert seq["value"] is None and seq["best_guess"] == "T1"
    assert any(f.startswith("sequence_uncertain") for f in unsure.flags)
    assert not any(g.available for d in unsure.discs for g in d.grades.values())
    told = openspine.analyze(data / "spider/20/image.nii.gz", sequence="T2")
    assert any(d.grades[Grading.PFIRRMANN].available for d in told.discs if d.grades)


def test_a_neck_window_that_reads_cervical_at_half_its_estimated_size_gets_flagged_labels(tmp_path: Path) -> None:
    """A 90 mm window of the cervical volume cut close around the spine (about C3 to T1), enlarged twice: the
    estimate took its bodies for lumbar ones, it was labelled L1 ... S1 with no labelling flag and five discs were
    graded (user test). At the size cervical bodies give it reads cervical with 0.62, below the 0.9 that reads it as a
    neck, but above any lumbar picture: its labels are flagged and not graded."""
    data = shared_data_or_skip()
    img = nib.as_closest_canonical(nib.load(data / "sct/sct-example-t2/image.nii.gz"))  # RAS, 1 mm
    volume = np.asarray(img.dataobj, dtype=np.float32)
    plane = volume[volume.shape[0] // 2].T[::-1, ::-1][52:142, 120:320]  # rows head → feet, columns front → back
    window = Image.fromarray((255 * np.clip(plane / np.percentile(plane, 99.5), 0, 1)).astype(np.uint8))
    window.resize((window.size[0] * 2, window.size[1] * 2), Image.Resampling.BICUBIC).save(tmp_path / "neck.png")
    result = openspine.analyze(tmp_path / "neck.png", pixel_spacing="auto")
    (doubt,) = [f for f in result.flags if f.startswith("labelling_ambiguous: the picture may show a cervical spine")]
    assert "read at twice its size" in doubt and "--pixel-spacing gives the picture's own" in doubt
    assert not any(g.available for d in result.discs for g in d.grades.values())


def test_a_neck_picture_with_flagged_labels_at_an_estimated_size_is_not_graded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A window of the cervical spine as a picture (enlarged twice, as pictures in papers are larger than 1 mm pixels
    make them), read with --pixel-spacing auto as a neck the image recogniser does not know (its cervical call taken
    as 0): the estimate makes its bodies lumbar-sized, it is labelled L1 ... S1, flagged, and had been graded at
    every level."""
    from dataclasses import replace

    from openspine.detection.flags import labelling_flagged
    from openspine.recognition import model
    from openspine.scope import FLAGGED_AT_AN_ESTIMATED_SIZE

    data = shared_data_or_skip()
    run = model._run
    monkeypatch.setattr(model, "_run", lambda *a, **k: replace(run(*a, **k), cervical_probability=0.0))
    img = nib.as_closest_canonical(nib.load(data / "sct/sct-example-t2/image.nii.gz"))  # RAS, 1 mm
    volume = np.asarray(img.dataobj, dtype=np.float32)
    plane = np.rot90(volume[volume.shape[0] // 2])  # head up; rows 40-160: about C3 to T2
    plane = (255 * np.clip(plane / np.percentile(plane, 99.5), 0, 1)).astype(np.uint8)[40:160]
    window = Image.fromarray(plane)
    window.resize((window.size[0] * 2, window.size[1] * 2), Image.Resampling.BICUBIC).save(tmp_path / "neck.png")

    result = openspine.analyze(tmp_path / "neck.png", pixel_spacing="auto")
    assert any(v.label is not None and v.label.region == "lumbar" for v in result.vertebrae)
    assert labelling_flagged(result.flags)
    assert result.discs and not any(g.available for d in result.discs for g in d.grades.values())
    assert any(f.startswith("grades_withheld") and FLAGGED_AT_AN_ESTIMATED_SIZE in f for f in result.flags)
    # at its own pixel size the bodies' depth says they are no lumbar ones (scope.unseen_depth_reason)
    own = openspine.analyze(tmp_path / "neck.png", pixel_spacing=(0.5, 0.5))
    assert not any(g.available for d in own.discs for g in d.grades.values())
    assert any("shallower than on any scan" in f for f in own.flags if f.startswith("labelling_ambiguous"))
    # a lumbar picture read at an estimated size whose labels carry no flag keeps its grades
    lumbar = openspine.analyze(data / "spider/32/image.png", pixel_spacing="auto")
    assert not labelling_flagged(lumbar.flags)
    assert any(d.grades[Grading.PFIRRMANN].available for d in lumbar.discs if d.grades)


def test_an_upside_down_volume_without_sacrum_read_below_the_refusal_is_flagged_and_not_graded() -> None:
    # the thoraco-lumbar SCT volume stored upside down, header kept: the recogniser reads upside down at 0.62, below
    # the refusal, and it had been labelled upside down with no word (user test)
    data = shared_data_or_skip()
    img = nib.load(data / "sct/sct-tutorial-t2-lumbar/image.nii.gz")  # (R, A, S)
    arr = np.asarray(img.dataobj)
    as_stored = openspine.analyze(openspine.Scan(arr, img.affine))
    assert not any(f.startswith("orientation_suspect") for f in as_stored.flags)
    turned = openspine.analyze(openspine.Scan(arr[:, :, ::-1], img.affine))
    assert turned.out_of_scope is None and any(v.label is not None for v in turned.vertebrae)  # kept, flagged
    flag = next(f for f in turned.flags if f.startswith("orientation_suspect"))
    assert flag.startswith("orientation_suspect: the image may be upside down (probability")
    assert turned.input.way_round is not None and turned.input.way_round["value"] == "upside down"
    assert not any(g.available for d in turned.discs for g in d.grades.values())
    notes = [d.grades[Grading.PFIRRMANN].note or "" for d in turned.discs if d.grades]
    assert notes and all(n.startswith("withheld: the image may be upside down") for n in notes)


def test_upside_down_picture_exits_3_and_trust_orientation_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = shared_data_or_skip()
    png = tmp_path / "upside-down.png"
    Image.fromarray(np.asarray(Image.open(data / "spider/32/image.png"))[::-1]).save(png)
    args = ["analyze", str(png), "--pixel-spacing", "0.625", "0.625"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 3
    assert "picture looks upside down" in capsys.readouterr().err
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    validate_result(doc)
    assert "upside down" in doc["out_of_scope"] and "head up" in doc["out_of_scope"]
    assert doc["vertebrae"] == [] and doc["discs"] == []
    assert any(f.startswith("orientation_suspect: the image looks upside down (probability") for f in doc["flags"])
    way = doc["input"]["way_round"]
    assert way["value"] == "upside down" and way["source"] == "image" and way["probability"] >= 0.9
    assert main(["-q", *args, "--trust-orientation", "--out", str(tmp_path / "trusted")]) == 0
    trusted = json.loads((tmp_path / "trusted" / "result.json").read_text())
    assert trusted["vertebrae"] and trusted["out_of_scope"] is None
    assert trusted["input"]["way_round"] == {"value": "right way round", "source": "user"}


@pytest.mark.parametrize("spacing", [["0.625", "0.625"], ["auto"]])
def test_picture_with_the_front_on_the_right_is_read_mirrored(tmp_path: Path, spacing: list[str]) -> None:
    """A picture has no header: the front of the body on the right is a display convention, so the picture is read
    mirrored (flagged) and labelled and graded as the stored one, with coordinates in its own pixels."""
    data = shared_data_or_skip()
    stored = np.asarray(Image.open(data / "spider/32/image.png"))
    png = tmp_path / "front-right.png"
    Image.fromarray(np.ascontiguousarray(stored[:, ::-1])).save(png)
    Image.fromarray(stored).save(tmp_path / "stored.png")
    docs = {}
    for name in ("stored", "front-right"):
        out = tmp_path / f"out-{name}"
        assert (
            main(["-q", "analyze", str(tmp_path / f"{name}.png"), "--pixel-spacing", *spacing, "--out", str(out)]) == 0
        )
        docs[name] = json.loads((out / "result.json").read_text())
        validate_result(docs[name])
        assert ("read mirrored" in (out / "report.html").read_text()) == (name == "front-right")
    mirrored, plain = docs["front-right"], docs["stored"]
    assert any(
        f.startswith("picture_mirrored: the picture shows the front of the body on the right")
        for f in mirrored["flags"]
    )
    assert not any(f.startswith("picture_mirrored") for f in plain["flags"])
    way = mirrored["input"]["way_round"]
    assert way["value"] == "reversed front to back" and way["source"] == "image" and way["read_mirrored"] is True
    levels = [d["level"] for d in plain["discs"]]
    assert [d["level"] for d in mirrored["discs"]] == levels and {"L1-L2", "L5-S1"} <= set(levels)
    pfirrmann = [d["grades"]["pfirrmann"]["grade"] for d in plain["discs"] if "pfirrmann" in d["grades"]]
    assert [d["grades"]["pfirrmann"]["grade"] for d in mirrored["discs"] if "pfirrmann" in d["grades"]] == pfirrmann
    width = stored.shape[1]
    for a, b in zip(plain["discs"], mirrored["discs"]):  # the same disc, at the mirrored column of the picture
        assert abs(a["centroid_voxel"][0] - b["centroid_voxel"][0]) < 3.0
        assert abs((width - 1 - a["centroid_voxel"][1]) - b["centroid_voxel"][1]) < 3.0


def _montage(first: Image.Image, second: Image.Image, stacked: bool) -> Image.Image:
    """Two pictures side by side (``second`` scaled to the same height; each cropped to its content first: no band
    of black between them, which a figure's panels are refused by before detection) or one above the other (same
    width)."""
    if not stacked:
        first, second = (im.crop(im.convert("L").getbbox()) for im in (first, second))
    if stacked:
        second = second.resize((first.size[0], round(second.size[1] * first.size[0] / second.size[0])))
        out, at = Image.new("L", (first.size[0], first.size[1] + second.size[1])), (0, first.size[1])
    else:
        second = second.resize((round(second.size[0] * first.size[1] / second.size[1]), first.size[1]))
        out, at = Image.new("L", (first.size[0] + second.size[0], first.size[1])), (first.size[0], 0)
    out.paste(first.convert("L"), (0, 0))
    out.paste(second.convert("L"), at)
    return out


@pytest.mark.parametrize(
    ("second", "stacked", "says", "flag"),
    [
        # a montage of one patient's T2 and T1 would run one sequence of labels through both spines
        ("spider/32/t1.png", False, "2 spines side by side", "spines_side_by_side"),
        # two patients' T2 slices stacked: labels had run from the lower sacrum up through the upper patient's lumbar
        # spine (its S1 labelled T11), and the lower spine was graded
        ("spider/5/image.png", True, "two spines one above the other", "spines_stacked"),
    ],
)
def test_two_spines_in_one_picture_exit_3(
    second: str, stacked: bool, says: str, flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = shared_data_or_skip()
    _montage(Image.open(data / "spider/32/image.png"), Image.open(data / second), stacked).save(tmp_path / "m.png")
    args = ["analyze", str(tmp_path / "m.png"), "--pixel-spacing", "0.6", "0.6", "--out", str(tmp_path / "out")]
    assert main(args) == 3
    assert says in capsys.readouterr().err
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    validate_result(doc)
    assert doc["vertebrae"] == [] and doc["discs"] == [] and "crop the picture" in doc["out_of_scope"]
    assert [f.split(":")[0] for f in doc["flags"]] == [flag]
    if stacked:  # each half alone is one spine, labelled down to S1
        halves = [openspine.analyze(data / f"spider/{p}/image.nii.gz") for p in (32, 5)]
        assert all(h.out_of_scope is None and h.vertebrae[-1].label is not None for h in halves)


@pytest.mark.parametrize("spacing", [["0.6", "0.6"], ["auto"]])
def test_a_figure_of_panels_side_by_side_is_refused_as_such(
    spacing: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A T1 | T2 figure with a band of one colour between its panels is refused as such. With the pixel size estimated
    it had been refused as showing no vertebral body (the estimate measured from one panel's bodies to the other's;
    user test)."""
    data = shared_data_or_skip()
    t1, t2 = (np.asarray(Image.open(data / f"spider/100/{n}.png").convert("L")) for n in ("t1", "image"))
    rows = max(t1.shape[0], t2.shape[0])
    panels = [np.pad(a, ((0, rows - a.shape[0]), (0, 0)), constant_values=255) for a in (t1, t2)]
    figure = np.hstack([panels[0], np.full((rows, 8), 255, np.uint8), panels[1]])
    Image.fromarray(figure).save(tmp_path / "figure.png")
    args = ["analyze", str(tmp_path / "figure.png"), "--pixel-spacing", *spacing, "--out", str(tmp_path / "out")]
    assert main(args) == 3
    assert "2 panels side by side" in capsys.readouterr().err
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    validate_result(doc)
    assert doc["vertebrae"] == [] and "crop the picture to one panel" in doc["out_of_scope"]
    assert "picture_panels: 2 panels side by side" in doc["flags"]


def test_a_slice_with_a_stripe_of_one_value_is_analysed_not_taken_for_panels(tmp_path: Path) -> None:
    """A dead column 6 pixels wide across a real slice reads as a band, but the band rule only says why a picture
    is refused: the slice is labelled as without the stripe (user test: it had been refused as 2 panels)."""
    data = shared_data_or_skip()
    image = np.asarray(Image.open(data / "spider/34/image.png").convert("L")).copy()
    spacing = tuple(json.loads((data / "spider/34/meta.json").read_text())["pixel_spacing_mm"][:2])
    plain = openspine.analyze(data / "spider/34/image.png", pixel_spacing=spacing)
    image[:, image.shape[1] // 2 : image.shape[1] // 2 + 6] = 0
    Image.fromarray(image).save(tmp_path / "striped.png")
    striped = openspine.analyze(tmp_path / "striped.png", pixel_spacing=spacing)
    assert striped.out_of_scope is None and not any(f.startswith("picture_panels") for f in striped.flags)
    assert [v.label for v in striped.vertebrae] == [v.label for v in plain.vertebrae]
    # its pixel size estimated: not from the wider half alone, at which it had been refused (re-check)
    estimated = openspine.analyze(tmp_path / "striped.png", pixel_spacing="auto")
    assert estimated.out_of_scope is None
    assert [v.label for v in estimated.vertebrae][-3:] == [Level.L4, Level.L5, Level.S1]
    # refused for another reason, or every label withheld for one, it keeps that reason (code review: an upside-down
    # slice and a cervical slice with a stripe had been refused as two panels)
    Image.fromarray(image[::-1]).save(tmp_path / "upside-down.png")
    turned = openspine.analyze(tmp_path / "upside-down.png", pixel_spacing=spacing)
    assert turned.out_of_scope is not None and "upside down" in turned.out_of_scope
    neck = nib.as_closest_canonical(nib.load(data / "sct/sct-example-t2/image.nii.gz"))
    mid = np.rot90(np.asarray(neck.dataobj, dtype=np.float32)[neck.shape[0] // 2])
    mid = (255 * np.clip(mid / np.percentile(mid, 99.5), 0, 1)).astype(np.uint8)
    mid[:, mid.shape[1] // 2 : mid.shape[1] // 2 + 6] = 0
    Image.fromarray(mid).save(tmp_path / "neck.png")
    cervical = openspine.analyze(tmp_path / "neck.png", pixel_spacing=(1.0, 1.0))
    assert cervical.out_of_scope is None and cervical.vertebrae and all(v.label is None for v in cervical.vertebrae)


def test_no_real_slice_of_the_shared_data_reads_as_panels() -> None:
    """The band a figure's panels stand apart by is of one exact value from top to bottom; an MR image's air is not
    (SPIDER's pictures are clipped to black around the body, and their mirrored copies)."""
    from openspine.scope import picture_panels

    data = shared_data_or_skip()
    pictures = sorted(data.glob("spider/*/image.png")) + sorted(data.glob("spider/*/t1.png"))
    assert len(pictures) >= 200
    for path in pictures:
        image = np.asarray(Image.open(path).convert("L"))
        assert picture_panels(image) == 1 and picture_panels(image[:, ::-1]) == 1, path


def test_a_slice_pasted_into_a_corner_of_a_black_canvas_is_read_like_the_slice(tmp_path: Path) -> None:
    """A screenshot-like picture: the slice in the top-left corner of a canvas three times its size. The
    recognisers' grid, centred on the picture, saw mostly black and refused it as coronal; it now centres on the
    content where that fills less than half the picture."""
    data = shared_data_or_skip()
    slice_png = Image.open(data / "spider/32/image.png").convert("L")
    canvas = Image.new("L", (slice_png.size[0] * 3, slice_png.size[1] * 3))
    canvas.paste(slice_png, (0, 0))
    canvas.save(tmp_path / "canvas.png")
    spacing = json.loads((data / "spider/32/meta.json").read_text())["pixel_spacing_mm"][:2]
    plain = openspine.analyze(data / "spider/32/image.png", pixel_spacing=tuple(spacing))
    pasted = openspine.analyze(tmp_path / "canvas.png", pixel_spacing=tuple(spacing))
    assert pasted.out_of_scope is None
    assert [v.label for v in pasted.vertebrae] == [v.label for v in plain.vertebrae]
    assert pasted.input.sequence is not None and pasted.input.sequence["value"] == "T2"


def test_volume_reversed_front_to_back_by_its_header_is_refused() -> None:
    data = shared_data_or_skip()
    img = nib.load(data / VAL_T2)
    arr = np.asarray(img.dataobj)[:, ::-1]  # columns back to front, the header left as it was
    result = openspine.analyze(openspine.Scan(np.ascontiguousarray(arr), img.affine))
    assert result.out_of_scope is not None and "reversed front to back" in result.out_of_scope
    assert "orientation header" in result.out_of_scope and not result.vertebrae
    as_stored = openspine.analyze(data / VAL_T2)
    assert as_stored.out_of_scope is None and not any(f.startswith("orientation_suspect") for f in as_stored.flags)
    assert as_stored.input.way_round == {"value": "right way round", "source": "labelling"}  # a sure labelling


def test_volume_whose_header_names_the_wrong_axes_is_refused_not_graded(tmp_path: Path) -> None:
    data = shared_data_or_skip()
    img = nib.load(data / "fastcleverseg/fcs-vb2-13/image.nii.gz")  # val; stored I, P, R
    aff = img.affine.copy()
    aff[:, [1, 2]] = img.affine[:, [2, 1]]  # the header swaps the A-P and L-R axes: "sagittal" cuts are coronal
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), aff), tmp_path / "axes.nii.gz")
    assert main(["-q", "analyze", str(tmp_path / "axes.nii.gz"), "--out", str(tmp_path / "out")]) == 3
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    validate_result(doc)
    assert "looks coronal" in doc["out_of_scope"] and "wrong axes" in doc["out_of_scope"]
    assert doc["vertebrae"] == [] and doc["discs"] == []
    assert any(
        f.startswith("plane_suspect: the geometry says sagittal but the image looks coronal") for f in doc["flags"]
    )
    # the user who knows better reads it as the header says
    trusted = openspine.analyze(tmp_path / "axes.nii.gz", check_orientation=False)
    assert trusted.out_of_scope is None and trusted.vertebrae


def test_without_a_usable_orientation_recogniser_the_analysis_goes_on_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from openspine.errors import ModelError
    from openspine.recognition import orientation

    def broken(*args: object, **kwargs: object) -> None:
        raise ModelError("orientation model damaged")

    monkeypatch.setattr(orientation, "read_orientation", broken)
    data = shared_data_or_skip()
    img = nib.load(data / VAL_T2)
    top = np.ascontiguousarray(np.asarray(img.dataobj)[:300])  # cut above the sacrum: an unsure labelling
    result = openspine.analyze(openspine.Scan(top, img.affine))
    assert result.out_of_scope is None and result.vertebrae
    assert "orientation model damaged" in result.steps_not_run["orientation"]
    assert result.input.way_round is None
    validate_result(result.to_dict())


def test_a_real_slice_with_pixels_coarser_than_the_grader_s_card_keeps_its_labels_but_no_grade(tmp_path: Path) -> None:
    """A real T2 slice downsampled to 2 mm pixels (a thumbnail, a low-resolution export): the grader's card answers
    for pixels up to 1.25 mm (SPIDER's are 0.29-1.0 mm), so every grade is withheld and the reason is given in the
    CLI line, result.json, the CSV and the report; the bodies are still found and labelled."""
    data = shared_data_or_skip()
    scan = openspine.load_scan(data / VAL_T2)
    a = np.asarray(scan.array, dtype=np.float32)
    f = float(np.linalg.norm(scan.affine[:3, 0])) / 2.0
    from scipy import ndimage

    small = ndimage.zoom(ndimage.uniform_filter(a, size=(1 / f, 1 / f, 1)), (f, f, 1), order=1)
    affine = scan.affine.copy()
    affine[:3, :2] /= f
    path = tmp_path / "coarse.nii.gz"
    nib.save(nib.Nifti1Image(small, affine), path)
    out = tmp_path / "out"
    assert main(["-q", "analyze", str(path), "--out", str(out)]) == 0
    doc = json.loads((out / "result.json").read_text())
    assert [v["label"] for v in doc["vertebrae"] if v["label"]][-3:] == ["L4", "L5", "S1"]
    lumbar = [d for d in doc["discs"] if d["grades"]]
    assert len(lumbar) >= 5
    for d in lumbar:
        for g in d["grades"].values():  # the gradings the grader has (others: "not available from ...")
            assert g["available"] is False
            assert "coarser than the 1.25 mm" in g["note"] or g["note"].startswith("not available from")
        assert "coarser than the 1.25 mm" in d["grades"]["pfirrmann"]["note"]
    assert any(f.startswith("grades_withheld:") and "coarser" in f for f in doc["flags"])
    rows = list(csv.DictReader((out / "discs.csv").open()))
    assert rows and all("coarser" in r["note"] for r in rows if r["grading"] == "pfirrmann")
    assert "coarser than the 1.25 mm" in (out / "report.html").read_text()
    # at the slice's own pixel size the same discs are graded
    assert all(d.grades[Grading.PFIRRMANN].available for d in openspine.analyze(scan).discs if d.grades)


def _one_slice_of(volume: Path, mm_from_midline: float, out: Path, n: int = 1, mask: str = "mask.nii.gz") -> Path:
    """``n`` sagittal slices of a real volume, the first ``mm_from_midline`` to one side of its bodies' midline (from
    its mask), written as a NIfTI with its own affine."""
    from openspine.evaluation.detection import crop_axis

    img = nib.load(str(volume / "image.nii.gz"))
    labels = np.asarray(nib.load(str(volume / mask)).dataobj)
    arr, aff = np.asarray(img.dataobj), np.asarray(img.affine, float)
    ax = int(np.argmax(np.abs(aff[0, :3])))  # the stored axis running left-right
    mid = float(np.median([np.median(np.nonzero(labels == v)[ax]) for v in np.unique(labels) if v]))
    k = round(mid + mm_from_midline / float(np.linalg.norm(aff[:3, ax])))
    one, aff1 = crop_axis(arr, aff, ax, k, k + n)
    nib.save(nib.Nifti1Image(one, aff1), out)
    return out


def test_a_single_slice_cut_off_the_midline_keeps_its_labels_but_no_grade(tmp_path: Path) -> None:
    """A sagittal slice 21 mm to one side of a real val volume's midline cuts the pedicles and foramina; its bodies
    and discs still look like bodies and discs, and were labelled and graded. Now its grades are withheld, flagged
    `off_midline` with the reason; the mid-sagittal slice of the same volume is graded, unflagged."""
    data = shared_data_or_skip()
    volume = data / "fastcleverseg" / "fcs-vb2-13"  # val, T2
    off = openspine.analyze(_one_slice_of(volume, 21.0, tmp_path / "off.nii.gz"))
    assert sum(v.label is not None for v in off.vertebrae) >= 5
    assert any(f.startswith("off_midline: the slice looks cut 14 mm or more to one side") for f in off.flags)
    graded = [d for d in off.discs if d.grades]
    assert graded and not any(g.available for d in graded for g in d.grades.values())
    assert "midline" in off.steps_not_run["grading"]
    assert off.input.midline is not None and off.input.midline["off_midline_probability"] >= 0.5
    from openspine.render.report import render_report

    assert "<dt>off the midline</dt><dd>probability " in render_report(off, None)
    validate_result(off.to_dict())
    mid = openspine.analyze(_one_slice_of(volume, 0.0, tmp_path / "mid.nii.gz"))
    assert not any(f.startswith("off_midline") for f in mid.flags)
    # the reading is kept below the bar too (a near miss can be looked for), and read back
    assert mid.input.midline is not None and mid.input.midline["off_midline_probability"] < 0.5
    assert openspine.AnalysisResult.from_dict(mid.to_dict()).input.midline == mid.input.midline
    assert sum(d.grades[Grading.PFIRRMANN].available for d in mid.discs if d.grades) >= 5
    # a slab of three slices wholly off the midline had been graded: a slab this thin is checked too
    slab = openspine.analyze(_one_slice_of(volume, 20.0, tmp_path / "slab.nii.gz", n=3))
    assert any(f.startswith("off_midline") for f in slab.flags)
    assert not any(g.available for d in slab.discs for g in d.grades.values())


def test_a_picture_cut_off_the_midline_is_not_graded_at_an_estimated_pixel_size(tmp_path: Path) -> None:
    """A real val slice 25 mm off the midline as an 8-bit picture in a thin white frame, read with
    ``--pixel-spacing auto``: the frame moved the estimate to 1.12 times the true size, where the midline recogniser
    read 0.44, and every disc was graded (user test). The check reads an estimated size at it and 15 % either way."""
    from PIL import Image

    data = shared_data_or_skip()
    folder = data / "fastcleverseg" / "fcs-vb1-15"  # val; stored [head → feet, front → back, left → right], 1 mm
    whole = np.asarray(nib.load(str(folder / "image.nii.gz")).dataobj).astype(float)
    labels = np.asarray(nib.load(str(folder / "mask.nii.gz")).dataobj)
    mid = float(np.median([np.median(np.nonzero(labels == v)[2]) for v in np.unique(labels) if v]))
    lo, hi = np.percentile(whole, [0.5, 99.5])  # the volume's window, as a viewer exports its slices
    picture = np.full((whole.shape[0] + 8, whole.shape[1] + 8), 255, np.uint8)
    picture[4:-4, 4:-4] = np.round(np.clip((whole[:, :, round(mid) + 25] - lo) / (hi - lo), 0, 1) * 255)
    Image.fromarray(picture).save(tmp_path / "framed.png")
    result = openspine.analyze(tmp_path / "framed.png", pixel_spacing="auto")
    assert result.input.midline is not None and result.input.midline["off_midline_probability"] >= 0.5
    assert any(f.startswith("off_midline:") for f in result.flags), result.flags
    assert not any(g.available for d in result.discs for g in d.grades.values())


def test_the_midline_check_reads_single_slices_only(tmp_path: Path) -> None:
    """A real mid-sagittal SPIDER slice is not flagged; a volume is not read by the midline model at all (the
    analysis finds its middle slice from the bodies)."""
    data = shared_data_or_skip()
    picture = openspine.analyze(data / VAL_T2)
    assert not any(f.startswith("off_midline") for f in picture.flags)
    assert "midline" in [m.name for m in picture.models]
    volume = openspine.analyze(data / "fastcleverseg" / "fcs-vb3-10" / "image.nii.gz")
    assert "midline" not in [m.name for m in volume.models] and "midline" not in volume.steps_not_run
    assert volume.input.midline is None and "midline" not in volume.to_dict()["input"]
    # a cervical slice has no disc to grade, and the model never saw one: no midline flag (one had been given)
    neck = openspine.analyze(
        _one_slice_of(data / "sct" / "sct-testing-t2", 0.0, tmp_path / "neck.nii.gz", mask="cord_mask.nii.gz")
    )
    assert not any(f.startswith("off_midline") for f in neck.flags)


def _cut_at_front(data: Path, pad: int = 0) -> openspine.Scan:
    """The val volume fcs-ivd-46 with the front 30 % of its field of view cut off (through the front of the bodies),
    and ``pad`` voxels of zero put in its place (a picture pasted on a black canvas, a resliced volume's blank)."""
    img = nib.load(data / "fastcleverseg" / "fcs-ivd-46" / "image.nii.gz")
    arr = np.asarray(img.dataobj, dtype=np.float32)
    arr = arr - arr.min()  # zero is the blank
    axes = nib.aff2axcodes(img.affine)
    ap = next(i for i, c in enumerate(axes) if c in "AP")
    keep = [slice(None)] * 3
    cut = int(0.3 * arr.shape[ap])  # the front 30 % of the field of view
    keep[ap] = slice(cut, None) if axes[ap] == "P" else slice(None, arr.shape[ap] - cut)
    affine = img.affine.copy()
    if axes[ap] == "P":
        affine[:3, 3] += affine[:3, ap] * (cut - pad)
    widths = [(0, 0)] * 3
    widths[ap] = (pad, 0) if axes[ap] == "P" else (0, pad)
    return openspine.Scan(np.pad(arr[tuple(keep)], widths), affine)


@pytest.mark.parametrize(
    ("pad", "reason"),
    [(0, "reaches the front edge of the image"), (40, "flat black area reaching the image's edge")],
)
def test_discs_cut_by_the_front_edge_of_a_cropped_field_of_view_are_not_graded(pad: int, reason: str) -> None:
    """A val FastCleverSeg volume cropped through the front of its bodies had been graded, four discs moving by two or
    three Pfirrmann grades; such a disc is now left ungraded with the reason, the others still graded. The same crop
    on a blank canvas (the edge of the field of view inside the image) is caught by the blank, not the edge."""
    data = shared_data_or_skip()
    result = openspine.analyze(_cut_at_front(data, pad))
    cut_flags = [f for f in result.flags if reason in f]
    assert cut_flags and cut_flags[0].startswith("not graded: ")
    graded = [d for d in result.discs if any(g.available and g.grade is not None for g in d.grades.values())]
    assert graded and len(graded) < len(result.discs)
    # bodies cut by the front edge show only part of their depth: no depth rule on them (it had withheld every grade)
    assert not any("mm deep (front to back)" in f for f in result.flags), result.flags


def test_a_scan_built_with_an_identity_affine_is_flagged() -> None:
    """As a NIfTI file saved with numpy.eye(4) is (nifti_default_affine); through the Python API nothing had said so."""
    rng = np.random.default_rng(0)
    arr = rng.random((64, 64, 3)).astype(np.float32)
    flagged = openspine.analyze(openspine.Scan(arr, np.eye(4)))
    assert any(f.startswith("default_affine: the scan's affine only scales the voxel axes") for f in flagged.flags)
    placed = np.diag([1.0, 1.0, 1.0, 1.0])
    placed[:3, 3] = (-30.0, -30.0, -2.0)
    assert not any(f.startswith("default_affine") for f in openspine.analyze(openspine.Scan(arr, placed)).flags)


@pytest.mark.parametrize("pixel_mm", [1.0, 0.3])
def test_a_body_within_2_mm_of_the_front_or_back_edge_counts_as_cut(pixel_mm: float) -> None:
    """The detector places outline corners on a 1.25 mm grid: a body cut by the edge stops about half a cell inside
    it (a strict one-voxel test had missed a cropped picture's bodies and withheld every label for their depth)."""
    from openspine.analysis import BODY_EDGE_MARGIN_MM, front_or_back_cut
    from openspine.results import SliceOutline, Vertebra

    # rows run to the feet, columns to the back, one slice: the internal layout as stored
    affine = np.array([[0, 0, 1, 0], [0, -pixel_mm, 0, 0], [-pixel_mm, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    view = openspine.Scan(np.zeros((200, 160, 1), np.float32), affine).to_sagittal()
    cut = front_or_back_cut(view)
    edge = BODY_EDGE_MARGIN_MM / pixel_mm  # in columns

    def body(front_col: float, back_col: float) -> Vertebra:
        corners = ((50.0, front_col, 0.0), (50.0, back_col, 0.0), (70.0, back_col, 0.0), (70.0, front_col, 0.0))
        outline = SliceOutline(0, corners, corners)
        return Vertebra(Level.L3, 0.9, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (outline,), mid_slice=0)

    assert cut(body(0.6 * edge, 60.0)) and cut(body(50.0, 159.0 - 0.6 * edge))  # front, back
    assert not cut(body(1.5 * edge, 60.0)) and not cut(body(50.0, 159.0 - 1.5 * edge))


def test_an_unsure_sequence_on_a_picture_given_a_wrong_pixel_size_names_the_size_as_a_suspect() -> None:
    """Given 0.5 mm (its own: 0.73), a val T2 picture read T2 at 0.75 only and its grades were withheld with "give
    --sequence", which would have graded it at the wrong scale (user test); the flag now names the size given."""
    data = shared_data_or_skip()
    result = openspine.analyze(data / "spider" / "31" / "image.png", pixel_spacing=0.5)
    unsure = [f for f in result.flags if f.startswith(("sequence_uncertain:", "grades_withheld:"))]
    assert len(unsure) == 2 and all("check the pixel size given, 0.500 mm" in f for f in unsure), result.flags
    assert result.input.sequence is not None and result.input.sequence["pixel_size_given_mm"] == 0.5
    own = openspine.analyze(data / "spider" / "31" / "image.png", pixel_spacing="auto")  # no size given: no hint
    assert not any("check the pixel size given" in f for f in own.flags), own.flags
