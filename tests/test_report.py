"""``salrank report``: a valid, self-contained HTML contact sheet whose links resolve and whose names are escaped."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from _app_helpers import BrightSpotModel, save_png, spots_image

from salrank.apps.predict import predict_files
from salrank.apps.report import THUMBS_DIR, build_report
from salrank.cli import main
from salrank.errors import InputError
from salrank.ranker import Ranker

VOID = {"meta", "img", "br", "link", "input", "hr", "source", "wbr", "area", "base", "col", "embed", "param", "track"}
TRICKY = ['<b>bold & "quoted"<i>', "space and #hash?q=1", "ünïcödé'apostrophe"]


class Collector(HTMLParser):
    """Collects links and checks that every non-void tag is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)
        for key, value in attrs:
            if key in ("href", "src") and value is not None:
                self.links.append((tag, value))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    inputs = tmp_path / "in"
    inputs.mkdir()
    files = [save_png(inputs / f"{name}.png", spots_image()) for name in TRICKY]
    bad = inputs / "broken.png"
    bad.write_text("no image here")
    out = tmp_path / "run"
    summary = predict_files(Ranker(BrightSpotModel(), device="cpu"), [*files, bad], out, progress=False)
    assert summary.done == 3 and len(summary.failed) == 1
    return out


def parse(path: Path) -> Collector:
    parser = Collector()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def test_report_is_valid_and_links_resolve(run_dir: Path) -> None:
    report = build_report(run_dir)
    assert report == run_dir / "report.html"
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    parser = parse(report)
    assert parser.errors == [] and parser.stack == []
    assert parser.links, "no links"
    for tag, link in parser.links:
        url = urlparse(link)
        assert url.scheme == "" and url.netloc == "", f"external reference {link}"  # no CDN, no absolute URL
        target = (report.parent / unquote(url.path)).resolve()
        assert target.exists(), f"{tag} link {link} does not resolve"
    thumbs = list((run_dir / THUMBS_DIR).glob("*.jpg"))
    assert len(thumbs) == 6  # overlay + colour map of 3 images
    assert "brightspot" in page and "3 images ranked, 1 failed" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_file_names_are_escaped(run_dir: Path) -> None:
    page = build_report(run_dir).read_text(encoding="utf-8")
    assert "<b>bold" not in page and "<i>" not in page
    assert "&lt;b&gt;bold &amp; &quot;quoted&quot;&lt;i&gt;" in page
    assert "%23hash%3Fq%3D1" in page  # '#' and '?' in a file name do not break its links
    text = "".join(parse(run_dir / "report.html").text)
    for name in TRICKY:
        assert name in text  # and read back as the original names


def test_failed_images_and_refusal_to_overwrite(run_dir: Path) -> None:
    report = build_report(run_dir)
    page = report.read_text(encoding="utf-8")
    assert "broken" in page and "not a readable image" in page
    with pytest.raises(InputError, match="overwrite"):
        build_report(run_dir)
    build_report(run_dir, overwrite=True, thumb_size=64, title="Holiday <photos>")
    assert "Holiday &lt;photos&gt;" in report.read_text(encoding="utf-8")


def test_report_of_a_folder_without_manifest(tmp_path: Path) -> None:
    result = Ranker(BrightSpotModel(), device="cpu")(spots_image(), names="shot")
    result.save(tmp_path / "saved")
    report = build_report(tmp_path / "saved", tmp_path / "saved" / "sheet.html")
    parser = parse(report)
    assert parser.errors == []
    assert any("colormaps/shot.png" in link for _, link in parser.links)
    with pytest.raises(InputError, match="no salrank predict results"):
        build_report(tmp_path / "saved" / "colormaps")


def test_report_command(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(run_dir)]) == 0
    assert "report written to" in capsys.readouterr().out
    assert main(["report", str(run_dir)]) == 2
    assert main(["report", str(run_dir / "missing")]) == 2
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["format"] == "salrank-predict-run/1"
