"""The fine-tuning labels file: inferred and declared classes, splits, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from openspine.errors import ConfigError
from openspine.finetune.labels import parse_classes, read_labels
from openspine.levels import DiscLevel


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def test_classes_are_inferred_and_declared(tmp_path: Path):
    p = _write(
        tmp_path / "labels.csv",
        "scan,level,bulging,central_canal_stenosis\na.nii.gz,L4-L5,1,10\na.nii.gz,l5_s1,0,2\nb/,L4/L5,,2.0\n",
    )
    t = read_labels(p, tmp_path / "scans")
    assert t.gradings == ("bulging", "central_canal_stenosis")
    assert t.classes == {"bulging": ("0", "1"), "central_canal_stenosis": ("2", "10")}  # numeric order
    assert t.labels["a.nii.gz"][DiscLevel.L5_S1] == {"bulging": "0", "central_canal_stenosis": "2"}
    assert t.labels["b/"][DiscLevel.L4_L5] == {"central_canal_stenosis": "2"}  # empty cell = not graded
    assert t.scan_paths["b/"] == tmp_path / "scans" / "b"
    assert t.n_rows == 3
    declared = read_labels(p, None, parse_classes(["central_canal_stenosis=10,2,5"]))
    assert declared.classes["central_canal_stenosis"] == ("10", "2", "5")


def test_split_column(tmp_path: Path):
    p = _write(tmp_path / "l.csv", "scan,level,split,herniation\na,L4-L5,train,0\nb,L4-L5,val,1\nb,L3-L4,val,0\n")
    assert read_labels(p).splits == {"a": "train", "b": "val"}
    bad = _write(tmp_path / "m.csv", "scan,level,split,herniation\na,L4-L5,train,0\na,L3-L4,val,1\n")
    with pytest.raises(ConfigError, match="both splits"):
        read_labels(bad)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("level,bulging\nL4-L5,1\n", "'scan' column"),
        ("scan,level\na,L4-L5\n", "no grading column"),
        ("scan,level,bulgin\na,L4-L5,1\n", "Did you mean 'bulging'"),
        ("scan,level,bulging\na,L9-L10,1\n", r"l.csv:2: unknown disc level 'L9-L10'. Disc levels run"),
        ("scan,level,bulging\na,L4-L5,1\na,L4-L5,0\n", "appears twice"),
        ("scan,level,bulging\na,L4-L5,1\nb,L4-L5,1\n", "nothing to learn"),
        ("", "is empty: it needs a header row"),
        ("scan;level;bulging\na;L4-L5;1\n", "separated by ';': save it comma-separated"),
        # one typo in a 0/1 column had made a third class, silently
        (
            "scan,level,bulging\na,L4-L5,1\nb,L4-L5,0\nc,L4-L5,maybe\n",
            r"l.csv:4: bulging = 'maybe' is not an integer, in a column",
        ),
        # text classes were numbered by name (mild 0, normal 1, severe 2) and reported by number alone
        (
            "scan,level,disc_state\na,L4-L5,normal\nb,L4-L5,mild\n",
            r"text classes \(normal, mild\).*--classes disc_state=A,B",
        ),
    ],
)
def test_bad_labels_are_refused(tmp_path: Path, text: str, match: str):
    with pytest.raises(ConfigError, match=match):
        read_labels(_write(tmp_path / "l.csv", text))


def test_an_empty_grading_column_is_left_out_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """A column kept for later had stopped the whole run ('only the value(s) [] … nothing to learn')."""
    import logging

    text = "scan,level,bulging,stenosis_own\na,L4-L5,1,\nb,L4-L5,0,\n"
    with caplog.at_level(logging.WARNING, logger="openspine"):
        table = read_labels(_write(tmp_path / "l.csv", text))
    assert table.gradings == ("bulging",) and set(table.classes) == {"bulging"}
    assert any("stenosis_own" in r.getMessage() and "left out" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError, match="every grading column .* is empty"):
        read_labels(_write(tmp_path / "m.csv", "scan,level,bulging\na,L4-L5,\n"))


def test_missing_value_markers_are_not_graded_unless_declared_as_a_class(tmp_path: Path):
    """R's write.csv writes NA, pandas and spreadsheets NaN, N/A, null: they had been refused as typos (and before,
    made classes of their own)."""
    rows = "".join(f"s{i},L4-L5,{v}\n" for i, v in enumerate(["0", "1", "NA", "n/a", "NaN", "None", "null", ".", "-"]))
    t = read_labels(_write(tmp_path / "l.csv", "scan,level,bulging\n" + rows))
    assert t.classes["bulging"] == ("0", "1")
    assert [t.labels[f"s{i}"][DiscLevel.L4_L5] for i in range(4)] == [{"bulging": "0"}, {"bulging": "1"}, {}, {}]
    declared = _write(tmp_path / "m.csv", "scan,level,modic\na,L4-L5,none\nb,L4-L5,type1\nc,L4-L5,NA\n")
    d = read_labels(declared, None, parse_classes(["modic=none,type1,type2"]))
    assert d.labels["a"][DiscLevel.L4_L5] == {"modic": "none"} and d.labels["c"][DiscLevel.L4_L5] == {}


def test_declared_text_classes_keep_their_order(tmp_path: Path):
    p = _write(tmp_path / "l.csv", "scan,level,disc_state\na,L4-L5,normal\nb,L4-L5,mild\nc,L3-L4,severe\n")
    t = read_labels(p, None, parse_classes(["disc_state=normal,mild,severe"]))
    assert t.classes["disc_state"] == ("normal", "mild", "severe")


def test_declared_classes_are_enforced(tmp_path: Path):
    p = _write(tmp_path / "l.csv", "scan,level,bulging\na,L4-L5,1\nb,L4-L5,2\n")
    with pytest.raises(ConfigError, match="declared classes"):
        read_labels(p, None, {"bulging": ("0", "1")})
    with pytest.raises(ConfigError, match="not a column"):
        read_labels(p, None, {"herniation": ("0", "1")})
    with pytest.raises(ConfigError, match="NAME=CLASS1"):
        parse_classes(["bulging"])


def test_excel_bom_is_read(tmp_path: Path):
    p = tmp_path / "bom.csv"
    p.write_text("scan,level,bulging\na.nii.gz,L4-L5,1\nb.nii.gz,L4-L5,0\n", encoding="utf-8-sig")  # Excel "CSV UTF-8"
    assert read_labels(p, tmp_path).gradings == ("bulging",)


def test_patient_groups_from_the_column_or_the_first_folder(tmp_path: Path):
    p = _write(tmp_path / "a.csv", "scan,level,bulging\np1/t2.nii.gz,L4-L5,1\np1/t1.nii.gz,L4-L5,0\nx.nii.gz,L4-L5,1\n")
    assert read_labels(p, tmp_path).groups() == {"p1/t2.nii.gz": "p1", "p1/t1.nii.gz": "p1", "x.nii.gz": "x.nii.gz"}
    p = _write(tmp_path / "b.csv", "scan,level,patient,bulging\na.nii.gz,L4-L5,P7,1\nb.nii.gz,L4-L5,P7,0\n")
    t = read_labels(p, tmp_path)
    assert t.gradings == ("bulging",) and set(t.groups().values()) == {"P7"}
