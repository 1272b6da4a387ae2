"""Downloads (agecourse.download) against a local HTTP server: never the internet."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import tarfile
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest

from agecourse import download as dl
from agecourse.archive import marker_path
from agecourse.data import FilenameError, parse_filename
from agecourse.download import (
    SOURCES,
    ChecksumMismatch,
    DownloadError,
    Source,
    SourceFailedWarning,
    download_file,
    fetch,
)

N_IMAGES = 5


def count_utkface_images(folder) -> int:
    """Files under ``folder`` (recursively) whose names parse as UTKFace file names."""
    count = 0
    for path in Path(folder).rglob("*"):
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            parse_filename(path.name)
        except FilenameError:
            continue
        count += 1
    return count


def jpeg_bytes(seed: int = 0, size: int = 8) -> bytes:
    """A tiny random JPEG."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG")
    return buf.getvalue()


def make_tar(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; ``/truncated/<file>`` announces 1000 bytes more than it sends, then hangs up."""

    requests_seen: list[str]

    def do_GET(self):  # noqa: N802 - the name http.server dispatches to
        self.requests_seen.append(self.path)
        if self.path.startswith("/truncated/"):
            data = (Path(self.directory) / self.path.removeprefix("/truncated/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data) + 1000))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format, *args):  # keep the test output clean
        return


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A ThreadingHTTPServer on 127.0.0.1 serving ``tmp_path/served``; yields (base_url, folder, log)."""
    for var in ("NO_PROXY", "no_proxy"):  # a proxy configured on the machine must not intercept
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()
    log: list[str] = []
    handler = partial(type("H", (_Handler,), {"requests_seen": log}), directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served, log
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("AGECOURSE_DATA_DIR", str(path))
    return path


def utk_archive(folder: Path, name: str = "utk.tar.gz", n: int = N_IMAGES, side: int = 8) -> tuple[Path, str]:
    """A tar.gz of ``n`` UTKFace-named JPEGs (``side`` px) plus a non-image; returns (path, sha256)."""
    entries = [
        (f"UTKFace/{20 + i}_{i % 2}_{i % 5}_2017011617452{i}125.jpg.chip.jpg", jpeg_bytes(i, side)) for i in range(n)
    ]
    path = make_tar(folder / name, [*entries, ("UTKFace/README.txt", b"not an image")])
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_sources_are_well_formed():
    assert SOURCES and len({s.name for s in SOURCES}) == len(SOURCES)
    for source in SOURCES:
        assert source.url.startswith("https://") and source.url.endswith(source.archive_name)
        assert source.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", source.sha256)
        assert source.image_count is None or source.image_count > 0


def test_download_file_good(server, tmp_path):
    base, served, _ = server
    path, sha = utk_archive(served)
    dest = download_file(f"{base}/utk.tar.gz", tmp_path / "dl" / "utk.tar.gz", sha256=sha, progress=False)
    assert dest.read_bytes() == path.read_bytes()
    assert leftovers(tmp_path / "dl") == [dest]


def test_download_file_checksum_mismatch(server, tmp_path):
    base, served, _ = server
    _, sha = utk_archive(served)
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatch) as info:
        download_file(f"{base}/utk.tar.gz", tmp_path / "dl" / "utk.tar.gz", sha256=wrong, progress=False)
    message = str(info.value)
    assert wrong in message and sha in message and f"{base}/utk.tar.gz" in message
    assert leftovers(tmp_path / "dl") == []  # neither the .part file nor the final one


def test_download_file_truncated(server, tmp_path):
    base, served, _ = server
    path, _ = utk_archive(served)
    size = path.stat().st_size
    with pytest.raises(DownloadError, match=rf"truncated.*got {size} of {size + 1000} bytes") as info:
        download_file(f"{base}/truncated/utk.tar.gz", tmp_path / "dl" / "utk.tar.gz", progress=False)
    assert f"{base}/truncated/utk.tar.gz" in str(info.value)
    assert leftovers(tmp_path / "dl") == []


def test_download_file_http_error(server, tmp_path):
    base, _, _ = server
    with pytest.raises(DownloadError, match=rf"{re.escape(base)}/missing.tar.gz: HTTP 404"):
        download_file(f"{base}/missing.tar.gz", tmp_path / "dl" / "x.tar.gz", progress=False)
    assert leftovers(tmp_path / "dl") == []


def test_download_file_connection_refused(tmp_path):
    import socket

    with socket.socket() as sock:  # a port that nothing listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match=f"127.0.0.1:{port}"):
        download_file(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", progress=False, timeout=5)


def test_fetch_good_source(server, cache):
    base, served, log = server
    _, sha = utk_archive(served)
    source = Source("local", f"{base}/utk.tar.gz", sha, N_IMAGES, "utk.tar.gz")
    folder = fetch([source], progress=False)
    assert (cache / "downloads" / "local" / "utk.tar.gz").is_file()
    assert (cache / "extracted") in folder.parents
    assert count_utkface_images(folder) == N_IMAGES
    assert len(list(folder.rglob("*.jpg"))) == N_IMAGES
    # A second fetch reuses the verified archive and the extracted folder: no request at all.
    requests_before = len(log)
    assert fetch([source], progress=False) == folder
    assert len(log) == requests_before


def test_fetch_without_extract_returns_archive(server, cache):
    base, served, _ = server
    path, sha = utk_archive(served)
    result = fetch([Source("local", f"{base}/utk.tar.gz", sha, None, "utk.tar.gz")], extract=False, progress=False)
    assert result == cache / "downloads" / "local" / "utk.tar.gz"
    assert result.read_bytes() == path.read_bytes()


def test_fetch_unknown_hash_prints_it(server, cache, capsys):
    base, served, _ = server
    _, sha = utk_archive(served)
    fetch([Source("local", f"{base}/utk.tar.gz", None, N_IMAGES, "utk.tar.gz")], progress=True)
    assert f"sha256 {sha}" in capsys.readouterr().out


def test_fetch_checksum_mismatch_leaves_nothing(server, cache):
    base, served, _ = server
    utk_archive(served)
    source = Source("local", f"{base}/utk.tar.gz", "f" * 64, N_IMAGES, "utk.tar.gz")
    with pytest.warns(SourceFailedWarning, match="local"), pytest.raises(DownloadError, match="f" * 64):
        fetch([source], progress=False)
    assert leftovers(cache) == []


def test_fetch_falls_back_after_404(server, cache):
    base, served, _ = server
    _, sha = utk_archive(served)
    sources = [
        Source("gone", f"{base}/missing.tar.gz", None, None, "missing.tar.gz"),
        Source("good", f"{base}/utk.tar.gz", sha, N_IMAGES, "utk.tar.gz"),
    ]
    with pytest.warns(SourceFailedWarning, match=r"source gone failed: .*HTTP 404"):
        folder = fetch(sources, progress=False)
    assert count_utkface_images(folder) == N_IMAGES


def test_fetch_all_sources_fail(server, cache):
    base, served, _ = server
    utk_archive(served)
    sources = [
        Source("gone", f"{base}/missing.tar.gz", None, None, "missing.tar.gz"),
        Source("cut", f"{base}/truncated/utk.tar.gz", None, None, "utk.tar.gz"),
    ]
    with pytest.warns(SourceFailedWarning), pytest.raises(DownloadError) as info:
        fetch(sources, progress=False)
    message = str(info.value)
    assert "gone (" in message and "HTTP 404" in message
    assert "cut (" in message and "truncated" in message
    assert "--data" in message and "AGECOURSE_DATA" in message
    assert "\n" not in message
    assert leftovers(cache) == []


def test_fetch_too_few_images_is_a_failure(server, cache):
    base, served, _ = server
    _, sha = utk_archive(served)
    source = Source("small", f"{base}/utk.tar.gz", sha, N_IMAGES + 1, "utk.tar.gz")
    with (
        pytest.warns(SourceFailedWarning),
        pytest.raises(DownloadError, match=f"holds {N_IMAGES} UTKFace-named images"),
    ):
        fetch([source], progress=False)
    # Neither the archive nor its extraction is kept for a later run to trust.
    assert leftovers(cache) == []


def test_fetch_hostile_archive_is_a_failure(server, cache):
    base, served, _ = server
    make_zip(served / "evil.zip", [("UTKFace/1_0_0_20170101000000000.jpg", jpeg_bytes()), ("../../evil.txt", b"pwned")])
    with pytest.warns(SourceFailedWarning), pytest.raises(DownloadError, match="unsafe entry"):
        fetch([Source("evil", f"{base}/evil.zip", None, None, "evil.zip")], progress=False)
    assert not any(p.name == "evil.txt" for p in cache.parent.rglob("evil.txt"))
    assert leftovers(cache) == []


def test_fetch_redownloads_a_changed_cached_archive(server, cache):
    base, served, log = server
    _, sha = utk_archive(served)
    source = Source("local", f"{base}/utk.tar.gz", sha, N_IMAGES, "utk.tar.gz")
    folder = fetch([source], progress=False)
    cached = cache / "downloads" / "local" / "utk.tar.gz"
    cached.write_bytes(b"damaged")  # size no longer matches the verification record
    marker_path(folder).unlink()
    requests_before = len(log)
    fetch([source], progress=False)
    assert len(log) == requests_before + 1
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha


def test_source_from_url_names_and_checks(server):
    base, _, _ = server
    source = dl.source_from_url(f"{base}/mirror/UTKFace.tar.gz", "A" * 64)
    assert source.archive_name == "UTKFace.tar.gz" and source.url.endswith("/mirror/UTKFace.tar.gz")
    assert source.name.startswith("127.0.0.1-") and "/" not in source.name and ":" not in source.name
    assert dl.source_from_url(f"{base}/other/UTKFace.tar.gz").name != source.name  # separate cache folders
    for url, message in (
        ("ftp://example.org/utk.zip", "not an http"),
        (f"{base}/page.html", "must end in"),
    ):
        with pytest.raises(ValueError, match=message):
            dl.source_from_url(url)
    with pytest.raises(ValueError, match="not a SHA-256"):
        dl.source_from_url(f"{base}/utk.zip", sha256="1234")


def test_fetch_from_a_url_of_your_own(server, cache):
    base, served, _ = server
    _, sha = utk_archive(served)
    folder = fetch([dl.source_from_url(f"{base}/utk.tar.gz", sha, image_count=N_IMAGES)], progress=False)
    assert count_utkface_images(folder) == N_IMAGES


def test_connection_failure_names_the_root_cause_once(cache):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/utk.zip"
    with pytest.warns(SourceFailedWarning), pytest.raises(DownloadError) as info:
        fetch([dl.source_from_url(url)], progress=False)
    message = str(info.value)
    assert "could not connect" in message and "Connection refused" in message
    assert message.count(url) == 1 and "HTTPConnectionPool" not in message


# --- the pinned mirror and UTKFace by default when online (issue 13) ------------------------------


def test_the_pinned_mirror_is_the_provenance_record():
    first = SOURCES[0]
    assert first.url == (
        "https://huggingface.co/datasets/py97/UTKFace-Cropped/resolve/"
        "e80f21fb21fa3631380c3cb634b79be3ac2f4cba/UTKFace.tar.gz"
    )
    assert first.pinned and first.size == 106_634_631 and first.image_count == 23_708
    assert first.sha256 == "2c0655397b498e81b82d685ee74bee8c2e4364a5897caf3afec6ea48929024a7"
    # The unpinned source is a fallback only, behind the pinned ones, and strictly checked.
    unpinned = [i for i, s in enumerate(SOURCES) if not s.pinned]
    assert unpinned and min(unpinned) > max(i for i, s in enumerate(SOURCES) if s.pinned)
    for i in unpinned:
        source = SOURCES[i]
        assert source.size_range and source.image_count and source.image_count_max and source.min_name_share


def _pinned_local(base: str, archive: Path, sha: str, name: str = "utk.tar.gz") -> Source:
    """The real pinned source with its URL, size and hash patched to the local test archive."""
    import dataclasses

    return dataclasses.replace(
        SOURCES[0], url=f"{base}/{name}", sha256=sha, size=archive.stat().st_size, image_count=N_IMAGES
    )


def _dead_source(tmp_path: Path) -> Source:
    import socket

    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return Source("dead", f"http://127.0.0.1:{port}/UTKFace.tar.gz", None, None, "UTKFace.tar.gz")


@pytest.fixture
def online(server, cache, monkeypatch, tmp_path):
    """UTKFace sources = a dead first mirror, then the pinned source pointing at the local server."""
    base, served, log = server
    archive, sha = utk_archive(served, side=48)  # big enough for the loader to accept
    monkeypatch.setattr(dl, "SOURCES", (_dead_source(tmp_path), _pinned_local(base, archive, sha)))
    monkeypatch.delenv("AGECOURSE_AUTO_FETCH", raising=False)
    monkeypatch.delenv("AGECOURSE_DATA", raising=False)
    return base, served, log, archive, sha


def test_gpu_profile_fetches_utkface_on_first_use_then_finds_it_in_the_cache(online, cache, capsys):
    from agecourse.config import get_settings
    from agecourse.data import load_course_data

    _, _, log, _, _ = online
    with pytest.warns(SourceFailedWarning, match="source dead failed"):  # the dead first mirror falls through
        settings = dl.fetch_if_needed(get_settings("gpu"))
    assert not settings.uses_synthetic and (cache / "extracted") in settings.data_dir.parents
    assert "downloaded into the cache" in settings.data_note
    assert len(load_course_data(settings).images) == N_IMAGES
    # A later runtime: found in the cache, nothing downloaded, and no fetch needed to find it.
    requests_before = len(log)
    again = get_settings("gpu")
    assert again.data_dir == settings.data_dir and "from the cache" in again.data_note
    assert len(log) == requests_before


def test_colab_fetches_in_any_profile_but_ci(online, monkeypatch):
    import sys
    import types

    from agecourse.config import get_settings

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    with pytest.warns(SourceFailedWarning):
        assert not dl.fetch_if_needed(get_settings("cpu")).uses_synthetic
    assert dl.fetch_if_needed(get_settings("ci")).uses_synthetic  # ci stays synthetic and offline


def test_a_wrong_file_is_refused_naming_both_hashes_and_the_run_falls_back_loudly(online, monkeypatch, cache):
    from agecourse.config import get_settings

    base, _, _, archive, sha = online
    pinned = "ab" * 32
    monkeypatch.setattr(dl, "SOURCES", (_pinned_local(base, archive, pinned),))
    settings = dl.fetch_if_needed(get_settings("gpu"))
    assert settings.uses_synthetic
    assert settings.data_note.startswith("WARNING") and "SYNTHETIC" in settings.data_note
    assert pinned in settings.data_note and sha in settings.data_note
    assert "AGECOURSE_DATA" in settings.data_note  # how to fix it
    assert leftovers(cache) == []  # nothing kept that a later run could trust


def test_a_file_of_the_wrong_size_is_refused_before_downloading(online, monkeypatch, cache):
    import dataclasses

    base, _, log, archive, sha = online
    source = dataclasses.replace(_pinned_local(base, archive, sha), size=archive.stat().st_size + 1)
    with pytest.warns(SourceFailedWarning), pytest.raises(DownloadError, match="refused before downloading") as info:
        fetch([source], progress=False)
    assert f"{archive.stat().st_size:,} bytes" in str(info.value)
    assert leftovers(cache) == []


def test_no_network_means_synthetic_faces_with_a_banner_not_a_crash(cache, monkeypatch, tmp_path):
    from agecourse.config import get_settings

    monkeypatch.delenv("AGECOURSE_AUTO_FETCH", raising=False)
    monkeypatch.setattr(dl, "SOURCES", (_dead_source(tmp_path),))
    with pytest.warns(SourceFailedWarning):
        settings = dl.fetch_if_needed(get_settings("gpu"))
    assert settings.uses_synthetic and "could not be downloaded" in settings.data_note
    assert "could not connect" in settings.data_note


def test_setup_prints_the_banner_even_when_quiet(cache, monkeypatch, tmp_path, capsys):
    from agecourse.notebook import setup

    monkeypatch.delenv("AGECOURSE_AUTO_FETCH", raising=False)
    monkeypatch.setattr(dl, "SOURCES", (_dead_source(tmp_path),))
    with pytest.warns(SourceFailedWarning):
        setup(lesson=1, profile="gpu", quiet=True)
    assert "SYNTHETIC faces" in capsys.readouterr().out


def test_cpu_outside_colab_uses_a_cached_copy_or_says_how_to_get_one(online, capsys):
    from agecourse.config import get_settings

    first = dl.fetch_if_needed(get_settings("cpu"))  # a laptop or Binder: no automatic download
    assert first.uses_synthetic and "agecourse data fetch" in first.data_note
    with pytest.warns(SourceFailedWarning):
        folder = fetch(dl.SOURCES, progress=False)  # what `agecourse data fetch` does
    assert get_settings("cpu").data_dir == folder
    assert get_settings("ci").uses_synthetic


def test_auto_fetch_can_be_switched_off_and_typos_are_errors(online, monkeypatch):
    from agecourse.config import get_settings

    monkeypatch.setenv("AGECOURSE_AUTO_FETCH", "0")
    settings = dl.fetch_if_needed(get_settings("gpu"))
    assert settings.uses_synthetic and "agecourse data fetch" in settings.data_note
    monkeypatch.setenv("AGECOURSE_AUTO_FETCH", "maybe")
    with pytest.raises(ValueError, match="AGECOURSE_AUTO_FETCH"):
        dl.fetch_if_needed(get_settings("gpu"))
    monkeypatch.setenv("AGECOURSE_DATA", "synthetic")
    assert dl.fetch_if_needed(get_settings("gpu")).uses_synthetic


def test_an_unpinned_fallback_is_strictly_checked_and_says_so(server, cache):
    import dataclasses

    base, served, _ = server
    archive, _ = utk_archive(served)
    size = archive.stat().st_size
    strict = dataclasses.replace(
        SOURCES[-1],
        url=f"{base}/utk.tar.gz",
        archive_name="utk.tar.gz",
        size_range=(size - 10, size + 10),
        image_count=N_IMAGES,
        image_count_max=N_IMAGES,
    )
    with pytest.warns(dl.UnpinnedSourceWarning, match="not pinned by hash"):
        assert count_utkface_images(fetch([strict], progress=False)) == N_IMAGES
    for changes, message in (
        (dict(size_range=(size + 1, size + 10)), "outside the"),
        (dict(image_count=1, image_count_max=N_IMAGES - 1), f"expected at most {N_IMAGES - 1}"),
    ):
        source = dataclasses.replace(strict, name=f"strict-{len(message)}", **changes)
        with pytest.warns(SourceFailedWarning), pytest.raises(DownloadError, match=message):
            fetch([source], progress=False)


def test_an_unpinned_fallback_with_foreign_file_names_is_refused(server, cache):
    import dataclasses

    base, served, _ = server
    entries = [(f"faces/person_{i}.jpg", jpeg_bytes(i)) for i in range(8)]
    entries += [(f"faces/{20 + i}_0_0_2017011617452{i}125.jpg", jpeg_bytes(i)) for i in range(2)]
    make_tar(served / "other.tar.gz", entries)
    source = dataclasses.replace(
        SOURCES[-1], name="other", url=f"{base}/other.tar.gz", archive_name="other.tar.gz", size_range=None
    )
    source = dataclasses.replace(source, image_count=1, image_count_max=None)
    with pytest.warns(SourceFailedWarning), pytest.raises(DownloadError, match=r"only 2 \(20%\) have UTKFace"):
        fetch([source], progress=False)


def test_cpu_profile_keeps_a_stratified_sample_of_a_large_dataset_and_says_so(tmp_path, image_writer):
    from agecourse.config import get_settings
    from agecourse.data import load_course_data

    for i in range(40):
        image_writer(tmp_path / "utk" / f"{20 + i}_{i % 2}_{i % 5}_2017011617452{i:02d}12.jpg", seed=i)
    assert get_settings("cpu").max_images == 8000  # the full UTKFace is cut to fit Binder's memory
    loaded = load_course_data(get_settings("cpu", data_dir=tmp_path / "utk", max_images=24))
    assert len(loaded.images) == 24
    assert "a stratified sample of 24 of its 40 images" in loaded.summary()
