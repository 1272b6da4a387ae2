"""Downloading UTKFace: streamed, checked, cached, with fallback mirrors.

Introduced in lesson 01 (load).

UTKFace's official home (https://susanqq.github.io/UTKFace/) links to Google Drive, which cannot be
fetched reliably by a script (confirmation pages, quotas). :data:`SOURCES` therefore lists public
mirrors, tried in order; a failing mirror is reported and the next one is tried.

Every download is streamed into a ``.part`` file next to its destination, its length is compared
with the ``Content-Length`` the server announced, its SHA-256 is computed on the fly and compared
with the pinned hash when there is one, and only then is it renamed into place. A cut connection or
a wrong file therefore never leaves something in the cache that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from agecourse import config
from agecourse.archive import extract_to_cache, is_archive, marker_path
from agecourse.data import FilenameError, parse_filename

MANUAL_HINT = (
    "download UTKFace manually (https://susanqq.github.io/UTKFace/ or a mirror) and pass the "
    "folder, .zip or .tar.gz with --data PATH or AGECOURSE_DATA=PATH"
)


@dataclass(frozen=True)
class Source:
    """One place to download UTKFace from.

    ``sha256`` is the expected hash of the archive and ``size`` its exact length in bytes: a
    *pinned* source (both known) refuses any other file, naming both hashes. ``sha256=None`` means
    the file is not pinned; such a source is only a fallback, checked as strictly as its fields
    allow: ``size_range`` (least and most bytes), ``image_count`` (the least number of
    UTKFace-named images the extracted archive must hold) and ``image_count_max`` (the most), and
    ``min_name_share`` (the least share of the image files whose names follow UTKFace's
    ``age_gender_race_datetime.jpg`` pattern). Using one says so.
    """

    name: str
    url: str
    sha256: str | None
    image_count: int | None
    archive_name: str
    size: int | None = None
    size_range: tuple[int, int] | None = None
    image_count_max: int | None = None
    min_name_share: float | None = None

    @property
    def pinned(self) -> bool:
        """True when the archive's SHA-256 is known, so only that exact file is accepted."""
        return self.sha256 is not None


# The pinned file: py97/UTKFace-Cropped on Hugging Face at commit e80f21f..., UTKFace.tar.gz. A public
# provenance record of that commit gives its length, SHA-256 and content: the 23,708 JPEGs of the
# "aligned & cropped faces" release under UTKFace/ (e.g. UTKFace/82_0_2_20170111210110290.jpg.chip.jpg).
UTKFACE_COMMIT = "e80f21fb21fa3631380c3cb634b79be3ac2f4cba"
UTKFACE_SIZE = 106_634_631
UTKFACE_SHA256 = "2c0655397b498e81b82d685ee74bee8c2e4364a5897caf3afec6ea48929024a7"
UTKFACE_IMAGES = 23_708
# What an unpinned fallback must look like to be accepted: an archive of 80-200 MB holding between
# 23,000 and 24,500 images of which at least 99 % follow UTKFace's file-name pattern.
FALLBACK_SIZE_RANGE = (80_000_000, 200_000_000)
FALLBACK_IMAGES = (23_000, 24_500)
FALLBACK_NAME_SHARE = 0.99

# Mirrors of UTKFace, tried in order:
#
# * py97/UTKFace-Cropped on Hugging Face, pinned (commit, size and SHA-256 above);
# * the same file through hf-mirror.com, a public mirror of the Hugging Face Hub (same URL scheme),
#   for networks where huggingface.co is blocked or slow: the same commit's file, so the same pins;
# * nlphuji/utk_faces on Hugging Face: utk_faces_images.zip (about 133 MB) next to a metadata CSV.
#   Its hash is not known, so it is a fallback only, with the strict checks above; fetch() warns
#   when it is used and prints the SHA-256 it computed.
SOURCES: tuple[Source, ...] = (
    Source(
        name="huggingface-py97",
        url=f"https://huggingface.co/datasets/py97/UTKFace-Cropped/resolve/{UTKFACE_COMMIT}/UTKFace.tar.gz",
        sha256=UTKFACE_SHA256,
        image_count=UTKFACE_IMAGES,
        archive_name="UTKFace.tar.gz",
        size=UTKFACE_SIZE,
    ),
    Source(
        name="hf-mirror-py97",
        url=f"https://hf-mirror.com/datasets/py97/UTKFace-Cropped/resolve/{UTKFACE_COMMIT}/UTKFace.tar.gz",
        sha256=UTKFACE_SHA256,
        image_count=UTKFACE_IMAGES,
        archive_name="UTKFace.tar.gz",
        size=UTKFACE_SIZE,
    ),
    Source(
        name="huggingface-nlphuji",
        url="https://huggingface.co/datasets/nlphuji/utk_faces/resolve/main/utk_faces_images.zip",
        sha256=None,  # unknown: a fallback with strict checks
        image_count=FALLBACK_IMAGES[0],
        archive_name="utk_faces_images.zip",
        size_range=FALLBACK_SIZE_RANGE,
        image_count_max=FALLBACK_IMAGES[1],
        min_name_share=FALLBACK_NAME_SHARE,
    ),
)


def source_from_url(url: str, sha256: str | None = None, image_count: int | None = None) -> Source:
    """A :class:`Source` for a URL of your own (a course mirror, a teacher's copy), e.g. for
    ``agecourse data fetch --url URL [--sha256 HEX]``.

    The URL must end in an archive name (``.zip``, ``.tar.gz``, ``.tgz`` or ``.tar``). The source is
    named after the host plus a short hash of the URL, so two URLs never share a cache folder.
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"{url}: not an http(s) URL")
    archive_name = Path(parsed.path).name
    if not is_archive(archive_name):
        raise ValueError(f"{url}: the URL must end in a .zip, .tar.gz, .tgz or .tar file name")
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256.strip()):
        raise ValueError(f"{sha256!r}: not a SHA-256 (64 hex digits)")
    host = "".join(c if c.isalnum() or c in ".-" else "-" for c in parsed.netloc)
    name = f"{host}-{hashlib.sha1(url.encode()).hexdigest()[:8]}"
    return Source(name=name, url=url, sha256=sha256, image_count=image_count, archive_name=archive_name)


class DownloadError(RuntimeError):
    """A download that failed: HTTP error, connection problem, truncated transfer, wrong content."""


class ChecksumMismatch(DownloadError):
    """The downloaded file's SHA-256 is not the expected one."""

    def __init__(self, source: str, expected: str, actual: str) -> None:
        self.source = source
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{source}: checksum mismatch, file refused: expected sha256 {expected}, got {actual} "
            "(a different file from the one pinned)"
        )


class SourceFailedWarning(UserWarning):
    """One mirror failed and the next one is being tried."""


class UnpinnedSourceWarning(UserWarning):
    """UTKFace came from a fallback whose file is not pinned by hash (it passed the strict checks)."""


def sha256_of(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """The SHA-256 of a file, as lowercase hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _content_length(headers) -> int | None:
    value = headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _short_reason(err: BaseException) -> str:
    """The root cause of a connection error in a few words: requests wraps it in two layers and
    repeats the URL in each, e.g. ``Failed to resolve 'huggingface.co' ([Errno -2] Name or service
    not known)`` or ``Failed to establish a new connection: [Errno 111] Connection refused``."""
    reason = err
    for _ in range(4):  # requests.ConnectionError -> urllib3 MaxRetryError -> the socket-level error
        inner = getattr(reason, "reason", None)
        if inner is None and reason.args and isinstance(reason.args[0], BaseException):
            inner = reason.args[0]
        if not isinstance(inner, BaseException):
            break
        reason = inner
    text = re.sub(r"^\w*Connection(Pool)?\([^)]*\):\s*", "", str(reason))
    return f"{type(reason).__name__}: {text}" if text else type(reason).__name__


def _size_problem(size: int, exact: int | None, size_range: tuple[int, int] | None) -> str:
    """Why ``size`` bytes is not what a source promises ("" when it is)."""
    if exact is not None and size != exact:
        return f"{size:,} bytes, but the pinned file has {exact:,}"
    if size_range is not None and not size_range[0] <= size <= size_range[1]:
        return f"{size:,} bytes, outside the {size_range[0]:,}-{size_range[1]:,} bytes expected"
    return ""


def _download(
    url: str,
    dest: Path,
    sha256: str | None,
    progress: bool,
    timeout: float,
    chunk_size: int,
    size: int | None = None,
    size_range: tuple[int, int] | None = None,
) -> str:
    """Stream ``url`` into ``dest`` through a ``.part`` file; return the SHA-256 of what was written.

    ``size`` (exact) or ``size_range`` are checked against the announced ``Content-Length`` before
    anything is downloaded, and against the bytes received afterwards."""
    # lazy: the network libraries (and tqdm's notebook widgets) load only when a download happens;
    # every command line start and every lesson imports this module, most without downloading
    import requests
    import urllib3
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    received = 0
    expected: int | None = None
    # The bytes are the archive itself: ask for no transfer compression, and read the raw stream
    # without decoding, so Content-Length and the hash both refer to exactly the file's bytes.
    headers = {"Accept-Encoding": "identity", "User-Agent": "agecourse (course data download)"}
    try:
        with requests.get(url, stream=True, timeout=timeout, headers=headers) as resp:
            if resp.status_code >= 400:
                raise DownloadError(f"{url}: HTTP {resp.status_code} {resp.reason or ''}".rstrip())
            expected = _content_length(resp.headers)
            if expected is not None and (problem := _size_problem(expected, size, size_range)):
                raise DownloadError(f"{url}: refused before downloading: the server announces {problem}")
            with (
                open(part, "wb") as fh,
                tqdm(
                    total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, disable=not progress
                ) as bar,
            ):
                for chunk in resp.raw.stream(chunk_size, decode_content=False):
                    fh.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if expected is not None and received != expected:
            raise DownloadError(f"{url}: truncated transfer: got {received} of {expected} bytes")
        if problem := _size_problem(received, size, size_range):
            raise DownloadError(f"{url}: refused: received {problem}")
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256.strip().lower():
            raise ChecksumMismatch(url, sha256, actual)
        os.replace(part, dest)
        return actual
    except (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as err:
        # urllib3 raises ProtocolError (IncompleteRead) itself when the server closes the connection
        # before sending the Content-Length it announced.
        if expected is not None and received < expected:
            what = f"truncated transfer: got {received} of {expected} bytes"
        elif received == 0 and isinstance(err, requests.ConnectionError):
            what = "could not connect"
        else:
            what = f"transfer failed after {received} bytes"
        raise DownloadError(f"{url}: {what} ({_short_reason(err)})") from err
    finally:
        if part.exists():
            part.unlink()


def download_file(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest``, verified; return ``dest``.

    The body is streamed into ``<dest>.part`` with a tqdm progress bar (``progress=False`` hides
    it). The number of bytes received must equal the announced ``Content-Length``, and the SHA-256
    must equal ``sha256`` when given; only then is the file renamed to ``dest``. On any failure the
    ``.part`` file is removed and :class:`DownloadError` (for a wrong hash its subclass
    :class:`ChecksumMismatch`, with both hashes) is raised naming the URL and the problem: HTTP
    status, connection error, or bytes received versus expected. ``timeout`` is in seconds per
    connection attempt and per read.
    """
    dest = Path(dest).expanduser()
    _download(url, dest, sha256, progress, timeout, chunk_size)
    return dest


# --- fetch: mirrors, cache, extraction -------------------------------------------------------


def _archive_path(source: Source, cache_dir: Path) -> Path:
    # One folder per source: two mirrors may serve files of the same name with different content.
    return cache_dir / "downloads" / source.name / source.archive_name


def _record_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".verified")


def _is_verified(source: Source, archive: Path) -> bool:
    """True when ``archive`` was downloaded and checked by an earlier fetch and has not changed."""
    record = _record_path(archive)
    if not (archive.is_file() and record.is_file()):
        return False
    try:
        info = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(info, dict) or info.get("url") != source.url:
        return False
    if info.get("size") != archive.stat().st_size:  # changed or replaced since it was checked
        return False
    if source.size is not None and info.get("size") != source.size:
        return False
    return source.sha256 is None or info.get("sha256") == source.sha256.strip().lower()


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)


def _fetch_one(source: Source, cache_dir: Path, progress: bool, extract: bool) -> Path:
    """Download (or reuse), verify and extract one source; raise :class:`DownloadError` on failure."""
    archive = _archive_path(source, cache_dir)
    reused = _is_verified(source, archive)
    digest = None
    if reused:
        _say(progress, f"Using {archive} (downloaded and verified earlier)")
    else:
        _say(progress, f"Downloading UTKFace from {source.name}: {source.url}")
        digest = _download(
            source.url,
            archive,
            source.sha256,
            progress,
            timeout=30,
            chunk_size=1 << 20,
            size=source.size,
            size_range=source.size_range,
        )
    if not extract:
        result = archive
    else:
        try:
            folder = extract_to_cache(archive, cache_dir=cache_dir)
        except ValueError as err:  # corrupt or unsafe archive: this source is unusable
            archive.unlink(missing_ok=True)
            _record_path(archive).unlink(missing_ok=True)
            raise DownloadError(f"{source.name}: {err}") from err
        problem = _content_problem(source, folder)
        if problem:
            # Wrong or incomplete content: forget it so that a later run does not reuse it.
            shutil.rmtree(folder, ignore_errors=True)
            marker_path(folder).unlink(missing_ok=True)
            archive.unlink(missing_ok=True)
            _record_path(archive).unlink(missing_ok=True)
            raise DownloadError(f"{source.name}: {source.archive_name} {problem}")
        result = folder
    if not reused:
        record = {"url": source.url, "size": archive.stat().st_size, "sha256": digest}
        if extract:
            record["extracted"] = str(result)
        _record_path(archive).write_text(json.dumps(record) + "\n", encoding="utf-8")
        if source.sha256 is None:
            _say(
                progress,
                f"{source.name}: sha256 {digest} (no pinned hash; the file passed the length, "
                "extraction and image-count checks)",
            )
    elif extract:
        _update_record(archive, extracted=str(result))
    if extract:
        pointer = {"folder": str(result), "source": source.name, "url": source.url, "pinned": source.pinned}
        (cache_dir / config.UTKFACE_POINTER).write_text(json.dumps(pointer) + "\n", encoding="utf-8")
    if not source.pinned:
        warnings.warn(
            f"UTKFace came from {source.name} ({source.url}), a fallback whose file is not pinned by hash: "
            "it passed the size, image-count and file-name checks, but it is not the pinned release",
            UnpinnedSourceWarning,
            stacklevel=3,
        )
    return result


def _update_record(archive: Path, **fields) -> None:
    """Add ``fields`` to the verification record of ``archive`` (kept when unreadable)."""
    record = _record_path(archive)
    try:
        info = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(info, dict) and any(info.get(k) != v for k, v in fields.items()):
        record.write_text(json.dumps({**info, **fields}) + "\n", encoding="utf-8")


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _content_problem(source: Source, folder: Path) -> str:
    """Why the extracted ``folder`` is not what ``source`` promises ("" when it is): too few or too
    many UTKFace-named images, or too many image files whose names do not follow the pattern."""
    named = images = 0
    for path in folder.rglob("*"):
        if path.name.startswith(".") or not path.is_file():
            continue
        is_image = path.name.lower().endswith(IMAGE_SUFFIXES)
        images += is_image
        try:
            parse_filename(path.name)
        except FilenameError:
            continue
        named += 1
    if source.image_count is not None and named < source.image_count:
        return f"holds {named} UTKFace-named images, expected at least {source.image_count}"
    if source.image_count_max is not None and named > source.image_count_max:
        return f"holds {named} UTKFace-named images, expected at most {source.image_count_max}"
    if source.min_name_share is not None and images and named / images < source.min_name_share:
        return (
            f"holds {images} images of which only {named} ({named / images:.0%}) have UTKFace file names "
            f"(age_gender_race_datetime.jpg), expected at least {source.min_name_share:.0%}"
        )
    return ""


def fetch(
    sources: Iterable[Source] | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    extract: bool = True,
) -> Path:
    """Get UTKFace into the cache and return the extracted folder (or the archive if ``extract=False``).

    Each source (default :data:`SOURCES`) is tried in order. An archive already downloaded and verified for a source is
    reused without a download; otherwise it is downloaded with :func:`download_file`'s checks. With
    ``extract=True`` the archive is extracted safely into ``<cache>/extracted/`` and, when the
    source sets ``image_count``, must hold at least that many UTKFace-named images. A failing source
    is reported with a :class:`SourceFailedWarning` naming it and the reason, and the next is tried.
    When all fail, :class:`DownloadError` lists every source with its reason and says how to supply
    the data by hand. ``cache_dir`` defaults to :func:`agecourse.config.cache_dir`.
    """
    import requests  # lazy: see _download

    cache = Path(cache_dir).expanduser() if cache_dir is not None else config.cache_dir()
    failures = []
    for source in SOURCES if sources is None else sources:
        try:
            return _fetch_one(source, cache, progress, extract)
        except (DownloadError, requests.RequestException) as err:
            reason = str(err).removeprefix(f"{source.url}: ")  # the URL is named once, here
            failures.append(f"{source.name} ({source.url}): {reason}")
            warnings.warn(
                f"UTKFace source {source.name} failed: {reason}; trying the next one",
                SourceFailedWarning,
                stacklevel=2,
            )
    if not failures:
        raise DownloadError(f"no download sources were given; {MANUAL_HINT}")
    raise DownloadError(f"could not download UTKFace from any source: {'; '.join(failures)}. Please {MANUAL_HINT}")


def fetch_if_needed(settings: config.Settings, progress: bool = True) -> config.Settings:
    """``settings`` with UTKFace downloaded, where the course does that by itself: in Colab and the
    ``gpu`` profile (:func:`agecourse.config.auto_fetch_enabled`), when the settings have no real
    data yet (no ``AGECOURSE_DATA``, no copy in the cache, no ``data_dir`` given). Lesson setup
    cells and the CLI call it; ``ci`` never downloads.

    A failed download never raises: the settings stay on synthetic faces and their ``data_note``
    becomes a warning that says why and how to fix it.
    """
    if not settings.uses_synthetic or config.data_from_env()[0]:
        return settings
    if not config.auto_fetch_enabled(settings.profile):
        return settings
    _say(progress, f"Downloading UTKFace into the cache (about {UTKFACE_SIZE / 1e6:.0f} MB, once per runtime) ...")
    try:
        folder = fetch(progress=progress)
    except (DownloadError, OSError) as err:
        return settings.replace(
            data_note=(
                "WARNING: UTKFace could not be downloaded, so this run uses SYNTHETIC faces (not real people). "
                f"Why: {err} Fix: check the network (Colab: Runtime > Restart and run all), or download "
                "UTKFace yourself and set AGECOURSE_DATA to the folder or archive"
            )
        )
    return settings.replace(data_dir=folder, data_note=f"UTKFace downloaded into the cache at {folder}")
