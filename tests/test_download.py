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


def utk_archive(folder: Path, name: str = "utk.tar.gz", n: int = N_IMAGES) -> tuple[Path, str]:
    """A tar.gz of ``n`` UTKFace-named JPEGs plus a non-image; returns (path, sha256)."""
    entries = [(f"UTKFace/{20 + i}_{i % 2}_{i % 5}_2017011617452{i}125.jpg.chip.jpg", jpeg_bytes(i)) for i in range(n)]
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
    assert dl.count_utkface_images(folder) == N_IMAGES
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
    assert dl.count_utkface_images(folder) == N_IMAGES


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
    assert dl.count_utkface_images(folder) == N_IMAGES


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
