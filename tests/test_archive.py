"""Safe extraction (agecourse.archive): good archives extract, hostile ones write nothing anywhere."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from agecourse import archive as arc
from agecourse.archive import (
    CorruptArchiveError,
    UnsafeArchiveError,
    extract_to_cache,
    is_archive,
    marker_path,
    safe_extract,
)

NAMES = [
    "25_0_1_20170116174525125.jpg.chip.jpg",
    "3_1_2_20161219211452533.jpg.chip.jpg",
    "61_0_0_20170111210110290.jpg.chip.jpg",
]


def jpeg_bytes(seed: int = 0, size: int = 8) -> bytes:
    """A tiny random JPEG (random pixels, so it does not compress away)."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG")
    return buf.getvalue()


def add_tar_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_tar(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    """Write a tar archive of (name, data) files and ready-made TarInfo entries (links, fifos)."""
    with tarfile.open(path, mode) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                add_tar_file(tar, *entry)
    return path


def make_zip(path: Path, entries: list[zipfile.ZipInfo | tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for entry in entries:
            if isinstance(entry, zipfile.ZipInfo):
                zf.writestr(entry, b"/etc/passwd")
            else:
                zf.writestr(*entry)
    return path


def good_entries(folder: str = "UTKFace/") -> list[tuple[str, bytes]]:
    return [(folder + name, jpeg_bytes(i)) for i, name in enumerate(NAMES)]


def link_info(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def assert_nothing_written(dest: Path) -> None:
    """Validation comes before extraction: the destination must not even hold the good entries."""
    assert not dest.exists() or not any(dest.rglob("*"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.zip", True),
        ("A.TAR.GZ", True),
        ("x.tgz", True),
        ("x.tar", True),
        ("x.jpg", False),
        ("x.gz", False),
        ("folder", False),
    ],
)
def test_is_archive(name, expected):
    assert is_archive(name) is expected


def test_good_zip_extracts(tmp_path):
    archive = make_zip(tmp_path / "utk.zip", good_entries())
    files = safe_extract(archive, tmp_path / "out")
    assert sorted(p.name for p in files) == sorted(NAMES)
    for path in files:
        assert path.is_file() and (tmp_path / "out" / "UTKFace") in path.parents
    from PIL import Image

    with Image.open(files[0]) as img:
        assert img.size == (8, 8)


@pytest.mark.parametrize("mode,suffix", [("w:gz", ".tar.gz"), ("w:gz", ".tgz"), ("w", ".tar")])
def test_good_tar_extracts(tmp_path, mode, suffix):
    archive = make_tar(tmp_path / f"utk{suffix}", good_entries("crop_part1/"), mode)
    files = safe_extract(archive, tmp_path / "out")
    assert sorted(p.name for p in files) == sorted(NAMES)
    assert all(p.read_bytes()[:2] == b"\xff\xd8" for p in files)  # JPEG magic


def test_tar_traversal_rejected(tmp_path):
    dest = tmp_path / "a" / "out"
    archive = make_tar(tmp_path / "evil.tar.gz", [*good_entries(), ("../evil.txt", b"pwned")])
    with pytest.raises(UnsafeArchiveError, match=r"\.\./evil\.txt.*path traversal") as info:
        safe_extract(archive, dest)
    assert "evil.tar.gz" in str(info.value)
    assert not (tmp_path / "a" / "evil.txt").exists()
    assert_nothing_written(dest)


def test_tar_absolute_path_rejected(tmp_path):
    outside = tmp_path / "abs-target.txt"  # an absolute name: /.../abs-target.txt
    dest = tmp_path / "out"
    archive = make_tar(tmp_path / "abs.tar.gz", [*good_entries(), (str(outside), b"pwned")])
    with pytest.raises(UnsafeArchiveError, match="absolute path") as info:
        safe_extract(archive, dest)
    assert str(outside) in str(info.value)
    assert not outside.exists()
    assert_nothing_written(dest)


def test_tar_symlink_rejected(tmp_path):
    dest = tmp_path / "out"
    entries = [link_info("UTKFace/link", str(tmp_path), tarfile.SYMTYPE), ("UTKFace/link/evil.txt", b"x")]
    archive = make_tar(tmp_path / "sym.tar.gz", entries)
    with pytest.raises(UnsafeArchiveError, match=r"'UTKFace/link'.*symbolic link"):
        safe_extract(archive, dest)
    assert not (tmp_path / "evil.txt").exists()
    assert_nothing_written(dest)


def test_tar_hardlink_rejected(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    dest = tmp_path / "out"
    archive = make_tar(tmp_path / "hard.tar.gz", [link_info("UTKFace/h", str(outside), tarfile.LNKTYPE)])
    with pytest.raises(UnsafeArchiveError, match=r"'UTKFace/h'.*hard link"):
        safe_extract(archive, dest)
    assert outside.read_text() == "secret"
    assert_nothing_written(dest)


def test_tar_fifo_rejected(tmp_path):
    fifo = tarfile.TarInfo("UTKFace/pipe")
    fifo.type = tarfile.FIFOTYPE
    archive = make_tar(tmp_path / "fifo.tar", [fifo], mode="w")
    with pytest.raises(UnsafeArchiveError, match="FIFO"):
        safe_extract(archive, tmp_path / "out")


def test_zip_traversal_rejected(tmp_path):
    dest = tmp_path / "a" / "out"
    archive = make_zip(tmp_path / "evil.zip", [*good_entries(), ("../evil.txt", b"pwned")])
    with pytest.raises(UnsafeArchiveError, match=r"evil\.zip.*'\.\./evil\.txt'.*path traversal"):
        safe_extract(archive, dest)
    assert not (tmp_path / "a" / "evil.txt").exists()
    assert_nothing_written(dest)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("..\\..\\evil.txt", "backslashes"),
        ("C:/Windows/evil.txt", "Windows drive"),
        ("/tmp/x", "absolute path"),
    ],
)
def test_zip_windows_and_absolute_names_rejected(tmp_path, name, reason):
    archive = make_zip(tmp_path / "win.zip", [(name, b"pwned")])
    with pytest.raises(UnsafeArchiveError, match=reason) as info:
        safe_extract(archive, tmp_path / "out")
    assert repr(name) in str(info.value)
    assert_nothing_written(tmp_path / "out")


def test_zip_symlink_rejected(tmp_path):
    link = zipfile.ZipInfo("UTKFace/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = make_zip(tmp_path / "sym.zip", [*good_entries(), link])
    with pytest.raises(UnsafeArchiveError, match=r"'UTKFace/link'.*symbolic link"):
        safe_extract(archive, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_existing_symlink_in_dest_is_not_followed(tmp_path):
    """An entry that would pass through a link already inside dest still may not land outside."""
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "UTKFace").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    archive = make_zip(tmp_path / "utk.zip", good_entries())
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(archive, dest)
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_truncated_archive_is_a_clear_error(tmp_path, suffix):
    path = tmp_path / f"cut{suffix}"
    entries = [(f"UTKFace/{i}_0_0_20170101000000000.jpg.chip.jpg", jpeg_bytes(i, 64)) for i in range(6)]
    make_zip(path, entries) if suffix == ".zip" else make_tar(path, entries)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptArchiveError, match=r"cut\.(tar\.gz|zip): corrupt or truncated archive"):
        safe_extract(path, tmp_path / "out")


def test_not_an_archive(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ValueError, match="notes.txt: not a"):
        safe_extract(path, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="missing.zip"):
        safe_extract(tmp_path / "missing.zip", tmp_path / "out")


def test_extract_to_cache_reuses_completed_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AGECOURSE_DATA_DIR", str(tmp_path / "cache"))
    archive = make_tar(tmp_path / "UTKFace.tar.gz", good_entries())
    folder = extract_to_cache(archive)
    assert folder.parent == (tmp_path / "cache" / "extracted").resolve()
    assert folder.name.startswith("UTKFace-") and len(folder.name) == len("UTKFace-") + 12
    assert marker_path(folder).is_file()
    assert len(list(folder.rglob("*.jpg"))) == len(NAMES)
    assert not any(p.name.startswith(".") for p in folder.rglob("*"))  # the marker sits outside
    assert [p for p in folder.parent.iterdir() if p.name.endswith(".partial")] == []

    def boom(*args, **kwargs):
        raise AssertionError("extracted again although the folder was complete")

    monkeypatch.setattr(arc, "safe_extract", boom)
    assert extract_to_cache(archive) == folder


def test_extract_to_cache_redoes_an_interrupted_extraction(tmp_path, monkeypatch):
    monkeypatch.setenv("AGECOURSE_DATA_DIR", str(tmp_path / "cache"))
    archive = make_zip(tmp_path / "crop_part1.zip", good_entries("crop_part1/"))
    folder = extract_to_cache(archive)
    marker_path(folder).unlink()  # as if the run had stopped before the marker was written
    (folder / "crop_part1" / NAMES[0]).unlink()
    assert extract_to_cache(archive) == folder
    assert (folder / "crop_part1" / NAMES[0]).is_file()


def test_extract_to_cache_new_folder_when_archive_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("AGECOURSE_DATA_DIR", str(tmp_path / "cache"))
    archive = make_tar(tmp_path / "UTKFace.tar.gz", good_entries())
    first = extract_to_cache(archive)
    make_tar(archive, good_entries()[:1])
    os.utime(archive, ns=(1, 1))  # a different mtime, whatever the clock resolution
    second = extract_to_cache(archive)
    assert second != first and len(list(second.rglob("*.jpg"))) == 1


def test_extract_to_cache_explicit_dest(tmp_path):
    archive = make_zip(tmp_path / "utk.zip", good_entries())
    dest = tmp_path / "mine"
    assert extract_to_cache(archive, dest) == dest.resolve()
    assert extract_to_cache(archive, dest) == dest.resolve()
    other = tmp_path / "busy"
    other.mkdir()
    (other / "keep.txt").write_text("user data")
    with pytest.raises(ValueError, match="busy: exists but is not a completed extraction"):
        extract_to_cache(archive, other)
    assert (other / "keep.txt").read_text() == "user data"


def test_extract_to_cache_leaves_nothing_after_a_hostile_archive(tmp_path):
    archive = make_tar(tmp_path / "evil.tar.gz", [*good_entries(), ("../../evil.txt", b"pwned")])
    cache = tmp_path / "cache"
    with pytest.raises(UnsafeArchiveError, match="evil.txt"):
        extract_to_cache(archive, cache_dir=cache)
    assert list((cache / "extracted").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_extract_to_cache_cleans_up_after_a_corrupt_archive(tmp_path):
    archive = make_tar(tmp_path / "cut.tar.gz", [(f"a/{i}.jpg", jpeg_bytes(i, 64)) for i in range(6)])
    archive.write_bytes(archive.read_bytes()[:-900])
    cache = tmp_path / "cache"
    with pytest.raises(CorruptArchiveError, match="cut.tar.gz"):
        extract_to_cache(archive, cache_dir=cache)
    assert list((cache / "extracted").iterdir()) == []
