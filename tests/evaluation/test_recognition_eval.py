"""``openspine evaluate recognition`` limited to some items (a fold of train left out of training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openspine.errors import ConfigError, ScanReadError
from openspine.evaluation.recognition import _item_of, cli_main, evaluate_recognition


def test_a_picture_belongs_to_its_index_item() -> None:
    assert _item_of("fcs-vb2-01:axial@0.5") == "fcs-vb2-01"
    assert _item_of("spider-7-t1") == "spider-7" and _item_of("spider-7") == "spider-7"
    assert _item_of("spider-7-t1:crop") == "spider-7"


def test_ids_limit_the_pictures_to_those_items(shared_data: Path) -> None:
    result = evaluate_recognition(shared_data, "val", ids=["spider-32", "fcs-vb2-13"])
    assert result["pictures"] == {"spider": 2, "volume_cuts": 15}  # T2 and T1 slice; 5 cuts in each of 3 planes
    assert result["as_stored"]["sequence_spider_t1"]["total"] == 1
    with pytest.raises(ScanReadError, match="among the given ids"):
        evaluate_recognition(shared_data, "val", ids=["spider-1"])  # a train patient


def test_ids_file_and_card_do_not_mix(shared_data: Path, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("spider-32\n")
    with pytest.raises(ConfigError, match="leave out --ids"):
        cli_main(["--data", str(shared_data), "--ids", str(ids), "--card"], quiet=True)
