"""``salrank demo``: a local web page to rank the salient objects of your photos (Gradio).

Upload a photo, pick a model, and see the overlay (the photo with rank colours and numbers), the rank
colour map, the skeletons of the people (models with poses), the ranked list with scores, and download
the result JSON. The page lists the models usable here: the built-in default, the installed zoo models
and the ``--model`` given on the command line.

Safety and privacy:

* The server listens on 127.0.0.1 (this computer only) unless ``allow_remote`` is set explicitly.
* Nothing phones home: Gradio's analytics and version check are switched off
  (``GRADIO_ANALYTICS_ENABLED=False`` before Gradio is imported), as are Hugging Face telemetry, share
  links, server-side rendering, the MCP server, the run history and the PWA manifest. The page uses
  Gradio's bundled fonts and scripts (no CDN).
* Uploads over ``max_upload_mb`` (20 MB) are refused by the server; images over ``max_megapixels``
  (40 MP, read from the header before decoding) and files that are not images are rejected with a
  message.
* Requests run in Gradio's queue with ``concurrency`` workers; each model is loaded once and kept,
  with up to ``instances_per_model`` copies of the default ranker (one for the learned models, which
  are large), so one slow request does not hold up requests for another copy or another model, and
  the page itself stays responsive.
"""

from __future__ import annotations

import contextlib
import html
import ipaddress
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salrank.errors import InputError, SalrankError

logger = logging.getLogger(__name__)

MAX_UPLOAD_MB = 20
MAX_MEGAPIXELS = 40
DISPLAY_MAX_SIDE = 1280
"""Pictures shown on the page are scaled down to this longer side (the JSON keeps full resolution)."""

_ENVIRONMENT = {
    "GRADIO_ANALYTICS_ENABLED": "False",  # no analytics, no version check (gradio/analytics.py)
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "GRADIO_SHARE": "False",
    "GRADIO_SSR_MODE": "False",
    "GRADIO_MCP_SERVER": "False",
    "GRADIO_RUN_HISTORY": "False",
}


def configure_environment() -> None:
    """Switch off every call Gradio and huggingface_hub would make to the outside (before importing them)."""
    for key, value in _ENVIRONMENT.items():
        os.environ[key] = value
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio polls its own server at start-up


class UploadRejected(SalrankError):
    """An upload the demo does not accept (too large, too many pixels, not an image)."""


def check_upload(
    path: str | os.PathLike[str], *, max_upload_mb: float = MAX_UPLOAD_MB, max_megapixels: float = MAX_MEGAPIXELS
) -> tuple[int, int]:
    """Check an uploaded file before decoding it; returns its ``(width, height)``.

    Raises:
        UploadRejected: larger than ``max_upload_mb``, not an image (by its content, not its name),
            or more than ``max_megapixels`` pixels.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    name = p.name
    if not p.is_file():
        raise UploadRejected(f"{name}: the upload is missing")
    size = p.stat().st_size
    if size > max_upload_mb * 1024 * 1024:
        raise UploadRejected(f"{name} is {size / 1024 / 1024:.1f} MB; the limit is {max_upload_mb:g} MB")
    if size == 0:
        raise UploadRejected(f"{name} is empty")
    try:
        with Image.open(p) as img:  # reads the header only
            width, height = img.size
            fmt = img.format
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise UploadRejected(f"{name} is not an image salrank can read (JPEG, PNG, WebP, BMP, TIFF)") from None
    if fmt not in ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO", "GIF"):
        raise UploadRejected(f"{name} is a {fmt} file; upload a JPEG, PNG, WebP, BMP or TIFF photo")
    if width * height > max_megapixels * 1e6:
        raise UploadRejected(
            f"{name} is {width}x{height} ({width * height / 1e6:.0f} megapixels); the limit is {max_megapixels:g} megapixels"
        )
    return width, height


class ModelPool:
    """Models loaded once and shared between requests, with a bounded number of copies per model.

    ``borrow(name)`` hands out a free copy of the model (loading one when fewer than the model's
    limit exist), waiting only when all copies of that model are busy.
    """

    def __init__(self, factory: Any, instances_per_model: int = 2) -> None:
        self._factory = factory
        self._limit_default = max(1, int(instances_per_model))
        self._lock = threading.Lock()
        self._free: dict[str, list[Any]] = {}
        self._count: dict[str, int] = {}
        self._available: dict[str, threading.Condition] = {}

    def _limit(self, name: str) -> int:
        from salrank.ranker import DEFAULT_ALIASES

        return self._limit_default if name in DEFAULT_ALIASES else 1

    @contextlib.contextmanager
    def borrow(self, name: str) -> Iterator[Any]:
        with self._lock:
            cond = self._available.setdefault(name, threading.Condition(self._lock))
            while not self._free.get(name) and self._count.get(name, 0) >= self._limit(name):
                cond.wait()
            if self._free.get(name):
                model = self._free[name].pop()
                create = False
            else:
                self._count[name] = self._count.get(name, 0) + 1
                create = True
        if create:
            try:
                model = self._factory(name)
            except BaseException:
                with self._lock:
                    self._count[name] -= 1
                    cond.notify()
                raise
        try:
            yield model
        finally:
            with self._lock:
                self._free.setdefault(name, []).append(model)
                cond.notify()

    def loaded(self) -> dict[str, int]:
        """``{name: copies loaded}``."""
        with self._lock:
            return dict(self._count)


@dataclass
class DemoSettings:
    """What ``salrank demo`` is started with."""

    models: list[str]
    """The models offered in the drop-down (the first is preselected)."""
    config: str | None = None
    """The config of a checkpoint given with ``--model FILE``."""
    device: str = "auto"
    max_upload_mb: float = MAX_UPLOAD_MB
    max_megapixels: float = MAX_MEGAPIXELS
    concurrency: int = 4
    instances_per_model: int = 2


def _model_label(name: str) -> str:
    if name == "default":
        return "default (salrank-default: built-in, training-free)"
    return name


def _describe_model(name: str) -> str:
    """Markdown about a model for the page."""
    from salrank.ranker import DEFAULT_MODEL_NOTE

    if name == "default":
        return html.escape(DEFAULT_MODEL_NOTE).replace("salrank-default", "**salrank-default**", 1)
    try:
        from salrank.weights import get_entry, has_entry

        if has_entry(name):
            entry = get_entry(name)
            numbers = ", ".join(f"{k} {entry.metric_text(k)}" for k in entry.metrics)
            extra = f" Published: {numbers} ({entry.protocol} protocol)." if numbers else ""
            return f"**{html.escape(entry.name)}**: {html.escape(entry.description)}.{html.escape(extra)}"
    except Exception:  # pragma: no cover - the zoo is static
        pass
    return f"**{html.escape(name)}**"


def ranked_list_html(result: Any) -> str:
    """The ranked objects as an HTML table with rank colours (names and values escaped)."""
    from salrank.viz.palette import rank_color

    if len(result) == 0:
        return "<p>No salient object found.</p>"
    kinds = result.extras.get("kinds") if isinstance(result.extras.get("kinds"), list) else None
    rows = []
    for i, obj in enumerate(result):
        r, g, b = rank_color(obj.rank)
        box = ", ".join(f"{v:.0f}" for v in obj.box)
        kind = html.escape(str(kinds[i])) if kinds and i < len(kinds) else ""
        rows.append(
            f'<tr><td><span style="display:inline-block;width:12px;height:12px;border-radius:2px;background:rgb({r},{g},{b});'
            f'margin-right:6px;vertical-align:-1px"></span>{obj.rank}</td><td>{obj.saliency:.3f}</td><td>{obj.score:.3f}</td>'
            f"<td>{kind}</td><td>[{box}]</td></tr>"
        )
    head = "<tr><th>rank</th><th>rank score</th><th>objectness</th><th>kind</th><th>box x1, y1, x2, y2</th></tr>"
    return f'<table class="salrank-ranks">{head}{"".join(rows)}</table>'


class DemoApp:
    """The demo's logic, separate from the page: rank an uploaded file with a named model."""

    def __init__(self, settings: DemoSettings) -> None:
        self.settings = settings
        self.pool = ModelPool(self._load, settings.instances_per_model)
        self.work_dir = Path(tempfile.mkdtemp(prefix="salrank-demo-"))

    def _load(self, name: str) -> Any:
        from salrank.ranker import Ranker

        logger.info("loading model %s", name)
        config = self.settings.config if name == self.settings.models[0] and self.settings.config else None
        return Ranker(name, config=config, device=self.settings.device)

    def _clean_old(self, max_age: float = 3600.0) -> None:
        now = time.time()
        for p in self.work_dir.glob("*.json"):
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime > max_age:
                    p.unlink()

    def rank(self, path: str | None, model: str) -> dict[str, Any]:
        """Rank an uploaded file; returns the pictures, the table, the JSON path and a status line.

        Raises:
            UploadRejected: the upload is refused (see :func:`check_upload`).
            InputError: the model cannot be loaded (e.g. weights not installed) or the file not read.
        """
        from salrank.utils.io import read_image, write_json
        from salrank.viz.render import fit_within, render, skeleton_composite

        if not path:
            raise UploadRejected("upload a photo first")
        if model not in self.settings.models:
            raise UploadRejected(f"unknown model {model!r}")
        check_upload(path, max_upload_mb=self.settings.max_upload_mb, max_megapixels=self.settings.max_megapixels)
        image = read_image(path)
        stem = Path(path).stem
        start = time.perf_counter()
        with self.pool.borrow(model) as ranker:
            result = ranker(image, names=stem)
            model_name = ranker.name
        seconds = time.perf_counter() - start
        result.extras.pop("image", None)
        self._clean_old()
        data = result.to_dict()
        data["image"] = stem
        fd, json_name = tempfile.mkstemp(prefix=f"{_safe(stem)}-", suffix=".salrank.json", dir=self.work_dir)
        os.close(fd)
        write_json(json_name, data)
        composite = skeleton_composite(result, image)
        n = len(result)
        status = f"**{html.escape(model_name)}** found {n} salient object{'s' if n != 1 else ''} in {seconds:.1f} s ({image.shape[1]}x{image.shape[0]})."
        if model_name == "salrank-default":
            status += " This is the built-in, training-free baseline; the learned models are far better."
        return {
            "overlay": fit_within(render(result, image, "overlay", show_scores=True), DISPLAY_MAX_SIDE),
            "colormap": fit_within(render(result, kind="colormap"), DISPLAY_MAX_SIDE),
            "skeleton": None if composite is None else fit_within(composite, DISPLAY_MAX_SIDE),
            "table": ranked_list_html(result),
            "json": json_name,
            "status": status,
            "result": result,
        }


def _safe(stem: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:60]
    return cleaned or "photo"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this computer."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_CSS = """
.salrank-ranks { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
.salrank-ranks th, .salrank-ranks td { text-align: left; padding: 2px 10px 2px 0; border-bottom: 1px solid #8884; }
"""


def build_demo(settings: DemoSettings, app: DemoApp | None = None) -> Any:
    """The Gradio page (``gradio.Blocks``) over a :class:`DemoApp`; Gradio is imported here."""
    configure_environment()
    import gradio as gr

    from salrank.apps.examples import example_image

    app = app or DemoApp(settings)

    def on_rank(path: str | None, model: str) -> tuple[Any, ...]:
        try:
            out = app.rank(path, model)
        except (UploadRejected, InputError, SalrankError) as exc:
            message = str(exc)
            gr.Warning(html.escape(message))
            return (None, None, gr.update(value=None, visible=False), "", None, f"**Rejected:** {html.escape(message)}")
        skeleton = gr.update(value=out["skeleton"], visible=out["skeleton"] is not None)
        return (out["overlay"], out["colormap"], skeleton, out["table"], out["json"], out["status"])

    with gr.Blocks(title="salrank demo", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "## salrank: salient object ranking\n"
            "Upload a photo: salrank finds its salient objects and ranks them in the order people look at them "
            "(rank 1 first). Everything runs on this computer."
        )
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(
                    label="Photo (JPEG, PNG, WebP, BMP)",
                    file_types=["image"],
                    file_count="single",
                    type="filepath",
                    elem_id="upload",
                )
                model = gr.Dropdown(
                    choices=[(_model_label(m), m) for m in settings.models],
                    value=settings.models[0],
                    label="Model",
                    elem_id="model",
                )
                model_info = gr.Markdown(_describe_model(settings.models[0]))
                button = gr.Button("Rank", variant="primary", elem_id="rank-button")
                gr.Examples(examples=[[str(example_image())]], inputs=[upload], label="Example photo (synthetic)")
                status = gr.Markdown("", elem_id="status")
                table = gr.HTML("", elem_id="ranked-list")
                json_file = gr.File(
                    label="Result JSON (COCO RLE masks, ranks, scores, boxes, keypoints)", elem_id="json-file", interactive=False
                )
            with gr.Column(scale=2):
                overlay = gr.Image(
                    label="Ranked objects",
                    type="numpy",
                    interactive=False,
                    elem_id="overlay",
                    format="jpeg",
                    buttons=["download", "fullscreen"],
                )
                with gr.Row():
                    colormap = gr.Image(
                        label="Rank colour map",
                        type="numpy",
                        interactive=False,
                        elem_id="colormap",
                        format="png",
                        buttons=["download", "fullscreen"],
                    )
                    skeleton = gr.Image(
                        label="Poses (skeletons on the colour map)",
                        type="numpy",
                        interactive=False,
                        visible=False,
                        elem_id="skeleton",
                        format="png",
                        buttons=["download", "fullscreen"],
                    )
        outputs = [overlay, colormap, skeleton, table, json_file, status]
        button.click(on_rank, inputs=[upload, model], outputs=outputs)
        upload.upload(on_rank, inputs=[upload, model], outputs=outputs)
        model.change(lambda m: _describe_model(m), inputs=[model], outputs=[model_info], queue=False)
    demo.queue(default_concurrency_limit=max(1, settings.concurrency), max_size=64)
    demo.salrank_app = app  # type: ignore[attr-defined]
    return demo


def launch(
    settings: DemoSettings,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    allow_remote: bool = False,
    block: bool = True,
    quiet: bool = False,
    preloaded: DemoApp | None = None,
) -> Any:
    """Start the demo server (returns the Blocks; with ``block`` it serves until interrupted).

    ``preloaded`` is a :class:`DemoApp` whose models are already loaded (the command line loads the
    first model before starting the server, so that a missing weights file is reported at once).

    Raises:
        InputError: ``host`` is not a loopback address and ``allow_remote`` is not set.
    """
    if not is_loopback(host):
        if not allow_remote:
            raise InputError(
                f"refusing to listen on {host}: anyone who can reach this computer could use the demo. "
                "Pass --allow-remote to do it anyway, or use --host 127.0.0.1"
            )
        logger.warning("the demo listens on %s: every computer that can reach this one can use it (no authentication)", host)
    demo = build_demo(settings, preloaded)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=True,  # returns once the server is up; block_thread() below waits
        quiet=True,
        max_file_size=f"{settings.max_upload_mb:g}mb",
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        run_history=False,
        footer_links=["settings"],
        show_error=True,
        css=_CSS,
    )
    if not quiet:
        shown = "127.0.0.1" if host in ("localhost", "0.0.0.0") else host
        print(f"salrank demo running at http://{shown}:{demo.server_port}  (Ctrl+C to stop)", flush=True)
    if block:
        demo.block_thread()
    return demo
