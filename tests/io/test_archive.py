"""Safe zip extraction: contents, clean-up, zip slip, symlinks, zip bombs, corrupt archives."""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

import pytest

from openspine.errors import ScanReadError
from openspine.io.archive import extracted_zip


def make_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_extracts_members_and_cleans_up(tmp_path: Path) -> None:
    zp = make_zip(tmp_path / "a.zip", {"study/s1/IM1": b"one", "study/s2/IM2": b"two", "top.txt": b"3"})
    before = sha256(zp)
    with extracted_zip(zp) as folder:
        assert (folder / "study" / "s1" / "IM1").read_bytes() == b"one"
        assert (folder / "study" / "s2" / "IM2").read_bytes() == b"two"
        assert (folder / "top.txt").read_bytes() == b"3"
        assert not folder.is_relative_to(tmp_path)  # a fresh temporary folder, not beside the input
        kept = folder
    assert not kept.exists()
    assert sha256(zp) == before  # the input is only read


def test_folder_removed_when_the_body_fails(tmp_path: Path) -> None:
    zp = make_zip(tmp_path / "a.zip", {"x": b"1"})
    with pytest.raises(RuntimeError), extracted_zip(zp) as folder:
        kept = folder
        raise RuntimeError("boom")
    assert not kept.exists()


def test_directory_members_and_inner_dotdot_that_stays_inside(tmp_path: Path) -> None:
    zp = make_zip(tmp_path / "a.zip", {"d/": b"", "d/e/../f": b"ok"})
    with extracted_zip(zp) as folder:
        assert (folder / "d" / "f").read_bytes() == b"ok"


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/evil", "..\\x", "C:/evil", "C:\\evil"])
def test_zip_slip_refused(tmp_path: Path, name: str) -> None:
    zp = make_zip(tmp_path / "slip.zip", {"fine": b"1", name: b"evil"})
    with pytest.raises(ScanReadError, match="would be written outside the extraction folder") as err, extracted_zip(zp):
        pass
    assert f"member '{name}'" in str(err.value)
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()


def test_symlink_member_refused(tmp_path: Path) -> None:
    zp = tmp_path / "link.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ScanReadError, match="symbolic link"), extracted_zip(zp):
        pass


def test_declared_size_limit(tmp_path: Path) -> None:
    zp = make_zip(tmp_path / "bomb.zip", {"a": b"\0" * 10_000, "b": b"\0" * 10_000})
    with pytest.raises(ScanReadError, match="zip bomb"), extracted_zip(zp, max_total_bytes=15_000):
        pass


def test_member_count_limit(tmp_path: Path) -> None:
    zp = make_zip(tmp_path / "many.zip", {f"f{i}": b"x" for i in range(20)})
    with pytest.raises(ScanReadError, match="20 members"), extracted_zip(zp, max_members=10):
        pass


def test_lying_declared_sizes_are_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A central directory that understates sizes: zipfile's size/CRC check or the written-bytes count stops it."""
    zp = make_zip(tmp_path / "liar.zip", {"a": b"\0" * 50_000})
    real_infolist = zipfile.ZipFile.infolist

    def lying_infolist(self: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
        infos = real_infolist(self)
        for info in infos:
            info.file_size = 10  # what a crafted central directory could claim
        return infos

    monkeypatch.setattr(zipfile.ZipFile, "infolist", lying_infolist)
    limit = 20_000
    with (
        pytest.raises(ScanReadError, match=r"(expands beyond the limit|is corrupt)"),
        extracted_zip(zp, max_total_bytes=limit),
    ):
        pass


def test_written_size_limit_is_enforced_on_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes actually written are counted, independently of the declared-size check."""
    from openspine.io import archive

    zp = make_zip(tmp_path / "big.zip", {"a": b"\0" * 30_000, "b": b"\0" * 30_000})
    monkeypatch.setattr(archive, "_check_declared_size", lambda *args: None)
    with (
        pytest.raises(ScanReadError, match="expands beyond the limit of 40000 bytes"),
        extracted_zip(zp, max_total_bytes=40_000),
    ):
        pass


@pytest.mark.parametrize("content", [b"this is not a zip at all", b"PK\x03\x04" + b"\0" * 40, b""])
def test_corrupt_zip(tmp_path: Path, content: bytes) -> None:
    zp = tmp_path / "bad.zip"
    zp.write_bytes(content)
    with pytest.raises(ScanReadError, match="not a readable zip archive"), extracted_zip(zp):
        pass


def test_truncated_zip(tmp_path: Path) -> None:
    zp = make_zip(tmp_path / "t.zip", {"a": bytes(range(256)) * 100})
    zp.write_bytes(zp.read_bytes()[:-60])  # the central directory is cut off
    with pytest.raises(ScanReadError, match="not a readable zip archive"), extracted_zip(zp):
        pass


def test_corrupt_member_data(tmp_path: Path) -> None:
    data = bytes(range(256)) * 100
    zp = make_zip(tmp_path / "crc.zip", {"a": data}, compression=zipfile.ZIP_STORED)
    raw = bytearray(zp.read_bytes())
    at = raw.find(data[:64])
    raw[at + 10] ^= 0xFF  # flip one stored byte: the CRC check must fail
    zp.write_bytes(bytes(raw))
    with pytest.raises(ScanReadError, match="member 'a' is corrupt"), extracted_zip(zp):
        pass


def test_load_scan_on_corrupt_zip(tmp_path: Path) -> None:
    from openspine.io import load_scan

    zp = tmp_path / "study.zip"
    zp.write_bytes(b"garbage")
    with pytest.raises(ScanReadError, match="not a readable zip archive"):
        load_scan(zp)


def test_zip_without_dicom(tmp_path: Path) -> None:
    from openspine.io import load_scan

    zp = make_zip(tmp_path / "notes.zip", {"readme.txt": b"hello"})
    with pytest.raises(ScanReadError, match=r"no DICOM files found .*\(1 files looked at\)"):
        load_scan(zp)
