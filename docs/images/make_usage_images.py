"""Re-create the pictures of ``docs/readme/usage.md`` (synthetic scenes only: nothing from COCO is committed).

    python docs/images/make_usage_images.py        # needs chromium + chromedriver for the two screenshots

Writes ``usage-predict.png`` (overlay and colour map of the bundled example photo),
``usage-crop.png`` (a ``salrank crop --show`` preview), ``usage-report.png`` (a ``salrank report`` page) and
``usage-demo.png`` (the ``salrank demo`` page after an upload), all as small palette PNGs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def save_small(image: np.ndarray, name: str, width: int = 900) -> None:
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
    Image.fromarray(image).quantize(colors=192, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        HERE / name, optimize=True
    )
    print(HERE / name, (HERE / name).stat().st_size // 1024, "KB")


def chromium(headless_args: list[str]):  # noqa: ANN201
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tempfile.mkdtemp()}",
        *headless_args,
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)


def screenshot(driver, path: Path) -> np.ndarray:  # noqa: ANN001
    driver.save_screenshot(str(path))
    return np.asarray(Image.open(path).convert("RGB"))


def main() -> None:
    import salrank
    from salrank.apps.crop import plan_crop
    from salrank.apps.examples import make_example_scene
    from salrank.apps.predict import predict_files
    from salrank.apps.report import build_report
    from salrank.viz.crop_preview import crop_preview

    ranker = salrank.Ranker(device="cpu")
    result = ranker(salrank.example_image())
    save_small(result.plot("panel"), "usage-predict.png")
    plan = plan_crop(result, 1.0, top_k=2)
    save_small(crop_preview(result.extras["image"], result, plan), "usage-crop.png", width=640)

    work = Path(tempfile.mkdtemp(prefix="salrank-docs-"))
    inputs = work / "photos"
    inputs.mkdir()
    shutil.copy(salrank.example_image(), inputs / "garden.jpg")
    Image.fromarray(make_example_scene()[:, ::-1]).save(inputs / "garden-mirrored.jpg", quality=90)
    Image.fromarray(make_example_scene(seed=3)).convert("L").save(inputs / "garden-grey.png")
    (inputs / "notes.jpg").write_text("not a photo")
    predict_files(ranker, sorted(inputs.iterdir()), work / "results", progress=False)
    report = build_report(work / "results", thumb_size=240)
    driver = chromium(["--window-size=1100,760"])
    try:
        driver.get(report.as_uri())
        time.sleep(1)
        save_small(screenshot(driver, work / "report.png"), "usage-report.png")
    finally:
        driver.quit()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "salrank", "demo", "--port", str(port), "--device", "cpu"])
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        driver = chromium(["--window-size=1300,900"])
        try:
            driver.get(f"http://127.0.0.1:{port}/")
            WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
            driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(salrank.example_image()))
            WebDriverWait(driver, 90).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#overlay img"))
            time.sleep(2)
            save_small(screenshot(driver, work / "demo.png"), "usage-demo.png", width=1000)
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(10)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
