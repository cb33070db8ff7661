"""``salrank demo``: upload limits and model pool at the function level, and the page end to end in Chromium.

The browser test starts ``salrank demo`` on 127.0.0.1 (a free port) in a subprocess, drives the page in
headless Chromium (Debian's ``chromium`` + ``chromium-driver``) with Selenium, uploads a real photo, waits
for the ranked overlay, downloads the result JSON, uploads a text file (rejected with a message), and
checks that the page asked nothing of any other host. It is skipped, saying why, only where Chromium or
chromedriver is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from _app_helpers import HAS_LITE0, LITE0_REASON, REAL_PHOTOS, BrightSpotModel, save_png, spots_image
from PIL import Image

from salrank.apps.demo import (
    DemoApp,
    DemoSettings,
    ModelPool,
    UploadRejected,
    check_upload,
    is_loopback,
    launch,
    ranked_list_html,
)
from salrank.errors import InputError

HAS_GRADIO = importlib.util.find_spec("gradio") is not None
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


# ----------------------------------------------------------------------------------------------------
# limits and plumbing


def test_uploads_over_the_limits_are_rejected(tmp_path: Path) -> None:
    photo = save_png(tmp_path / "photo.png", spots_image(200, 300))
    assert check_upload(photo) == (300, 200)
    with pytest.raises(UploadRejected, match="limit is 0.0001 MB"):
        check_upload(photo, max_upload_mb=0.0001)
    with pytest.raises(UploadRejected, match="megapixels"):
        check_upload(photo, max_megapixels=0.05)
    text = tmp_path / "notes.jpg"
    text.write_text("hello, not a photo")
    with pytest.raises(UploadRejected, match="notes.jpg is not an image"):
        check_upload(text)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(UploadRejected, match="empty"):
        check_upload(empty)
    svg = tmp_path / "logo.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    with pytest.raises(UploadRejected, match="not an image"):
        check_upload(svg)


def test_big_images_are_rejected_from_the_header(tmp_path: Path) -> None:
    """A 9000x5000 PNG is refused at 40 MP without decoding its pixels."""
    big = tmp_path / "big.png"
    Image.new("L", (9000, 5000)).save(big, optimize=False)
    with pytest.raises(UploadRejected, match="9000x5000"):
        check_upload(big)


def test_only_loopback_without_allow_remote() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.org")
    with pytest.raises(InputError, match="--allow-remote"):
        launch(DemoSettings(models=["default"]), host="0.0.0.0", port=7860)


def test_model_pool_loads_once_and_does_not_block_other_models() -> None:
    loads: list[str] = []

    def factory(name: str) -> str:
        loads.append(name)
        return f"model:{name}"

    pool = ModelPool(factory, instances_per_model=2)
    order: list[str] = []
    with pool.borrow("big") as first:
        assert first == "model:big"

        def other() -> None:
            with pool.borrow("default"):
                order.append("default done")
            with pool.borrow("big"):  # the single copy of "big" is busy: waits for it
                order.append("big again")

        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.3)
        assert order == ["default done"]  # another model was not held up by the busy one
        order.append("released")
    t.join(5)
    assert order == ["default done", "released", "big again"]
    assert loads == ["big", "default"] and pool.loaded() == {"big": 1, "default": 1}
    with pool.borrow("default"), pool.borrow("default"):  # the default ranker may have two copies
        pass
    assert pool.loaded()["default"] == 2


def test_demo_app_ranks_an_upload_and_writes_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = DemoApp(DemoSettings(models=["bright"]))
    from salrank.ranker import Ranker

    monkeypatch.setattr(app.pool, "_factory", lambda name: Ranker(BrightSpotModel(), device="cpu"))
    photo = save_png(tmp_path / "my photo.png", spots_image(90, 120))
    out = app.rank(str(photo), "bright")
    assert out["overlay"].shape[1] == 120 and out["colormap"].shape == (90, 120, 3) and out["skeleton"] is None
    data = json.loads(Path(out["json"]).read_text())
    assert data["model"] == "brightspot" and data["image"] == "my photo" and len(data["instances"]) == 2
    assert "brightspot" in out["status"] and "2 salient objects" in out["status"]
    assert "<table" in out["table"] and out["table"].count("<tr>") == 3
    with pytest.raises(UploadRejected, match="unknown model"):
        app.rank(str(photo), "other")
    with pytest.raises(UploadRejected, match="upload a photo"):
        app.rank(None, "bright")


def test_ranked_list_escapes_kinds() -> None:
    from salrank.structures import RankedInstances

    masks = np.zeros((1, 10, 10), bool)
    masks[0, 2:5, 2:5] = True
    result = RankedInstances.from_masks(masks)
    result.extras["kinds"] = ["<script>x</script>"]
    html = ranked_list_html(result)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "No salient object" in ranked_list_html(RankedInstances.empty("e", 5, 5))


# ----------------------------------------------------------------------------------------------------
# the page in a browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo_server():
    if not HAS_GRADIO:
        pytest.skip("gradio is not installed (pip install 'salrank[demo]')")
    if not HAS_LITE0:
        pytest.skip(LITE0_REASON)
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("Chromium and chromedriver are needed for the browser test: apt-get install -y chromium chromium-driver")
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "salrank", "demo", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180  # about 10 s on an idle machine; much more on a busy one
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            urllib.request.urlopen(url, timeout=2).read(64)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the demo server did not start within 180 s:\n" + Path(log.name).read_text()[-3000:])
    if proc.poll() is not None:
        pytest.fail("the demo server exited:\n" + Path(log.name).read_text()[-3000:])
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    Path(log.name).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def browser(demo_server: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="salrank-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _upload(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    clear = driver.find_elements(By.CSS_SELECTOR, "#upload button[aria-label='Clear']")
    if clear:  # a file is shown: remove it to get the upload area back
        clear[0].click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
    driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(path))


def test_upload_a_photo_in_the_browser(demo_server: str, browser, shared_images: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(demo_server)
    WebDriverWait(browser, 30).until(lambda d: "salrank" in d.title)  # the page sets its title once it has loaded
    _upload(browser, shared_images / REAL_PHOTOS[1])

    def overlay_ready(d):
        imgs = d.find_elements(By.CSS_SELECTOR, "#overlay img")
        return (
            imgs[0]
            if imgs and imgs[0].get_attribute("src") and d.execute_script("return arguments[0].naturalWidth", imgs[0])
            else None
        )

    img = WebDriverWait(browser, 120).until(overlay_ready)
    assert img.get_attribute("src").startswith(demo_server)
    assert browser.execute_script("return arguments[0].naturalWidth", img) == 640
    assert "salrank-default" in browser.find_element(By.CSS_SELECTOR, "#status").text
    rows = browser.find_elements(By.CSS_SELECTOR, "#ranked-list tr")
    assert len(rows) >= 3  # header + at least two objects
    links = WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#json-file a[href]"))
    href = links[0].get_attribute("href")
    assert href.startswith(demo_server) and href.endswith(".json")
    data = json.loads(urllib.request.urlopen(href, timeout=10).read())
    assert data["model"] == "salrank-default" and (data["height"], data["width"]) == (480, 640)
    assert data["instances"] and data["instances"][0]["rank"] == 1

    # a text file is rejected with a message
    text = tmp_path / "notes.png"
    text.write_text("not a photo")
    _upload(browser, text)
    WebDriverWait(browser, 30).until(lambda d: "Rejected" in d.find_element(By.CSS_SELECTOR, "#status").text)
    assert "not an image" in browser.find_element(By.CSS_SELECTOR, "#status").text

    # nothing was fetched from anywhere but the demo server
    outside = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(("http://", "https://", "ws://", "wss://")) and not url.startswith(
                (demo_server, demo_server.replace("http", "ws", 1))
            ):
                outside.add(url)
    assert not outside, f"the page contacted other hosts: {sorted(outside)}"
