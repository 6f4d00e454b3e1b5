"""The overlay's layout: the whole analysed slice stays in its panel, whatever the view's shape."""

from __future__ import annotations

import numpy as np

from openspine.render.overlay import render_overlay
from openspine.results import AnalysisResult, InputInfo
from openspine.scan import Scan

# rows run down, columns to the back, slices to the right; 0.5 mm pixels
AFFINE = np.array([[0, 0, 4.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])


def test_a_short_wide_view_fits_its_panel_beside_the_neighbouring_slices() -> None:
    """A strip 20 mm tall and 200 mm wide (a few bodies of a cropped volume) was scaled to the panel's minimum height
    and ran under the neighbouring slices, hiding its back part: now it fits the panel's width."""
    arr = np.zeros((40, 400, 5), np.float32)
    arr[:, :, 2] = 100.0
    arr[:, -20:, 2] = 1000.0  # a bright mark at the back edge of the middle slice (the one drawn large)
    scan = Scan(arr, AFFINE)
    picture = np.asarray(render_overlay(scan.to_sagittal(), AnalysisResult(input=InputInfo.from_scan(scan)), 1000))
    main_w = int(1000 * 0.74)  # the main panel; the neighbouring slices fill the column to its right
    panel = picture[44 : 44 + 200, :main_w]  # under the title (no banner: no flag), the panel's 200 px height
    bright = np.argwhere(panel.min(axis=2) > 220)
    assert len(bright) > 100, "the back edge of the slice is not in its panel"
    assert bright[:, 1].max() < main_w


def test_a_scan_refused_with_nothing_drawn_gets_no_grade_legend() -> None:
    from dataclasses import replace

    from openspine.render.overlay import PFIRRMANN_COLOURS, UNGRADED_COLOUR
    from openspine.results import Vertebra

    arr = np.full((200, 200, 1), 100.0, np.float32)
    scan = Scan(arr, AFFINE)
    refused = AnalysisResult(input=InputInfo.from_scan(scan), out_of_scope="this does not look like a sagittal spine")

    def colours(result: AnalysisResult) -> set[tuple[int, ...]]:
        picture = np.asarray(render_overlay(scan.to_sagittal(), result, 800))
        return {tuple(int(v) for v in px) for px in picture.reshape(-1, 3)}

    legend = {*PFIRRMANN_COLOURS.values(), UNGRADED_COLOUR}
    # the grade colours had been drawn under a picture of nothing analysed (user test)
    assert not legend & colours(refused)
    body = Vertebra(None, 0.9, (100.0, 100.0, 0.0), (0.0, 0.0, 0.0))
    assert legend <= colours(replace(refused, vertebrae=(body,)))  # bodies drawn: the legend says what marks mean
