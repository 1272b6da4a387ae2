"""Safe extraction of ``.zip``, ``.tar.gz``, ``.tgz`` and ``.tar`` archives.

Introduced in lesson 01 (load).

An archive is a list of names chosen by whoever built it. A name like ``../../.bashrc``, an
absolute path, or a link pointing elsewhere would make a naive ``extractall`` write outside the
destination ("zip slip"). Here every entry is checked *before* anything is written, and a hostile
entry stops the extraction with :class:`UnsafeArchiveError` naming the archive, the entry and why.
For tar archives the standard library's ``filter="data"`` is applied as well, as a second line of
defence.

:func:`extract_to_cache` extracts once into the cache and reuses the result: extraction goes into a
temporary sibling folder that is renamed into place only when complete, and a ``.complete`` marker
(written last) is what says it finished, so an interrupted run is never mistaken for a finished one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from agecourse import config

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
MARKER_SUFFIX = ".complete"

# Errors the standard library raises for damaged archives: bad headers, CRC mismatches, a gzip
# stream that ends early (EOFError), corrupt deflate data (zlib.error), a bad gzip trailer. Plain
# OSError is left out on purpose: a full disk is not a corrupt archive and must say so itself.
_CORRUPT_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile)


class UnsafeArchiveError(ValueError):
    """An archive entry that would be written outside the destination, or is a link or device."""

    def __init__(self, archive: str | os.PathLike, entry: str, reason: str) -> None:
        self.archive = str(archive)
        self.entry = entry
        self.reason = reason
        super().__init__(f"{archive}: unsafe entry {entry!r}: {reason}; nothing was extracted")


class CorruptArchiveError(ValueError):
    """An archive that cannot be read to the end (truncated download, damaged file)."""


def is_archive(path: str | os.PathLike) -> bool:
    """True when ``path`` ends in a suffix this module extracts: ``.zip``, ``.tar.gz``, ``.tgz``, ``.tar``."""
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: str | os.PathLike) -> str:
    """The file name without its archive suffix: ``UTKFace.tar.gz`` -> ``UTKFace``."""
    name = Path(path).name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def _check_name(archive: Path, name: str, dest: Path) -> Path:
    """Return where entry ``name`` would land under ``dest``; raise if that is not strictly inside."""
    if not name or "\x00" in name:
        raise UnsafeArchiveError(archive, name, "empty name or NUL byte in the name")
    # Backslashes are path separators on Windows: "..\\..\\x" is a traversal there, and a drive
    # letter ("C:") makes the name absolute there, even though both look harmless on Linux.
    as_posix = name.replace("\\", "/")
    parts = PurePosixPath(as_posix).parts
    if as_posix.startswith("/"):
        raise UnsafeArchiveError(archive, name, "absolute path")
    if len(as_posix) >= 2 and as_posix[1] == ":" and as_posix[0].isalpha():
        raise UnsafeArchiveError(archive, name, "Windows drive path")
    if ".." in parts:
        reason = "path traversal ('..') using backslashes" if "\\" in name else "path traversal ('..')"
        raise UnsafeArchiveError(archive, name, reason)
    target = (dest / as_posix).resolve()
    # resolve() also follows links already present in dest, so this catches a pre-existing symlink
    # inside the destination that would redirect the entry elsewhere.
    if target != dest and dest not in target.parents:
        raise UnsafeArchiveError(archive, name, f"would be written outside {dest}")
    return target


def _tar_entry_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member must not be extracted, or ``None`` for a plain file or folder."""
    if member.issym():
        return f"symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "device file"
    if member.isfifo():
        return "FIFO (named pipe)"
    if not (member.isfile() or member.isdir()):
        return f"unsupported tar entry type {member.type!r}"
    return None


def _zip_entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member must not be extracted, or ``None`` for a plain file or folder."""
    # Zips made on Unix keep the file mode in the high 16 bits of external_attr; zipfile would
    # write a symlink entry as a small file holding the target path, which is still not a face.
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic link"
    # Many zip writers store permission bits only (no file type): that is an ordinary file.
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "device file, FIFO or other special entry"
    return None


def _validate_entries(archive: Path, dest: Path, entries: list[tuple[str, str | None, bool]]) -> list[Path]:
    """Check every ``(name, problem, is_file)`` entry before anything is written; return the
    destination paths of the files. The first unsafe type or name raises :class:`UnsafeArchiveError`."""
    targets = []
    for name, problem, is_file in entries:
        if problem:
            raise UnsafeArchiveError(archive, name, problem)
        target = _check_name(archive, name, dest)
        if is_file:
            targets.append(target)
    return targets


def _corrupt(archive: Path, err: BaseException) -> CorruptArchiveError:
    return CorruptArchiveError(f"{archive}: corrupt or truncated archive ({type(err).__name__}: {err})")


def _extract_tar(archive: Path, dest: Path) -> list[Path]:
    try:
        with tarfile.open(archive, "r:*") as tar:
            # getmembers() reads every header to the end of the archive, so validation covers all
            # entries (and a truncated archive fails here) before the first byte is written.
            members = tar.getmembers()
            targets = _validate_entries(archive, dest, [(m.name, _tar_entry_problem(m), m.isfile()) for m in members])
            dest.mkdir(parents=True, exist_ok=True)
            if hasattr(tarfile, "data_filter"):  # Python 3.12, and 3.8.17+/3.9.17+/3.10.12+/3.11.4+
                try:
                    tar.extractall(dest, members=members, filter="data")
                except tarfile.FilterError as err:  # our checks should have caught it first
                    entry = err.tarinfo.name if getattr(err, "tarinfo", None) is not None else "?"
                    raise UnsafeArchiveError(archive, entry, str(err)) from err
            else:
                tar.extractall(dest, members=members)  # every member was validated above
    except UnsafeArchiveError:
        raise
    except _CORRUPT_ERRORS as err:
        raise _corrupt(archive, err) from err
    return targets


def _extract_zip(archive: Path, dest: Path) -> list[Path]:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            targets = _validate_entries(
                archive, dest, [(i.filename, _zip_entry_problem(i), not i.is_dir()) for i in infos]
            )
            dest.mkdir(parents=True, exist_ok=True)
            for info in infos:
                zf.extract(info, dest)  # reads and CRC-checks each member; names already validated
    except UnsafeArchiveError:
        raise
    except _CORRUPT_ERRORS as err:
        raise _corrupt(archive, err) from err
    return targets


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Extract ``archive`` into ``dest`` after checking every entry; return the extracted files.

    All entries are validated before anything is written. Raises :class:`UnsafeArchiveError`
    (a ``ValueError``) naming the entry for path traversal (``..``, also with backslashes), absolute
    paths, Windows drive paths, symbolic or hard links, devices and FIFOs; and
    :class:`CorruptArchiveError` (a ``ValueError``) naming the file for a truncated or damaged
    archive. A corrupt member found only while extracting can leave earlier members in ``dest``
    (never outside it); :func:`extract_to_cache` extracts into a temporary folder for that reason.
    """
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: no such archive")
    dest = Path(dest).expanduser().resolve()
    name = archive.name.lower()
    if name.endswith(".zip"):
        return _extract_zip(archive, dest)
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return _extract_tar(archive, dest)
    raise ValueError(f"{archive}: not a .zip, .tar.gz, .tgz or .tar archive")


def _cache_key(archive: Path) -> str:
    """First 12 hex digits of a hash of size, mtime and name: cheap, and changes when the file does."""
    st = archive.stat()
    return hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:{archive.name}".encode()).hexdigest()[:12]


def marker_path(folder: str | os.PathLike) -> Path:
    """The ``.complete`` marker of an extraction folder: a sibling ``<folder>.complete`` file.

    It sits next to the folder rather than inside it so that scanning the folder for images sees
    only what the archive held (a hidden file inside would be counted as a reject).
    """
    folder = Path(folder)
    return folder.with_name(folder.name + MARKER_SUFFIX)


def default_extract_dir(archive: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache>/extracted/<archive stem>-<12 hex digits>``: where :func:`extract_to_cache` puts ``archive``.

    The digits hash the archive's size, mtime and name, so a changed archive gets a fresh folder.
    ``cache_dir`` defaults to :func:`agecourse.config.cache_dir`.
    """
    archive = Path(archive).expanduser()
    if cache_dir is None:
        cache_dir = config.cache_dir()
    return Path(cache_dir).expanduser() / "extracted" / f"{archive_stem(archive)}-{_cache_key(archive)}"


def extract_to_cache(
    archive: str | os.PathLike, dest: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
) -> Path:
    """Extract ``archive`` once and return the extraction folder, reusing it on later calls.

    The folder is ``dest`` or :func:`default_extract_dir` (under ``cache_dir``, by default
    :func:`agecourse.config.cache_dir`). The archive is extracted with
    :func:`safe_extract` into a temporary sibling folder, renamed into place when complete, and
    only then is the ``.complete`` marker (see :func:`marker_path`) written. A folder without its
    marker is an interrupted run: in the cache it is replaced; a non-empty ``dest`` without a
    marker raises ``ValueError`` rather than being deleted. The returned folder is the extraction
    root even when the archive holds a single top-level folder (``UTKFace/``): scan it recursively.
    """
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: no such archive")
    if not is_archive(archive):
        raise ValueError(f"{archive}: not a .zip, .tar.gz, .tgz or .tar archive")
    key = _cache_key(archive)
    if dest is None:
        target = default_extract_dir(archive, cache_dir)
        ours = True
    else:
        target = Path(dest).expanduser()
        ours = False
    target = target.resolve()
    marker = marker_path(target)
    if marker.is_file() and target.is_dir():
        if _marker_key(marker) == key:
            return target
        # A finished extraction of another archive (or of this one before it changed): the marker
        # proves this module made the folder, so replacing it loses nothing of the user's.
        _remove(target)
    _remove(marker)
    if target.exists():
        if ours or (target.is_dir() and not any(target.iterdir())):
            _remove(target)
        else:
            raise ValueError(
                f"{target}: exists but is not a completed extraction of {archive.name}; "
                "remove it or choose an empty folder"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        files = safe_extract(archive, tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            # Another process finished the same extraction first: use its folder.
            if marker.is_file() and target.is_dir():
                _remove(tmp)
                return target
            raise
        info = {"archive": str(archive), "cache_key": key, "files": len(files)}
        marker.write_text(json.dumps(info) + "\n", encoding="utf-8")
    except BaseException:
        # Leave no half-extracted folder behind, whatever stopped us (error or Ctrl-C).
        _remove(tmp)
        raise
    return target


def _marker_key(marker: Path) -> str | None:
    """The cache key recorded in a ``.complete`` marker, or ``None`` when it is unreadable."""
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("cache_key")
    except (OSError, ValueError, AttributeError):
        return None


def _remove(path: Path) -> None:
    """Delete a file or folder tree that this module created; a missing path is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
