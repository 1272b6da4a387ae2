"""End-to-end test of the demo web page in a real headless browser.

Starts ``voila demo/app.ipynb`` on 127.0.0.1 (a free port) with an empty artifacts folder: the page
uses the shipped Model B (``agecourse.course_models``) and shows its name, test MAE and short model
card. Then drives Debian's system Chromium (``/usr/bin/chromium``, no browser download) with
Playwright: the page loads, a photo of two synthetic faces is uploaded through the file input, the
boxed faces and the Grad-CAM heat maps appear; then a real photograph that ships in a registry
package (matplotlib's sample ``grace_hopper.jpg``, a portrait of Grace Hopper in later life) must give
exactly one boxed face with an age between 30 and 100. Screenshots go to
``build/test-artifacts/demo.png`` and ``demo-grace-hopper.png``, the timings to ``demo-timing.json``.

Skipped where Chromium, Playwright or Voila is missing; ``.ci/run`` installs them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("AGECOURSE_CHROMIUM", "/usr/bin/chromium"))
OUTPUT = ROOT / "build" / "test-artifacts"
PAGE_TIMEOUT_S = 420  # a cold start loads TensorFlow and the shipped model: seconds idle, minutes on a busy machine

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.timeout(PAGE_TIMEOUT_S + 180),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"voila exited with status {process.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:  # any HTTP answer (even 404) means the server is up
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"voila did not answer at {url} within {timeout:.0f} s")


@pytest.fixture
def voila(tmp_path):
    """A running Voila server for demo/app.ipynb; yields ``(url, start time, log path)``."""
    pytest.importorskip("voila")
    port = free_port()
    log = tmp_path / "voila.log"
    env = dict(os.environ, AGECOURSE_ARTIFACTS=str(tmp_path / "artifacts"), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("AGECOURSE_DEMO_MODEL", None)
    command = [
        sys.executable, "-m", "voila", str(ROOT / "demo" / "app.ipynb"), "--no-browser",
        f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0",
    ]  # fmt: skip
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/voila/static/", process, timeout=120)
        except (RuntimeError, TimeoutError) as err:
            pytest.fail(f"{err}; voila log:\n{log.read_text()[-3000:]}")
        yield f"http://127.0.0.1:{port}/", started, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def photo_file(folder: Path) -> Path:
    """A JPEG of two synthetic faces (not real people) that MTCNN finds (example_photos.EXAMPLE_FACE_SEEDS)."""
    from agecourse import example_photos

    path = folder / "two_faces.jpg"
    path.write_bytes(example_photos.encode_image(example_photos.group_photo()))
    return path


def real_photo(folder: Path) -> Path:
    """matplotlib's sample photograph of Grace Hopper (ships with matplotlib), copied under its name."""
    from matplotlib import cbook

    path = folder / "grace_hopper.jpg"
    shutil.copyfile(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), path)
    return path


def upload(page, path: Path) -> None:
    """Click the upload button and choose ``path`` in the file dialog, as a visitor does (ipywidgets
    8 keeps its file input out of the page, so there is no input element to fill)."""
    with page.expect_file_chooser(timeout=30_000) as chooser:
        page.locator("button.widget-upload, .widget-upload").first.click()
    chooser.value.set_files(str(path))


def test_demo_page_predicts_an_uploaded_photo(voila, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    url, started, log = voila
    photo = photo_file(tmp_path)
    (tmp_path / "notes.jpg").write_text("not a photo")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    timing: dict[str, float] = {}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            page.goto(url, timeout=PAGE_TIMEOUT_S * 1000, wait_until="domcontentloaded")
            status = page.locator(".agecourse-status")
            try:
                status.wait_for(state="visible", timeout=PAGE_TIMEOUT_S * 1000)
            except sync_api.TimeoutError:
                page.screenshot(path=str(OUTPUT / "demo-failed.png"), full_page=True)
                pytest.fail(f"the app did not appear; voila log:\n{log.read_text()[-3000:]}")
            timing["page_ready_s"] = time.monotonic() - started
            page_text = page.inner_text("body")
            assert "Model:" in page_text and "Upload a photo" in page_text
            # The shipped model's name and test MAE, as the registry has them.
            from agecourse import course_models

            shipped = course_models.entry("model-b")
            card = page.locator(".agecourse-model-card").inner_text()
            assert "model-b" in card and f"test age MAE {shipped['test']['age_mae']:.2f} years" in card

            upload(page, photo)
            page.wait_for_function(
                "() => /two_faces\\.jpg: 2 faces/.test(document.querySelector('.agecourse-status').innerText)",
                timeout=180_000,
            )
            timing["first_prediction_s"] = time.monotonic() - started
            heatmaps = page.locator("img.agecourse-heatmap")
            heatmaps.first.wait_for(state="visible", timeout=30_000)
            assert heatmaps.count() == 2
            assert page.locator("img.agecourse-boxed").is_visible()
            assert all(heatmaps.nth(i).evaluate("img => img.naturalWidth") > 0 for i in range(2))
            text = status.inner_text()
            assert text.count("age ") == 2 and ("female" in text or "male" in text)
            page.screenshot(path=str(OUTPUT / "demo.png"), full_page=True)

            upload(page, tmp_path / "notes.jpg")
            page.wait_for_function(
                "() => document.querySelector('.agecourse-status').innerText.includes('Cannot use this photo')",
                timeout=60_000,
            )
            assert "notes.jpg: not an image" in status.inner_text()

            # A real photograph: exactly one face, boxed, with a plausible age.
            hopper = real_photo(tmp_path)
            upload(page, hopper)
            page.wait_for_function(
                "() => /grace_hopper\\.jpg: \\d+ faces?/.test(document.querySelector('.agecourse-status').innerText)",
                timeout=180_000,
            )
            text = status.inner_text()
            assert "grace_hopper.jpg: 1 face." in text, text
            # The shipped model's calibrated interval comes with the age (lesson 09's conformal prediction).
            found = re.findall(r"age about (\d+) \(90% interval (\d+)-(\d+)\)", text)
            ages = [int(age) for age, _, _ in found]
            assert len(ages) == 1 and 30 <= ages[0] <= 100, text
            assert int(found[0][1]) < ages[0] < int(found[0][2]), text
            assert page.locator("img.agecourse-boxed").is_visible()
            timing["real_photo_age"] = ages[0]
            page.screenshot(path=str(OUTPUT / "demo-grace-hopper.png"), full_page=True)
        finally:
            browser.close()
    timing = {k: round(v, 1) for k, v in timing.items()}
    (OUTPUT / "demo-timing.json").write_text(json.dumps(timing, indent=2))
    print(f"demo timings from voila start: {timing}; screenshot {OUTPUT / 'demo.png'}")


def test_chromium_is_the_system_browser():
    """The browser test uses Debian's Chromium, not a Playwright download."""
    assert shutil.which(str(CHROMIUM)) is not None
    version = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "Chromium" in version.stdout, version.stdout + version.stderr
